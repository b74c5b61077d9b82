"""The worker: processes the webhook inbox, dispatches the outbox, delivers HTTP webhooks.

Several workers may run at once on one PostgreSQL database: each claims due rows with
`FOR UPDATE SKIP LOCKED` and a lease (`locked_until`), so a row is handled by one worker at a time
and taken over if its worker dies. `paymod serve` runs one in-process; `paymod worker` runs one alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import timedelta

import httpx
from sqlalchemy import update

from paymod.persistence.repository import utc_now
from paymod.persistence.tables import webhook_event
from paymod.services.events import Subscribers
from paymod.services.payment_module import PaymentModule
from paymod.webhooks.inbox import process_webhook_event
from paymod.webhooks.outbox import backoff, claim, deliver_webhooks, dispatch_outbox
from paymod.workflows.reconciler import reconcile

log = logging.getLogger("paymod.worker")

INBOX_LEASE = 120.0
MAX_BACKOFF = 30.0


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
    ) -> None:
        self.module = module
        self.subscribers = subscribers if subscribers is not None else module.subscribers
        self.poll_interval = poll_interval
        self.batch = batch
        self._client = http_client
        self._own_client = http_client is None
        self.delivery_retry_base = delivery_retry_base
        self.reconcile_every = reconcile_every
        self._next_reconcile = time.monotonic() + reconcile_every
        #: Rows handled so far, by kind: `inbox`, `outbox`, `deliveries`, `reconciled`.
        self.handled: Counter[str] = Counter()
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Asks a `run` loop that is waiting for work to look again now (e.g. an event was just stored)."""
        self._wakeup.set()

    async def process_inbox(self) -> int:
        """Processes due webhook events; retries with backoff, `webhook_retries` times at most."""
        module = self.module
        async with module.database.write() as conn:
            events = await claim(conn, webhook_event, webhook_event.c.available_at, self.batch, INBOX_LEASE)
        for event in events:
            values: dict[str, object] = {"locked_until": None}
            try:
                outcome = await process_webhook_event(module, event)
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
            else:
                values.update(
                    status="ignored" if outcome == "ignored" else "processed",
                    processed_at=utc_now(),
                    last_error=None,
                )
            values["updated_at"] = utc_now()
            async with module.database.write() as conn:
                await conn.execute(
                    update(webhook_event).where(webhook_event.c.id == event["id"]).values(values)
                )
        return len(events)

    async def reconcile_if_due(self) -> int:
        """Every `reconcile_every` seconds: finishes flows left in an unknown state."""
        now = time.monotonic()
        if self.reconcile_every <= 0 or now < self._next_reconcile:
            return 0
        self._next_reconcile = now + self.reconcile_every
        report = await reconcile(self.module, older_than=timedelta(seconds=self.reconcile_every))
        for entry in report:
            log.warning(
                "reconciler: run %s (%s) %s %s", entry.run_id, entry.name, entry.outcome, entry.detail
            )
        self.handled["reconciled"] += len(report)
        return len(report)

    async def run_once(self) -> int:
        """One pass over everything due; returns how many rows it handled."""
        await self.reconcile_if_due()
        inbox = await self.process_inbox()
        self.handled["inbox"] += inbox
        outbox = await dispatch_outbox(self.module, self.subscribers, limit=self.batch * 5)
        self.handled["outbox"] += outbox
        if self._client is None:
            self._client = httpx.AsyncClient()
        deliveries = await deliver_webhooks(
            self.module, self._client, limit=self.batch, retry_base=self.delivery_retry_base
        )
        self.handled["deliveries"] += deliveries
        return inbox + outbox + deliveries

    async def run(self, stop: asyncio.Event) -> None:
        """Runs until `stop` is set; an error in one pass is logged and the next pass goes on.

        Between passes that found nothing it waits `poll_interval`, or less when `wake` is called.
        """
        failures = 0
        try:
            while not stop.is_set():
                self._wakeup.clear()
                try:
                    handled = await self.run_once()
                    failures = 0
                except Exception:  # the loop must survive a bad pass (e.g. the database restarting)
                    failures += 1
                    log.exception("worker pass failed (%d in a row)", failures)
                    handled = 0
                if not handled:
                    # Idle: poll again soon; after failures, back off (up to 30 s) instead of spinning.
                    await self._idle(stop, min(MAX_BACKOFF, self.poll_interval * 2**failures))
        finally:
            await self.close()

    async def _idle(self, stop: asyncio.Event, seconds: float) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wakeup.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def close(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None


async def stop_worker(running: asyncio.Task[None], stop: asyncio.Event, grace: float) -> None:
    """Asks a running `Worker.run` to stop after its current pass; cancels the pass after `grace` seconds.

    A cancelled pass loses nothing: the rows it claimed go back to the queue when their lease ends.
    """
    stop.set()
    done, _ = await asyncio.wait({running}, timeout=grace)
    if not done:
        log.warning("the worker did not stop within %s s: cancelling its pass", grace)
        running.cancel()
    try:
        await running
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("the worker failed while stopping")


__all__ = ["Worker", "stop_worker"]
