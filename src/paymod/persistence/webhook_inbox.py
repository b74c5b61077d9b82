"""The `webhook_event` inbox: provider webhooks stored once, claimed by workers, their outcome recorded.

Only SQL lives here; what an event does to a payment is `paymod.webhooks.inbox`'s business. The inbox
is an unordered queue shared by every worker: a claim takes due rows `FOR UPDATE SKIP LOCKED` and
leases them, so two workers never apply one event at the same time and a dead worker's events come
back when their lease runs out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain.errors import NotFoundError
from paymod.persistence import outbox
from paymod.persistence.database import Database
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import webhook_event

#: The event written with every newly stored provider webhook (in the same transaction).
WEBHOOK_RECEIVED = "payment.webhook_received"


@dataclass(frozen=True, slots=True)
class Stored:
    """The inbox row of a delivery: new, or the one an earlier delivery of the same event stored."""

    id: str
    duplicate: bool


async def claim_queue(
    conn: AsyncConnection, table: Any, order_key: Any, limit: int, lease: float
) -> list[dict[str, Any]]:
    """Claims up to `limit` due rows of an unordered queue, oldest first; several workers share it
    (`FOR UPDATE SKIP LOCKED`). Each claim counts as an attempt."""
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


class WebhookInboxStore:
    """Reads and writes of the `webhook_event` inbox."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def store(self, values: Mapping[str, Any]) -> Stored:
        """Inserts one event unless (provider, event id) is already stored; a new one writes
        `payment.webhook_received` in the same transaction."""
        dialect_insert = pg_insert if self._database.is_postgresql else sqlite_insert
        stmt = dialect_insert(webhook_event).values(dict(values)).on_conflict_do_nothing()
        async with self._database.write() as conn:
            if (await conn.execute(stmt)).rowcount:
                outbox.emit(
                    conn, WEBHOOK_RECEIVED, {"id": values["id"], "provider_id": values["provider_id"]}
                )
                return Stored(str(values["id"]), duplicate=False)
            existing = (
                await conn.execute(
                    select(webhook_event.c.id).where(
                        webhook_event.c.provider_id == values["provider_id"],
                        webhook_event.c.event_id == values["event_id"],
                    )
                )
            ).scalar_one()
        return Stored(str(existing), duplicate=True)

    async def claim(self, limit: int, *, lease: float) -> list[dict[str, Any]]:
        """Due pending events, leased for `lease` seconds to this caller."""
        async with self._database.write() as conn:
            return await claim_queue(conn, webhook_event, webhook_event.c.available_at, limit, lease)

    async def record(self, id: str, values: Mapping[str, Any]) -> None:
        """Writes what applying an event came to (status, error, next attempt); releases its lease."""
        async with self._database.write() as conn:
            await conn.execute(update(webhook_event).where(webhook_event.c.id == id).values(dict(values)))

    async def hand_back(self, ids: Iterable[str]) -> None:
        """Releases claimed events that were not applied, without counting the attempt."""
        async with self._database.write() as conn:
            await conn.execute(
                update(webhook_event)
                .where(webhook_event.c.id.in_(sorted(ids)), webhook_event.c.status == "pending")
                .values(locked_until=None, attempts=webhook_event.c.attempts - 1)
            )

    async def replay(self, id: str) -> None:
        """Puts an event back in the queue, due now, with no attempts counted."""
        async with self._database.write() as conn:
            updated = await conn.execute(
                update(webhook_event)
                .where(webhook_event.c.id == id)
                .values(
                    status="pending", attempts=0, available_at=utc_now(), locked_until=None, last_error=None
                )
            )
            if not updated.rowcount:
                raise NotFoundError(f"WebhookEvent with id: {id} was not found")

    async def list_events(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Stored events, newest first, rows as stored."""
        stmt = (
            select(webhook_event)
            .order_by(webhook_event.c.created_at.desc(), webhook_event.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if status is not None:
            stmt = stmt.where(webhook_event.c.status == status)
        async with self._database.read() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    async def count_events(self, *, status: str | None = None) -> int:
        stmt = select(func.count()).select_from(webhook_event)
        if status is not None:
            stmt = stmt.where(webhook_event.c.status == status)
        async with self._database.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def retrieve(self, id: str) -> dict[str, Any]:
        async with self._database.read() as conn:
            row = (
                (await conn.execute(select(webhook_event).where(webhook_event.c.id == id))).mappings().first()
            )
        if row is None:
            raise NotFoundError(f"WebhookEvent with id: {id} was not found")
        return dict(row)


__all__ = ["WEBHOOK_RECEIVED", "Stored", "WebhookInboxStore", "claim_queue"]
