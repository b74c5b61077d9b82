"""Prometheus metrics kept by this process (prometheus-client's default registry).

Counters and histograms move where the work happens: HTTP requests (`paymod.observability.requests`),
money flows (the workflow engine and authorizations), provider calls (every configured provider's
methods, see `instrument_provider`), Idempotency-Key replays and conflicts, provider webhooks applied
and webhook deliveries (the worker). The backlog gauges are read from the database when `/metrics` is
scraped (`paymod.health.backlog`). The list, with what each means, is in docs/observability.md.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from paymod.domain.errors import PaymodError

log = logging.getLogger("paymod.money")

#: Seconds: from a cached read (5 ms) to a provider timing out (30 s).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: The route label of a request no route matched (so unknown paths cannot grow the label set).
UNMATCHED_ROUTE = "unmatched"

HTTP_REQUESTS = Histogram(
    "paymod_http_request_duration_seconds",
    "HTTP requests by method, route template and status; `_count` counts them.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge("paymod_http_requests_in_flight", "HTTP requests being handled now.")
MONEY_FLOWS = Counter(
    "paymod_money_flows",
    "Money flows (authorize, capture, refund, cancel) by outcome: succeeded, replayed, pending, or the "
    "error's type (provider_error, provider_unavailable, not_allowed, conflict, ...).",
    ["kind", "outcome"],
)
MONEY_FLOW_DURATION = Histogram(
    "paymod_money_flow_duration_seconds",
    "Duration of money flows, provider calls included.",
    ["kind"],
    buckets=LATENCY_BUCKETS,
)
PROVIDER_CALLS = Histogram(
    "paymod_provider_call_duration_seconds",
    "Calls to payment providers by provider, method and outcome (ok or the error's type); "
    "`_count` counts them.",
    ["provider", "method", "outcome"],
    buckets=LATENCY_BUCKETS,
)
IDEMPOTENCY = Counter(
    "paymod_idempotency_requests",
    "Requests with an Idempotency-Key answered without running: replayed (the stored response), "
    "conflict (the first request still runs: 409), mismatch (other parameters or route: 400).",
    ["outcome"],
)
WEBHOOK_EVENTS = Counter(
    "paymod_webhook_events",
    "Provider webhook events the worker applied, by outcome: processed, ignored, retried (failed, "
    "will be retried), failed (retries exhausted: see `paymod webhooks list --failed`).",
    ["outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "paymod_webhook_deliveries",
    "Attempts to deliver events to webhook endpoints, by outcome: delivered or failed.",
    ["outcome"],
)

P = ParamSpec("P")
R = TypeVar("R")


def outcome_of(error: BaseException) -> str:
    """A bounded label for a failure: the paymod error's type, `cancelled`, or `error`."""
    if isinstance(error, PaymodError):
        return error.type
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    if isinstance(error, NotImplementedError):
        return "not_implemented"
    return "error"


class MoneyFlow:
    """One money flow being measured. The code running it may name its outcome (`replayed`,
    `pending`); otherwise it is `succeeded`, or the type of the error that ended it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.outcome: str | None = None


@contextmanager
def money_flow(kind: str) -> Iterator[MoneyFlow]:
    """Counts and times the flow in the block and logs one line for it (with the request's id)."""
    flow = MoneyFlow(kind)
    started = time.perf_counter()
    failure: BaseException | None = None
    try:
        yield flow
    except BaseException as exc:
        failure = exc
        raise
    finally:
        elapsed = time.perf_counter() - started
        outcome = flow.outcome or ("succeeded" if failure is None else outcome_of(failure))
        MONEY_FLOWS.labels(kind, outcome).inc()
        MONEY_FLOW_DURATION.labels(kind).observe(elapsed)
        log.info(
            "money flow %s %s",
            kind,
            outcome,
            extra={"flow": kind, "outcome": outcome, "duration_ms": round(elapsed * 1000, 2)},
        )


def measured_flow(
    kind: str, outcome: Callable[[Any], str | None] | None = None
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorates an async method that is a money flow; `outcome(result)` may name its success."""

    def decorate(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(function)
        async def measured(*args: P.args, **kwargs: P.kwargs) -> R:
            with money_flow(kind) as flow:
                result = await function(*args, **kwargs)
                if outcome is not None:
                    flow.outcome = outcome(result)
                return result

        return measured

    return decorate


# -- provider calls ------------------------------------------------------------------------------
#: The provider interface's methods (`paymod.providers.base.PaymentProvider`).
PROVIDER_METHODS = (
    "initiate_payment",
    "update_payment",
    "delete_payment",
    "authorize_payment",
    "capture_payment",
    "refund_payment",
    "retrieve_payment",
    "cancel_payment",
    "get_payment_status",
    "get_webhook_action_and_data",
    "create_account_holder",
    "retrieve_account_holder",
    "update_account_holder",
    "delete_account_holder",
    "list_payment_methods",
    "save_payment_method",
    "delete_payment_method",
)
_MEASURED = "_paymod_measured"


def _measured_call(call: Callable[..., Awaitable[Any]], provider_id: str, method: str) -> Any:
    @functools.wraps(call)
    async def measured(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await call(*args, **kwargs)
        except BaseException as exc:
            outcome = outcome_of(exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            PROVIDER_CALLS.labels(provider_id, method, outcome).observe(elapsed)
            log.debug(
                "provider %s %s %s",
                provider_id,
                method,
                outcome,
                extra={
                    "provider": provider_id,
                    "provider_method": method,
                    "outcome": outcome,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )

    setattr(measured, _MEASURED, True)
    return measured


def instrument_provider(provider: object, provider_id: str) -> None:
    """Measures every call to the provider's interface methods, on this instance.

    The instance stays the one that was configured (the module hands it out as it is, and its own
    code is untouched): each interface method gets a measured twin in the instance's namespace, so a
    call through the module is timed and a call a subclass makes to `super()` is not counted twice."""
    for name in PROVIDER_METHODS:
        call = getattr(provider, name, None)
        if call is None or getattr(call, _MEASURED, False):
            continue
        setattr(provider, name, _measured_call(call, provider_id, name))


__all__ = [
    "HTTP_IN_FLIGHT",
    "HTTP_REQUESTS",
    "IDEMPOTENCY",
    "LATENCY_BUCKETS",
    "MONEY_FLOWS",
    "MONEY_FLOW_DURATION",
    "PROVIDER_CALLS",
    "UNMATCHED_ROUTE",
    "WEBHOOK_DELIVERIES",
    "WEBHOOK_EVENTS",
    "MoneyFlow",
    "instrument_provider",
    "measured_flow",
    "money_flow",
    "outcome_of",
]
