"""Signed HTTP webhooks to the registered endpoints: a lane per endpoint, so one endpoint's failures
never delay another's.

- **Lanes.** An endpoint's deliveries are sent by one worker at a time (it takes the endpoint's lane,
  a lease on the endpoint's row), oldest event first. Within the lane, deliveries of different
  collections go out concurrently (up to `LANE_CONCURRENCY`, 16), those of one collection one after the
  other in commit order. Different endpoints' lanes run side by side, in one worker or in several.
- **Backoff.** A failed delivery is retried with exponential backoff and holds back the later events
  of its collection (order is kept). An endpoint whose deliveries keep failing backs off as a whole
  (`retry_at`, resting as long as it has been failing): until then it costs nothing; then one probe,
  and on success it resumes. An endpoint
  that has failed for longer than `disable_after` (3 days by default, as Stripe) is disabled, its
  waiting deliveries are marked failed and an event `webhook_endpoint.disabled` is written for
  operators (`GET /admin/webhook-endpoints` shows `enabled: false` and the reason).
- **Cost.** Claims read the lane's pending deliveries through partial indexes (their cost follows
  what is claimed, not the backlog); a deliver, claim or record is a short transaction of its own
  (the SQL is `paymod.persistence.webhook_endpoints`'s).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from paymod.persistence.repository import utc_now
from paymod.persistence.webhook_endpoints import LaneRecord
from paymod.services.payment_module import PaymentModule
from paymod.webhooks.outbox import backoff, event_document
from paymod.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, sign_payload
from paymod.webhooks.stores import WebhookStores, stores_for

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("paymod.webhooks")

#: A delivery still failing this long after its event is given up.
DELIVERY_WINDOW = timedelta(days=3)
HTTP_TIMEOUT = 10.0
#: Deliveries of one lane in flight at once.
LANE_CONCURRENCY = 16
#: Deliveries a lane claims at a time.
LANE_BATCH = 200
#: Deliveries in a row that fail before the endpoint backs off as a whole.
BREAKER_THRESHOLD = 3
ENDPOINT_BACKOFF_CAP = 3600.0
DEFAULT_DISABLE_AFTER = timedelta(days=3)
ENDPOINT_DISABLED = "webhook_endpoint.disabled"


@dataclass(frozen=True, slots=True)
class LaneResult:
    delivered: int = 0
    failed: int = 0


async def due_endpoints(module: PaymentModule, *, stores: WebhookStores | None = None) -> list[str]:
    """Enabled endpoints that are not backing off and whose lane is free."""
    return await (stores or stores_for(module)).endpoints.due_endpoints()


async def run_lane(
    module: PaymentModule,
    client: httpx.AsyncClient,
    endpoint_id: str,
    *,
    retry_base: float = 5.0,
    disable_after: timedelta = DEFAULT_DISABLE_AFTER,
    batch: int = LANE_BATCH,
    stores: WebhookStores | None = None,
) -> LaneResult:
    """Takes the endpoint's lane (or returns at once when another worker has it) and sends one batch
    of its due deliveries; records each outcome and the endpoint's health; gives the lane back."""
    endpoints = (stores or stores_for(module)).endpoints
    lane = await endpoints.take_lane(endpoint_id, module.process_id, limit=batch)
    if lane is None:
        return LaneResult()
    endpoint, rows = lane.endpoint, lane.deliveries
    try:
        if not rows:
            return LaneResult()
        outcomes = await _send_all(client, endpoint, rows)
        record = lane_record(
            endpoint, rows, outcomes, now=utc_now(), retry_base=retry_base, disable_after=disable_after
        )
        await endpoints.record(endpoint_id, record)
        if record.disabled:
            log.warning(
                "webhook endpoint %s (%s) disabled: %s",
                endpoint_id,
                endpoint["url"],
                record.events[0][1]["reason"],
            )
        failed = sum(1 for o in outcomes.values() if o.error is not None)
        return LaneResult(delivered=len(outcomes) - failed, failed=failed)
    finally:
        await endpoints.give_back(endpoint_id, endpoint["lane_owner"])


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None
    error: str | None
    at: datetime


async def _send_all(
    client: httpx.AsyncClient, endpoint: Mapping[str, Any], rows: list[dict[str, Any]]
) -> dict[str, Outcome]:
    """Sends the batch: collections side by side, each collection's deliveries in order, stopping at its
    first failure (the rest waits for the retry, to keep the order)."""
    by_collection: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_collection.setdefault(row["payment_collection_id"] or row["id"], []).append(row)
    slots = asyncio.Semaphore(LANE_CONCURRENCY)
    outcomes: dict[str, Outcome] = {}
    tally = {"failed": 0, "delivered": 0}

    async def send_collection(deliveries: list[dict[str, Any]]) -> None:
        for row in deliveries:
            async with slots:
                if tally["failed"] >= BREAKER_THRESHOLD and not tally["delivered"]:
                    return  # the endpoint is down: what is left waits for the endpoint's retry
                outcome = await _send(client, endpoint, row)
            outcomes[row["id"]] = outcome
            tally["failed" if outcome.error is not None else "delivered"] += 1
            if outcome.error is not None:
                return

    await asyncio.gather(*(send_collection(d) for d in by_collection.values()))
    return outcomes


