"""The worker: applies provider webhooks, dispatches the outbox, delivers HTTP webhooks, and keeps house.

Each of these is a lane of its own, so none waits behind another: a backlog of outbound events never
delays a provider's webhook, and a dead endpoint never delays a live one (every endpoint has its own
lane, see `paymod.webhooks.deliveries`). Several workers may run at once on one PostgreSQL database:
the inbox is claimed with `FOR UPDATE SKIP LOCKED`, outbox claims take turns, and an endpoint's lane
is held by one worker at a time; every claim is a lease, taken over if its worker dies.
`paymod serve` runs one worker in-process; `paymod worker` runs one alone.

Stopping (`stop_worker`) lets each lane finish what it holds within the grace period; what is cut
short is handed back at once (its leases cleared), not left for the lease to run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from paymod.config import WorkerSettings
from paymod.observability.context import request_id_bound
from paymod.observability.metrics import WEBHOOK_DELIVERIES, WEBHOOK_EVENTS
from paymod.persistence.repository import utc_now
from paymod.persistence.retention import DEFAULT_RETENTION
from paymod.services.authorization_expiry import DEFAULT_EXPIRY_WARNING
from paymod.services.events import Subscribers
from paymod.services.payment_module import PaymentModule
from paymod.webhooks.deliveries import DEFAULT_DISABLE_AFTER, due_endpoints, run_lane
from paymod.webhooks.inbox import process_webhook_event
from paymod.webhooks.outbox import backoff, dispatch_outbox
from paymod.webhooks.provider_sync import DEFAULT_SYNC_AFTER, DEFAULT_SYNC_MAX_AGE, sync_sessions
from paymod.webhooks.stores import WebhookStores, stores_for
from paymod.workflows.reconciler import reconcile

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("paymod.worker")

INBOX_LEASE = 120.0
MAX_BACKOFF = 30.0
#: Provider events applied at once (those of one session one after the other).
INBOX_CONCURRENCY = 4


class Worker:
    def __init__(
        self,
        module: PaymentModule,
        subscribers: Subscribers | None = None,
        *,
        poll_interval: float = 0.2,
        batch: int = 20,
        http_client: httpx.AsyncClient | None = None,
        delivery_retry_base: float = 5.0,
        reconcile_every: float = 60.0,
        retention: timedelta = DEFAULT_RETENTION,
        prune_every: float = 600.0,
        endpoint_disable_after: timedelta = DEFAULT_DISABLE_AFTER,
        stores: WebhookStores | None = None,
        expiry_every: float = 60.0,
        expiry_warning: timedelta = DEFAULT_EXPIRY_WARNING,
        sync_every: float = 60.0,
        sync_after: timedelta = DEFAULT_SYNC_AFTER,
        sync_max_age: timedelta = DEFAULT_SYNC_MAX_AGE,
    ) -> None:
        self.module = module
        #: Its rows (inbox, outbox, deliveries, retention); the composition root passes them in.
        self.stores = stores if stores is not None else stores_for(module)
        self.subscribers = subscribers if subscribers is not None else module.subscribers
        self.poll_interval = poll_interval
        self.batch = batch
        self._client = http_client
        self._own_client = http_client is None
        self.delivery_retry_base = delivery_retry_base
        self.reconcile_every = reconcile_every
        self.retention = retention
        self.prune_every = prune_every
        self.endpoint_disable_after = endpoint_disable_after
        self._next_reconcile = time.monotonic() + reconcile_every
        self._next_prune = time.monotonic() + prune_every
        self.expiry_every = expiry_every
        self.expiry_warning = expiry_warning
        self.sync_every = sync_every
        self.sync_after = sync_after
        self.sync_max_age = sync_max_age
        self._next_expiry = time.monotonic()
        self._next_sync = time.monotonic()
        #: Rows handled so far, by kind: `inbox`, `outbox`, `deliveries`, `reconciled`, `pruned`,
        #: `expiring` (warned), `expired`, `synced` (sessions the janitor corrected).
        self.handled: Counter[str] = Counter()
        self._wakeups = {name: asyncio.Event() for name in ("inbox", "outbox", "deliveries")}

    def wake(self) -> None:
        """Asks the lanes waiting for work to look again now (e.g. an event was just stored)."""
        for event in self._wakeups.values():
            event.set()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx  # only a process that delivers events pays for it (memory)

            self._client = httpx.AsyncClient()
        return self._client

    # -- the inbox: provider webhooks ------------------------------------------------------------
    async def process_inbox(self) -> int:
        """Applies one batch of due provider events; each failure is retried with backoff,
        `webhook_retries` times at most. Events of different sessions are applied side by side."""
        events = await self.stores.inbox.claim(self.batch, lease=INBOX_LEASE)
        if not events:
            return 0
        by_session: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            by_session.setdefault(event["session_id"] or event["id"], []).append(event)
        slots = asyncio.Semaphore(INBOX_CONCURRENCY)
        pending = {event["id"] for event in events}

        async def apply(group: list[dict[str, Any]]) -> None:
            for event in group:
                async with slots:
                    await self._apply(event)
                pending.discard(event["id"])

        try:
            await asyncio.gather(*(apply(group) for group in by_session.values()))
        except asyncio.CancelledError:
            await _hand_back(self.stores, pending)
            raise
        self.handled["inbox"] += len(events)
        return len(events)

    async def _apply(self, event: Mapping[str, Any]) -> None:
        module = self.module
        values: dict[str, object] = {"locked_until": None}
        try:
            # The request that stored the event: its log lines and the events it writes carry its id.
            with request_id_bound(event.get("request_id")):
                outcome = await process_webhook_event(module, event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure is recorded on the event and retried or parked
            error = f"{type(exc).__name__}: {exc}"
            log.warning("webhook event %s failed (attempt %s): %s", event["id"], event["attempts"], error)
            values["last_error"] = error
            if event["attempts"] > module.options.webhook_retries:
                values["status"] = "failed"
            else:
                values["available_at"] = utc_now() + backoff(
                    event["attempts"], base=max(module.options.webhook_delay, 0.5), cap=300.0
                )
            WEBHOOK_EVENTS.labels("failed" if "status" in values else "retried").inc()
        else:
            values.update(
                status="ignored" if outcome == "ignored" else "processed",
                processed_at=utc_now(),
                last_error=None,
            )
            WEBHOOK_EVENTS.labels(values["status"]).inc()
        values["updated_at"] = utc_now()
        await self.stores.inbox.record(event["id"], values)

    # -- the outbox: subscribers, and deliveries queued ----------------------------------------
    async def dispatch_outbox(self) -> int:
        # Events are cheap to hand out (one claim, one record per batch): take many at a time.
        dispatched = await dispatch_outbox(
            self.module, self.subscribers, limit=max(200, self.batch * 10), stores=self.stores
        )
        self.handled["outbox"] += dispatched
        return dispatched

    # -- deliveries: one lane per endpoint -------------------------------------------------------
    async def deliver(self) -> int:
        """One batch of every due endpoint's lane, side by side; returns the deliveries attempted."""
        endpoints = await due_endpoints(self.module, stores=self.stores)
        results = await asyncio.gather(*(self._lane(endpoint) for endpoint in endpoints))
        return sum(results)

    async def _lane(self, endpoint_id: str) -> int:
        result = await run_lane(
            self.module,
            self.client,
            endpoint_id,
            retry_base=self.delivery_retry_base,
            disable_after=self.endpoint_disable_after,
            stores=self.stores,
        )
        attempted = result.delivered + result.failed
        self.handled["deliveries"] += attempted
        WEBHOOK_DELIVERIES.labels("delivered").inc(result.delivered)
        WEBHOOK_DELIVERIES.labels("failed").inc(result.failed)
        return attempted

    # -- housekeeping ------------------------------------------------------------------------------
    async def maintain(self) -> int:
        """When due: finishes flows left in an unknown state (every `reconcile_every` seconds), prunes
        finished rows older than the retention (every `prune_every` seconds), warns about and expires
        lapsing authorizations (every `expiry_every` seconds) and asks providers about sessions their
        webhooks never settled (every `sync_every` seconds)."""
        now = time.monotonic()
        done = 0
        if self.reconcile_every > 0 and now >= self._next_reconcile:
            self._next_reconcile = now + self.reconcile_every
            report = await reconcile(self.module, older_than=timedelta(seconds=self.reconcile_every))
            for entry in report:
                log.warning(
                    "reconciler: run %s (%s) %s %s", entry.run_id, entry.name, entry.outcome, entry.detail
                )
            self.handled["reconciled"] += len(report)
            done += len(report)
        if self.prune_every > 0 and now >= self._next_prune:
            self._next_prune = now + self.prune_every
            pruned = await self.stores.retention.prune(retention=self.retention)
            if sum(pruned.values()):
                log.info("pruned rows older than %s: %s", self.retention, dict(pruned))
            self.handled["pruned"] += sum(pruned.values())
        if self.expiry_every > 0 and now >= self._next_expiry:
            self._next_expiry = now + self.expiry_every
            expiry = await self.module.maintain_authorization_expiry(
                warning=self.expiry_warning, limit=self.batch * 5
            )
            self.handled["expiring"] += len(expiry.warned)
            self.handled["expired"] += len(expiry.expired)
            done += len(expiry.warned) + len(expiry.expired)
        if self.sync_every > 0 and now >= self._next_sync:
            self._next_sync = now + self.sync_every
            synced = await sync_sessions(
                self.module, after=self.sync_after, max_age=self.sync_max_age, limit=self.batch
            )
            for checked in synced:
                if checked.changed or checked.outcome == "failed":
                    log.info(
                        "provider sync: session %s %s -> %s (%s) %s",
                        checked.session_id,
                        checked.before,
                        checked.after,
                        checked.outcome,
                        checked.detail,
                    )
            self.handled["synced"] += sum(checked.changed for checked in synced)
        return done

    async def reconcile_if_due(self) -> int:
        return await self.maintain()

    # -- running -----------------------------------------------------------------------------------
    async def run_once(self) -> int:
        """One pass over every lane, one after the other; returns how many rows it handled."""
        await self.maintain()
        return await self.process_inbox() + await self.dispatch_outbox() + await self.deliver()

    async def run(self, stop: asyncio.Event) -> None:
        """Runs every lane until `stop` is set; an error in one lane is logged and that lane goes on."""
        lanes: list[tuple[str, Callable[[], Awaitable[int]]]] = [
            ("inbox", self.process_inbox),
            ("outbox", self.dispatch_outbox),
            ("maintenance", self.maintain),
        ]
        tasks = [
            asyncio.create_task(self._loop(name, step, stop), name=f"paymod-{name}") for name, step in lanes
        ]
        tasks.append(asyncio.create_task(self._delivery_loop(stop), name="paymod-deliveries"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.close()

    async def _loop(self, name: str, step: Callable[[], Awaitable[int]], stop: asyncio.Event) -> None:
        failures = 0
        wakeup = self._wakeups.get(name)
        interval = self.poll_interval if name != "maintenance" else max(self.poll_interval, 1.0)
        while not stop.is_set():
            if wakeup is not None:
                wakeup.clear()
            try:
                handled = await step()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:  # a lane must survive a bad pass (e.g. the database restarting)
                failures += 1
                log.exception("worker %s lane failed (%d in a row)", name, failures)
                handled = 0
            if not handled:
                # Idle: look again soon; after failures, back off (up to 30 s) instead of spinning.
                await self._idle(stop, wakeup, min(MAX_BACKOFF, interval * 2**failures))

    async def _delivery_loop(self, stop: asyncio.Event) -> None:
        """Starts a lane task for every due endpoint without one, and never waits for a slow one."""
        running: dict[str, asyncio.Task[int]] = {}
        resting: dict[str, float] = {}  # endpoints whose lane found nothing: not before this moment
        wakeup = self._wakeups["deliveries"]
        failures = 0
        try:
            while not stop.is_set():
                if wakeup.is_set():
                    wakeup.clear()
                    resting.clear()
                for endpoint_id, task in list(running.items()):
                    if task.done():
                        del running[endpoint_id]
                        if task.cancelled():
                            continue
                        if task.exception() is not None:
                            log.error("delivery lane of %s failed", endpoint_id, exc_info=task.exception())
                        if task.exception() is not None or not task.result():
                            resting[endpoint_id] = time.monotonic() + self.poll_interval
                try:
                    due = await due_endpoints(self.module, stores=self.stores)
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception:
                    failures += 1
                    log.exception("worker delivery lanes failed (%d in a row)", failures)
                    due = []
                now = time.monotonic()
                for endpoint_id in due:
                    if endpoint_id not in running and resting.get(endpoint_id, 0.0) <= now:
                        resting.pop(endpoint_id, None)
                        running[endpoint_id] = asyncio.create_task(self._lane(endpoint_id))
                # Look again when a lane finishes (its endpoint may have more), when woken, or soon.
                await self._idle(
                    stop,
                    wakeup,
                    min(MAX_BACKOFF, self.poll_interval * 2**failures),
                    also=list(running.values()),
                )
            # Stopping: the lanes in flight finish their batch (each bounded by the HTTP timeout).
            if running:
                await asyncio.gather(*running.values(), return_exceptions=True)
        finally:
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)

    async def _idle(
        self,
        stop: asyncio.Event,
        wakeup: asyncio.Event | None,
        seconds: float,
        *,
        also: list[asyncio.Task[int]] | None = None,
    ) -> None:
        waits = [asyncio.ensure_future(stop.wait())]
        if wakeup is not None:
            waits.append(asyncio.ensure_future(wakeup.wait()))
        try:
            await asyncio.wait([*waits, *(also or [])], timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def close(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None


def worker_for(
    settings: WorkerSettings, module: PaymentModule, *, stores: WebhookStores | None = None
) -> Worker:
    """The worker the `[worker]` settings describe; it delivers to `module.subscribers`."""
    return Worker(
        module,
        stores=stores,
        poll_interval=settings.poll_interval,
        batch=settings.batch,
        retention=timedelta(days=settings.retention_days),
        prune_every=settings.prune_interval,
        endpoint_disable_after=timedelta(seconds=settings.endpoint_disable_after),
        expiry_every=settings.authorization_expiry_interval,
        expiry_warning=timedelta(seconds=settings.authorization_expiry_warning),
        sync_every=settings.session_sync_interval,
        sync_after=timedelta(seconds=settings.session_sync_after),
        sync_max_age=timedelta(seconds=settings.session_sync_max_age),
    )


async def _hand_back(stores: WebhookStores, event_ids: set[str]) -> None:
    """Clears the leases of provider events this worker claimed and did not apply (it is stopping)."""
    if not event_ids:
        return
    with contextlib.suppress(Exception):
        await asyncio.shield(stores.inbox.hand_back(set(event_ids)))


async def stop_worker(running: asyncio.Task[None], stop: asyncio.Event, grace: float) -> None:
    """Asks a running `Worker.run` to stop: each lane finishes what it holds; after `grace` seconds
    what is left is cancelled, and its claims are handed back."""
    stop.set()
    done, _ = await asyncio.wait({running}, timeout=grace)
    if not done:
        log.warning("the worker did not stop within %s s: cancelling what is left", grace)
        running.cancel()
    try:
        await running
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("the worker failed while stopping")


__all__ = ["Worker", "stop_worker", "worker_for"]
