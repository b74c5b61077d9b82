"""Events written to the outbox in the same transaction as the change they describe.

Services call `emit` while they hold a write transaction; `Database.write` flushes the buffered
events with one INSERT just before it commits, so an event exists exactly when its change does.
The worker's side (claims and their outcomes) is `paymod.persistence.event_outbox`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain.ids import new_id
from paymod.observability.context import current_request_id
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import event_outbox

_BUFFER = "paymod_events"
_INSERT_EVENTS = insert(event_outbox)
EVENT_PREFIX = "evt"


def emit(
    conn: AsyncConnection, name: str, data: dict[str, Any], payment_collection_id: str | None = None
) -> None:
    """Buffers one event on the transaction's connection, with the id of the request that caused it."""
    conn.info.setdefault(_BUFFER, []).append(
        {
            "name": name,
            "data": data,
            "payment_collection_id": payment_collection_id,
            "request_id": current_request_id(),
        }
    )


def discard(conn: AsyncConnection) -> None:
    conn.info.pop(_BUFFER, None)


def take(conn: AsyncConnection) -> list[dict[str, Any]]:
    """The events buffered so far, as outbox rows with their ids, taken out of the buffer: for a
    statement that writes them along with its own change (`Ledger.store_collection_totals`)."""
    events = conn.info.pop(_BUFFER, None)
    if not events:
        return []
    now = utc_now()
    return [
        {
            **event,
            "id": new_id(EVENT_PREFIX),
            "status": "pending",
            "attempts": 0,
            "available_at": now,
            "created_at": now,
        }
        for event in events
    ]


async def flush(conn: AsyncConnection) -> None:
    rows = take(conn)
    if rows:
        await conn.execute(_INSERT_EVENTS, rows)