def delivery_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """The event a claimed delivery carries, as the endpoint receives it."""
    return event_document(
        {
            "id": row["event_id"],
            "name": row["name"],
            "created_at": row["event_created_at"],
            "payment_collection_id": row["payment_collection_id"],
            "data": row["data"],
            "request_id": row["request_id"],
        }
    )


def signed_request(
    row: Mapping[str, Any], secret: str, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery's POST, signed with the endpoint's secret."""
    body = json.dumps(delivery_document(row), separators=(",", ":"), default=str).encode()
    headers = {
        "content-type": "application/json",
        SIGNATURE_HEADER: sign_payload(body, secret, timestamp=timestamp),
        EVENT_ID_HEADER: row["event_id"],
    }
    return body, headers


async def _send(client: httpx.AsyncClient, endpoint: Mapping[str, Any], row: Mapping[str, Any]) -> Outcome:
    import httpx  # imported by the worker's client already: a lookup

    body, headers = signed_request(row, endpoint["secret"])
    try:
        response = await client.post(endpoint["url"], content=body, headers=headers, timeout=HTTP_TIMEOUT)
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}", utc_now())
    status = response.status_code
    return Outcome(status, None if 200 <= status < 300 else f"HTTP {status}", utc_now())


def lane_record(
    endpoint: Mapping[str, Any],
    rows: list[dict[str, Any]],
    outcomes: Mapping[str, Outcome],
    *,
    now: datetime,
    retry_base: float,
    disable_after: timedelta,
) -> LaneRecord:
    """What a batch's outcomes write: each delivery's result or next try, and the endpoint's health."""
    record = LaneRecord(at=now)
    failed = 0
    for row in rows:
        outcome = outcomes.get(row["id"])
        if outcome is None:  # not sent (the endpoint went down mid-batch): stays as it is
            continue
        if outcome.error is None:
            record.delivered.setdefault(outcome.status, []).append(row["id"])
            continue
        failed += 1
        attempts = row["attempts"] + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "response_status": outcome.status,
            "last_error": outcome.error,
            "locked_until": None,
        }
        if now - row["created_at"] >= DELIVERY_WINDOW:
            values["status"] = "failed"
        else:
            values["available_at"] = now + backoff(attempts, base=retry_base, cap=6 * 3600.0)
        record.failed.append((row["id"], values))
    _endpoint_health(
        record,
        endpoint,
        delivered=bool(record.delivered),
        failed=failed,
        disable_after=disable_after,
        retry_base=retry_base,
    )
    return record


def endpoint_backoff(failing_for: timedelta, *, base: float, until_disabled: timedelta) -> timedelta:
    """How long a failing endpoint rests before its next probe: as long as it has been failing so far.

    Probes therefore land at about 1, 2, 4, 8... times `base` after the first failure, whatever the
    number of deliveries a failed batch held (one refused batch of 16 must not rest an endpoint for
    an hour), capped at `ENDPOINT_BACKOFF_CAP`; and never past the moment the endpoint is due to be
    disabled, so that it is disabled on time.
    """
    seconds = min(ENDPOINT_BACKOFF_CAP, max(base, failing_for.total_seconds()))
    seconds = min(seconds, max(base, until_disabled.total_seconds()))
    return timedelta(seconds=seconds)


def _endpoint_health(
    record: LaneRecord,
    endpoint: Mapping[str, Any],
    *,
    delivered: bool,
    failed: int,
    disable_after: timedelta,
    retry_base: float,
) -> None:
    now = record.at
    if delivered and not failed:
        if endpoint["failing_since"] is not None or endpoint["consecutive_failures"]:
            record.endpoint = {
                "failing_since": None,
                "consecutive_failures": 0,
                "retry_at": None,
                "updated_at": now,
            }
        return
    if not failed:
        return
    failures = (0 if delivered else endpoint["consecutive_failures"]) + failed
    failing_since = endpoint["failing_since"] or now
    values: dict[str, Any] = {
        "failing_since": failing_since,
        "consecutive_failures": failures,
        "updated_at": now,
    }
    if now - failing_since >= disable_after:
        reason = f"failing since {failing_since.isoformat()} ({failures} deliveries in a row)"
        values.update(enabled=False, disabled_at=now, disabled_reason=reason, retry_at=None)
        record.endpoint = values
        record.disabled = True
        record.events.append(
            (ENDPOINT_DISABLED, {"id": endpoint["id"], "url": endpoint["url"], "reason": reason})
        )
        return
    if failures >= BREAKER_THRESHOLD:
        values["retry_at"] = now + endpoint_backoff(
            now - failing_since, base=retry_base, until_disabled=failing_since + disable_after - now
        )
    record.endpoint = values


__all__ = ["LaneResult", "due_endpoints", "lane_record", "run_lane", "signed_request"]
