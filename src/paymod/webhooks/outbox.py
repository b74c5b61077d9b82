"""Outbound events: from the outbox to in-process subscribers and to signed HTTP endpoints.

Delivery is at least once and, within one payment collection, in commit order: an event is not
handed out while an earlier event of the same collection is still waiting. HTTP endpoints get
`POST {id, type, created, payment_collection_id, data, request}` signed with `Paymod-Signature` (see
`paymod.webhooks.deliveries`); receivers dedupe by the event id.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain.errors import InvalidDataError, NotFoundError
from paymod.domain.ids import new_id
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import event_outbox, webhook_delivery, webhook_endpoint
from paymod.services.events import Event, Subscribers
from paymod.services.payment_module import PaymentModule

log = logging.getLogger("paymod.webhooks")


DELIVERY_WINDOW = timedelta(days=3)
SUBSCRIBER_ATTEMPTS = 10
HTTP_TIMEOUT = 10.0


def backoff(attempts: int, *, base: float = 1.0, cap: float = 3600.0) -> timedelta:
    """Exponential backoff: base, 2·base, 4·base... capped."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def event_document(row: Mapping[str, Any]) -> Event:
    """What subscribers and endpoints receive. `request.id` is the request (`X-Request-Id`) whose
    change the event describes, as in Stripe's events; null for changes no request caused."""
    created: datetime = row["created_at"]
    return {
        "id": row["id"],
        "type": row["name"],
        "created": int(created.timestamp()),
        "payment_collection_id": row["payment_collection_id"],
        "data": row["data"],
        "request": {"id": row.get("request_id")},
    }


async def claim(
    conn: AsyncConnection, table: Any, order_key: Any, limit: int, lease: float
) -> list[dict[str, Any]]:
    """Claims up to `limit` due rows of an unordered queue (the inbox), oldest first; several workers
    share it (`FOR UPDATE SKIP LOCKED`)."""
    now = utc_now()
    due = (
        select(table.c.id)
        .where(
            table.c.status == "pending",
            table.c.available_at <= now,
            (table.c.locked_until.is_(None)) | (table.c.locked_until < now),
        )
        .order_by(order_key)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await conn.execute(due)).scalars())
    if not ids:
        return []
    claimed = await conn.execute(
        update(table)
        .where(table.c.id.in_(ids))
        .values(locked_until=now + timedelta(seconds=lease), attempts=table.c.attempts + 1)
        .returning(*table.c)
    )
    return sorted((dict(r) for r in claimed.mappings()), key=lambda r: r[order_key.name])


# Claims of the outbox run one at a time (an advisory lock on PostgreSQL; SQLite's write lock): a claim
# then sees every earlier claim's leases, which keep the later events of those collections back.
_OUTBOX_CLAIM_LOCK = 0x7061796D6F64  # "paymod"
OUTBOX_LEASE = 60.0


def _held_back(now: datetime) -> Any:
    """An earlier pending event of the same collection that is not due, or is being dispatched: one
    probe of `IDX_event_outbox_pending_collection` per candidate, whatever the backlog."""
    earlier = event_outbox.alias("earlier")
    return (
        select(earlier.c.sequence)
        .where(
            earlier.c.payment_collection_id == event_outbox.c.payment_collection_id,
            earlier.c.status == "pending",
            earlier.c.sequence < event_outbox.c.sequence,
            (earlier.c.available_at > now) | (earlier.c.locked_until > now),
        )
        .exists()
    )


