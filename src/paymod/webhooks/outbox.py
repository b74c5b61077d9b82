"""Outbound events: from the outbox to in-process subscribers and to signed HTTP endpoints.

Delivery is at least once and, within one payment collection, in commit order: an event is not
handed out while an earlier event of the same collection is still pending. HTTP endpoints get
`POST {id, type, created, data}` signed with `Paymod-Signature` and retried with exponential backoff
for up to three days; receivers dedupe by the event id.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain.errors import InvalidDataError, NotFoundError
from paymod.domain.ids import new_id
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import event_outbox, webhook_delivery, webhook_endpoint
from paymod.services.events import Event, Subscribers
from paymod.services.payment_module import PaymentModule
from paymod.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, sign_payload

log = logging.getLogger("paymod.webhooks")


DELIVERY_WINDOW = timedelta(days=3)
SUBSCRIBER_ATTEMPTS = 10
HTTP_TIMEOUT = 10.0


def backoff(attempts: int, *, base: float = 1.0, cap: float = 3600.0) -> timedelta:
    """Exponential backoff: base, 2·base, 4·base... capped."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def event_document(row: Mapping[str, Any]) -> Event:
    """What subscribers and endpoints receive."""
    created: datetime = row["created_at"]
    return {
        "id": row["id"],
        "type": row["name"],
        "created": int(created.timestamp()),
        "payment_collection_id": row["payment_collection_id"],
        "data": row["data"],
    }


def _in_order(table: Any, row_key: Any, *scope: Any) -> Any:
    """No earlier pending row of the same collection (and scope): keeps per-collection order."""
    earlier = table.alias("earlier")
    same_scope = [getattr(earlier.c, col.name) == col for col in scope]
    return ~(
        select(earlier.c[row_key.name])
        .where(
            earlier.c.payment_collection_id == table.c.payment_collection_id,
            earlier.c.status == "pending",
            getattr(earlier.c, row_key.name) < row_key,
            *same_scope,
        )
        .exists()
    )


async def claim(
    conn: AsyncConnection, table: Any, order_key: Any, limit: int, lease: float, *scope: Any
) -> list[dict[str, Any]]:
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
    if "payment_collection_id" in table.c:
        due = due.where((table.c.payment_collection_id.is_(None)) | _in_order(table, order_key, *scope))
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


async def dispatch_outbox(module: PaymentModule, subscribers: Subscribers, *, limit: int = 50) -> int:
    """Hands due outbox events to subscribers and queues them for matching endpoints."""
    async with module.database.write() as conn:
        rows = await claim(conn, event_outbox, event_outbox.c.sequence, limit, 60.0)
        live = select(webhook_endpoint).where(
            webhook_endpoint.c.enabled.is_(True), webhook_endpoint.c.deleted_at.is_(None)
        )
        endpoints = (await conn.execute(live)).mappings().all() if rows else []
        # Events nobody receives (no subscriber here, no endpoint) are marked in one statement.
        unheard = {
            row["id"]
            for row in rows
            if not subscribers.for_event(row["name"])
            and not any(_wants(ep["events"], row["name"]) for ep in endpoints)
        }
        if unheard:
            await conn.execute(
                update(event_outbox)
                .where(event_outbox.c.id.in_(sorted(unheard)))
                .values(status="dispatched", dispatched_at=utc_now(), locked_until=None, last_error=None)
            )
    for row in rows:
        if row["id"] in unheard:
            continue
        event = event_document(row)
        error = None
        for handler in subscribers.for_event(row["name"]):
            try:
                await handler(event)
            except Exception as exc:  # a subscriber's bug must not stop the others; it is retried
                log.warning("subscriber failed on %s %s", row["name"], row["id"], exc_info=True)
                error = f"{type(exc).__name__}: {exc}"
        now = utc_now()
        async with module.database.write() as conn:
            if error is None or row["attempts"] >= SUBSCRIBER_ATTEMPTS:
                await conn.execute(
                    update(event_outbox)
                    .where(event_outbox.c.id == row["id"])
                    .values(
                        status="dispatched" if error is None else "failed",
                        dispatched_at=now,
                        locked_until=None,
                        last_error=error,
                    )
                )
                targets = [ep for ep in endpoints if _wants(ep["events"], row["name"])]
                if targets:
                    await conn.execute(
                        insert(webhook_delivery),
                        [
                            {
                                "id": new_id("whdl"),
                                "endpoint_id": ep["id"],
                                "event_id": row["id"],
                                "event_sequence": row["sequence"],
                                "payment_collection_id": row["payment_collection_id"],
                                "status": "pending",
                                "attempts": 0,
                                "available_at": now,
                                "created_at": now,
                            }
                            for ep in targets
                        ],
                    )
            else:
                await conn.execute(
                    update(event_outbox)
                    .where(event_outbox.c.id == row["id"])
                    .values(available_at=now + backoff(row["attempts"]), locked_until=None, last_error=error)
                )
    return len(rows)


def _wants(events: Sequence[str], name: str) -> bool:
    return "*" in events or name in events


async def deliver_webhooks(
    module: PaymentModule, client: httpx.AsyncClient, *, limit: int = 20, retry_base: float = 5.0
) -> int:
    """POSTs due deliveries to their endpoints; retries with backoff for up to three days."""
    async with module.database.write() as conn:
        rows = await claim(
            conn,
            webhook_delivery,
            webhook_delivery.c.event_sequence,
            limit,
            HTTP_TIMEOUT * 3,
            webhook_delivery.c.endpoint_id,
        )
        if not rows:
            return 0
        endpoint_ids = sorted({r["endpoint_id"] for r in rows})
        event_ids = sorted({r["event_id"] for r in rows})
        endpoints = {
            r["id"]: dict(r)
            for r in (
                await conn.execute(select(webhook_endpoint).where(webhook_endpoint.c.id.in_(endpoint_ids)))
            ).mappings()
        }
        events = {
            r["id"]: dict(r)
            for r in (
                await conn.execute(select(event_outbox).where(event_outbox.c.id.in_(event_ids)))
            ).mappings()
        }
    for row in rows:
        endpoint = endpoints[row["endpoint_id"]]
        if endpoint["deleted_at"] is not None or not endpoint["enabled"]:
            # Deleted after this delivery was queued: it is dropped, not sent.
            async with module.database.write() as conn:
                await conn.execute(
                    update(webhook_delivery)
                    .where(webhook_delivery.c.id == row["id"])
                    .values(status="failed", locked_until=None, last_error="endpoint deleted")
                )
            continue
        body = json.dumps(
            event_document(events[row["event_id"]]), separators=(",", ":"), default=str
        ).encode()
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign_payload(body, endpoint["secret"]),
            EVENT_ID_HEADER: row["event_id"],
        }
        status: int | None = None
        error = None
        try:
            response = await client.post(endpoint["url"], content=body, headers=headers, timeout=HTTP_TIMEOUT)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        now = utc_now()
        values: dict[str, Any] = {"locked_until": None, "response_status": status, "last_error": error}
        if error is None:
            values.update(status="delivered", delivered_at=now)
        elif now - row["created_at"] >= DELIVERY_WINDOW:
            values.update(status="failed")
        else:
            values.update(available_at=now + backoff(row["attempts"], base=retry_base, cap=6 * 3600.0))
        async with module.database.write() as conn:
            await conn.execute(
                update(webhook_delivery).where(webhook_delivery.c.id == row["id"]).values(values)
            )
    return len(rows)


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
        name: row[name]
        for name in ("id", "url", "events", "enabled", "description", "created_at", "updated_at")
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
