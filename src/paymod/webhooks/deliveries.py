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
  what is claimed, not the backlog); a deliver, claim or record is a short transaction of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.persistence import outbox as events
from paymod.persistence.processes import owner_alive
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import event_outbox, webhook_delivery, webhook_endpoint
from paymod.services.payment_module import PaymentModule
from paymod.webhooks.outbox import backoff, event_document
from paymod.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, sign_payload

log = logging.getLogger("paymod.webhooks")

DELIVERY_WINDOW = timedelta(days=3)
HTTP_TIMEOUT = 10.0
#: Deliveries of one lane in flight at once.
LANE_CONCURRENCY = 16
#: Deliveries a lane claims at a time.
LANE_BATCH = 200
#: How long a worker may hold a lane for one batch; a dead worker's lane is free at once (its
#: heartbeat stops), so this only bounds a stuck one.
LANE_LEASE = timedelta(seconds=120)
#: Deliveries in a row that fail before the endpoint backs off as a whole.
BREAKER_THRESHOLD = 3
ENDPOINT_BACKOFF_CAP = 3600.0
DEFAULT_DISABLE_AFTER = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class LaneResult:
    delivered: int = 0
    failed: int = 0


def _lane_free(now: datetime) -> Any:
    table = webhook_endpoint
    return or_(
        table.c.lane_locked_until.is_(None),
        table.c.lane_locked_until <= now,
        ~owner_alive(table.c.lane_owner, now),
    )


async def due_endpoints(module: PaymentModule) -> list[str]:
    """Enabled endpoints that are not backing off and whose lane is free."""
    now = utc_now()
    table = webhook_endpoint
    pending = select(webhook_delivery.c.id).where(
        webhook_delivery.c.endpoint_id == table.c.id, webhook_delivery.c.status == "pending"
    )
    stmt = (
        select(table.c.id)
        .where(
            table.c.enabled.is_(True),
            table.c.deleted_at.is_(None),
            _lane_free(now),
            or_(
                # healthy: a delivery is due (read in IDX_webhook_delivery_pending_endpoint)
                and_(
                    table.c.retry_at.is_(None), pending.where(webhook_delivery.c.available_at <= now).exists()
                ),
                # backing off, and the time has come to probe with its oldest delivery
                and_(table.c.retry_at <= now, pending.exists()),
            ),
        )
        .order_by(table.c.id)
    )
    async with module.database.single() as conn:
        return list((await conn.execute(stmt)).scalars())


def _held_back(now: datetime) -> Any:
    """An earlier pending delivery of the same endpoint and collection that is not due yet."""
    earlier = webhook_delivery.alias("earlier")
    return exists(
        select(earlier.c.id).where(
            earlier.c.endpoint_id == webhook_delivery.c.endpoint_id,
            earlier.c.payment_collection_id == webhook_delivery.c.payment_collection_id,
            earlier.c.status == "pending",
            earlier.c.event_sequence < webhook_delivery.c.event_sequence,
            earlier.c.available_at > now,
        )
    )


async def _take_lane(conn: AsyncConnection, endpoint_id: str, owner: str | None) -> dict[str, Any] | None:
    now = utc_now()
    taken = await conn.execute(
        update(webhook_endpoint)
        .where(
            webhook_endpoint.c.id == endpoint_id,
            webhook_endpoint.c.enabled.is_(True),
            webhook_endpoint.c.deleted_at.is_(None),
            _lane_free(now),
        )
        .values(lane_locked_until=now + LANE_LEASE, lane_owner=owner)
        .returning(*webhook_endpoint.c)
    )
    row = taken.mappings().first()
    return None if row is None else dict(row)


async def _claim(
    conn: AsyncConnection, endpoint: Mapping[str, Any], *, probe: bool, limit: int
) -> list[dict[str, Any]]:
    """The lane's next deliveries in commit order: those due whose collection has nothing earlier
    waiting; or, to probe an endpoint that is backing off, its oldest delivery, due or not."""
    now = utc_now()
    if probe:
        head = (
            select(
                webhook_delivery,
                event_outbox.c.name,
                event_outbox.c.data,
                event_outbox.c.request_id,
                event_outbox.c.created_at.label("event_created_at"),
            )
            .join(event_outbox, event_outbox.c.id == webhook_delivery.c.event_id)
            .where(webhook_delivery.c.endpoint_id == endpoint["id"], webhook_delivery.c.status == "pending")
            .order_by(webhook_delivery.c.event_sequence)
            .limit(1)
        )
        return [dict(r) for r in (await conn.execute(head)).mappings()]
    stmt = (
        select(
            webhook_delivery,
            event_outbox.c.name,
            event_outbox.c.data,
            event_outbox.c.request_id,
            event_outbox.c.created_at.label("event_created_at"),
        )
        .join(event_outbox, event_outbox.c.id == webhook_delivery.c.event_id)
        .where(
            webhook_delivery.c.endpoint_id == endpoint["id"],
            webhook_delivery.c.status == "pending",
            webhook_delivery.c.available_at <= now,
            or_(webhook_delivery.c.payment_collection_id.is_(None), ~_held_back(now)),
        )
        .order_by(webhook_delivery.c.event_sequence)
        .limit(limit)
    )
    return [dict(r) for r in (await conn.execute(stmt)).mappings()]