async def claim_events(
    conn: AsyncConnection, limit: int, *, lease: float = OUTBOX_LEASE
) -> list[dict[str, Any]]:
    """Claims up to `limit` due events in commit order, never one whose collection has an earlier event
    still waiting (per-collection order); reads only the pending rows, by a partial index."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(_OUTBOX_CLAIM_LOCK)))
    now = utc_now()
    due = (
        select(event_outbox.c.sequence)
        .where(
            event_outbox.c.status == "pending",
            event_outbox.c.available_at <= now,
            (event_outbox.c.locked_until.is_(None)) | (event_outbox.c.locked_until <= now),
            (event_outbox.c.payment_collection_id.is_(None)) | ~_held_back(now),
        )
        .order_by(event_outbox.c.sequence)
        .limit(limit)
    )
    sequences = list((await conn.execute(due)).scalars())
    if not sequences:
        return []
    claimed = await conn.execute(
        update(event_outbox)
        .where(event_outbox.c.sequence.in_(sequences))
        .values(locked_until=now + timedelta(seconds=lease))
        .returning(*event_outbox.c)
    )
    return sorted((dict(r) for r in claimed.mappings()), key=lambda r: r["sequence"])


async def dispatch_outbox(module: PaymentModule, subscribers: Subscribers, *, limit: int = 100) -> int:
    """Hands due outbox events to subscribers and queues them for the endpoints that want them.

    Three short transactions whatever the batch: the claim, the subscribers' work outside any, and one
    that records every outcome and queues the deliveries. A subscriber that fails holds back the later
    events of its collection (they are released, in order, for a later pass)."""
    async with module.database.write() as conn:
        rows = await claim_events(conn, limit)
        if not rows:
            return 0
        live = select(webhook_endpoint).where(
            webhook_endpoint.c.enabled.is_(True), webhook_endpoint.c.deleted_at.is_(None)
        )
        endpoints = [dict(r) for r in (await conn.execute(live)).mappings()]
    done: list[dict[str, Any]] = []  # dispatched (or given up) rows
    retry: list[tuple[dict[str, Any], str]] = []
    held: list[dict[str, Any]] = []  # later events of a collection whose event failed now
    stuck: set[str] = set()
    for row in rows:
        collection = row["payment_collection_id"]
        if collection is not None and collection in stuck:
            held.append(row)
            continue
        error = None
        event = event_document(row)
        for handler in subscribers.for_event(row["name"]):
            try:
                await handler(event)
            except Exception as exc:  # a subscriber's bug must not stop the others; it is retried
                log.warning("subscriber failed on %s %s", row["name"], row["id"], exc_info=True)
                error = f"{type(exc).__name__}: {exc}"
        if error is not None and row["attempts"] + 1 < SUBSCRIBER_ATTEMPTS:
            retry.append((row, error))
            if collection is not None:
                stuck.add(collection)
        else:
            done.append({**row, "last_error": error})
    now = utc_now()
    async with module.database.write() as conn:
        dispatched = [r["sequence"] for r in done if r["last_error"] is None]
        if dispatched:
            await conn.execute(
                update(event_outbox)
                .where(event_outbox.c.sequence.in_(dispatched))
                .values(
                    status="dispatched",
                    dispatched_at=now,
                    locked_until=None,
                    attempts=event_outbox.c.attempts + 1,
                    last_error=None,
                )
            )
        for row in done:
            if row["last_error"] is not None:  # given up after SUBSCRIBER_ATTEMPTS
                await conn.execute(
                    update(event_outbox)
                    .where(event_outbox.c.sequence == row["sequence"])
                    .values(
                        status="failed",
                        dispatched_at=now,
                        locked_until=None,
                        attempts=row["attempts"] + 1,
                        last_error=row["last_error"],
                    )
                )
        for row, error in retry:
            await conn.execute(
                update(event_outbox)
                .where(event_outbox.c.sequence == row["sequence"])
                .values(
                    available_at=now + backoff(row["attempts"] + 1),
                    locked_until=None,
                    attempts=row["attempts"] + 1,
                    last_error=error,
                )
            )
        if held:
            await conn.execute(
                update(event_outbox)
                .where(event_outbox.c.sequence.in_([r["sequence"] for r in held]))
                .values(locked_until=None)
            )
        deliveries = [
            {
                "id": new_id("whdl"),
                "endpoint_id": endpoint["id"],
                "event_id": row["id"],
                "event_sequence": row["sequence"],
                "payment_collection_id": row["payment_collection_id"],
                "status": "pending",
                "attempts": 0,
                "available_at": now,
                "created_at": now,
            }
            for row in done
            for endpoint in endpoints
            if _wants(endpoint["events"], row["name"])
        ]
        if deliveries:
            await conn.execute(insert(webhook_delivery), deliveries)
    return len(done) + len(retry)


def _wants(events: Sequence[str], name: str) -> bool:
    return "*" in events or name in events


# -- endpoints -------------------------------------------------------------------------------------
async def create_webhook_endpoint(
    module: PaymentModule,
    url: str,
    *,
    events: Sequence[str] = ("*",),
    secret: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """Registers an endpoint; the returned secret signs every delivery (shown here, kept for signing)."""
    if not url.startswith(("http://", "https://")):
        raise InvalidDataError("url must be an http(s) URL")
    if not events or not all(isinstance(e, str) and e for e in events):
        raise InvalidDataError("events must be a non-empty list of event names (or '*')")
    now = utc_now()
    values = {
        "id": new_id("we"),
        "url": url,
        "events": list(events),
        "secret": secret or "whsec_" + secrets.token_hex(24),
        "enabled": True,
        "description": description,
        "created_at": now,
        "updated_at": now,
    }
    async with module.database.write() as conn:
        await conn.execute(insert(webhook_endpoint).values(values))
    return values


async def list_webhook_endpoints(
    module: PaymentModule, *, limit: int | None = None, offset: int = 0
) -> list[dict[str, Any]]:
    """Endpoints not deleted, oldest first (rows as stored, secrets included)."""
    async with module.database.read() as conn:
        stmt = (
            select(webhook_endpoint)
            .where(webhook_endpoint.c.deleted_at.is_(None))
            .order_by(webhook_endpoint.c.created_at, webhook_endpoint.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [dict(r) for r in (await conn.execute(stmt)).mappings()]


async def count_webhook_endpoints(module: PaymentModule) -> int:
    stmt = select(func.count()).select_from(webhook_endpoint).where(webhook_endpoint.c.deleted_at.is_(None))
    async with module.database.read() as conn:
        return int((await conn.execute(stmt)).scalar_one())


def webhook_endpoint_document(row: Mapping[str, Any], *, secret: bool = False) -> dict[str, Any]:
    """What operators see of an endpoint; its secret only when it is created."""
    document = {
        name: row.get(name, default)
        for name, default in (
            ("id", None),
            ("url", None),
            ("events", None),
            ("enabled", True),
            ("description", None),
            ("failing_since", None),
            ("consecutive_failures", 0),
            ("retry_at", None),
            ("disabled_at", None),
            ("disabled_reason", None),
            ("created_at", None),
            ("updated_at", None),
        )
    }
    if secret:
        document["secret"] = row["secret"]
    return document


async def delete_webhook_endpoint(module: PaymentModule, id: str) -> None:
    async with module.database.write() as conn:
        done = await conn.execute(
            update(webhook_endpoint)
            .where(and_(webhook_endpoint.c.id == id, webhook_endpoint.c.deleted_at.is_(None)))
            .values(deleted_at=utc_now(), enabled=False)
        )
        if not done.rowcount:
            raise NotFoundError(f"WebhookEndpoint with id: {id} was not found")
        # Its queued deliveries go with it (one being sent right now may still arrive).
        await conn.execute(
            update(webhook_delivery)
            .where(webhook_delivery.c.endpoint_id == id, webhook_delivery.c.status == "pending")
            .values(status="failed", last_error="endpoint deleted")
        )