async def run_lane(
    module: PaymentModule,
    client: httpx.AsyncClient,
    endpoint_id: str,
    *,
    retry_base: float = 5.0,
    disable_after: timedelta = DEFAULT_DISABLE_AFTER,
    batch: int = LANE_BATCH,
) -> LaneResult:
    """Takes the endpoint's lane (or returns at once when another worker has it) and sends one batch
    of its due deliveries; records each outcome and the endpoint's health; gives the lane back."""
    async with module.database.write() as conn:
        endpoint = await _take_lane(conn, endpoint_id, module.process_id)
        if endpoint is None:
            return LaneResult()
        rows = await _claim(conn, endpoint, probe=endpoint["retry_at"] is not None, limit=batch)
    try:
        if not rows:
            return LaneResult()
        outcomes = await _send_all(client, endpoint, rows)
        await _record(module, endpoint, rows, outcomes, retry_base=retry_base, disable_after=disable_after)
        failed = sum(1 for o in outcomes.values() if o.error is not None)
        return LaneResult(delivered=len(outcomes) - failed, failed=failed)
    finally:
        await _give_back(module, endpoint_id, endpoint["lane_owner"])


async def _give_back(module: PaymentModule, endpoint_id: str, owner: str | None) -> None:
    table = webhook_endpoint
    mine = table.c.lane_owner.is_(None) if owner is None else table.c.lane_owner == owner
    async with module.database.write() as conn:
        await conn.execute(
            update(table).where(table.c.id == endpoint_id, mine).values(lane_locked_until=None)
        )


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


async def _send(client: httpx.AsyncClient, endpoint: Mapping[str, Any], row: Mapping[str, Any]) -> Outcome:
    document = event_document(
        {
            "id": row["event_id"],
            "name": row["name"],
            "created_at": row["event_created_at"],
            "payment_collection_id": row["payment_collection_id"],
            "data": row["data"],
            "request_id": row["request_id"],
        }
    )
    body = json.dumps(document, separators=(",", ":"), default=str).encode()
    headers = {
        "content-type": "application/json",
        SIGNATURE_HEADER: sign_payload(body, endpoint["secret"]),
        EVENT_ID_HEADER: row["event_id"],
    }
    try:
        response = await client.post(endpoint["url"], content=body, headers=headers, timeout=HTTP_TIMEOUT)
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}", utc_now())
    status = response.status_code
    return Outcome(status, None if 200 <= status < 300 else f"HTTP {status}", utc_now())


async def _record(
    module: PaymentModule,
    endpoint: Mapping[str, Any],
    rows: list[dict[str, Any]],
    outcomes: Mapping[str, Outcome],
    *,
    retry_base: float,
    disable_after: timedelta,
) -> None:
    now = utc_now()
    delivered = [r for r in rows if r["id"] in outcomes and outcomes[r["id"]].error is None]
    failed = [r for r in rows if r["id"] in outcomes and outcomes[r["id"]].error is not None]
    async with module.database.write() as conn:
        # The delivered ones in one statement per answer status (nearly always one: 200).
        by_status: dict[int | None, list[str]] = {}
        for row in delivered:
            by_status.setdefault(outcomes[row["id"]].status, []).append(row["id"])
        for status, ids in by_status.items():
            await conn.execute(
                update(webhook_delivery)
                .where(webhook_delivery.c.id.in_(ids))
                .values(
                    status="delivered",
                    delivered_at=now,
                    response_status=status,
                    attempts=webhook_delivery.c.attempts + 1,
                    last_error=None,
                    locked_until=None,
                )
            )
        for row in failed:
            outcome = outcomes[row["id"]]
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
            await conn.execute(
                update(webhook_delivery).where(webhook_delivery.c.id == row["id"]).values(values)
            )
        await _endpoint_health(
            conn,
            endpoint,
            delivered=bool(delivered),
            failed=len(failed),
            now=now,
            disable_after=disable_after,
            retry_base=retry_base,
        )


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


async def _endpoint_health(
    conn: AsyncConnection,
    endpoint: Mapping[str, Any],
    *,
    delivered: bool,
    failed: int,
    now: datetime,
    disable_after: timedelta,
    retry_base: float,
) -> None:
    table = webhook_endpoint
    if delivered and not failed:
        if endpoint["failing_since"] is not None or endpoint["consecutive_failures"]:
            await conn.execute(
                update(table)
                .where(table.c.id == endpoint["id"])
                .values(failing_since=None, consecutive_failures=0, retry_at=None, updated_at=now)
            )
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
        await conn.execute(update(table).where(table.c.id == endpoint["id"]).values(values))
        await conn.execute(
            update(webhook_delivery)
            .where(webhook_delivery.c.endpoint_id == endpoint["id"], webhook_delivery.c.status == "pending")
            .values(status="failed", last_error="endpoint disabled")
        )
        events.emit(
            conn,
            "webhook_endpoint.disabled",
            {"id": endpoint["id"], "url": endpoint["url"], "reason": reason},
        )
        log.warning("webhook endpoint %s (%s) disabled: %s", endpoint["id"], endpoint["url"], reason)
        return
    if failures >= BREAKER_THRESHOLD:
        values["retry_at"] = now + endpoint_backoff(
            now - failing_since, base=retry_base, until_disabled=failing_since + disable_after - now
        )
    await conn.execute(update(table).where(table.c.id == endpoint["id"]).values(values))


__all__ = ["LaneResult", "due_endpoints", "run_lane"]
