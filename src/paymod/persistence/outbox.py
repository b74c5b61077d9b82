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
from paymod.persistence.types import dumps

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


# A WITH item (PostgreSQL) that writes events along with the statement it heads: a data-modifying WITH
# runs whatever its statement does. Its parameters are `with_events_params`'s; one text for any number
# of events, so the driver prepares it once.
BUFFERED_EVENTS = """
buffered_events AS (
  INSERT INTO event_outbox
    (id, name, data, payment_collection_id, status, attempts, available_at, request_id, created_at)
  SELECT e.id, e.name, CAST(e.data AS JSONB), e.collection_id, 'pending', 0, :events_at, e.request_id,
    :events_at
  FROM unnest(CAST(:event_ids AS TEXT[]), CAST(:event_names AS TEXT[]), CAST(:event_data AS TEXT[]),
              CAST(:event_collections AS TEXT[]), CAST(:event_requests AS TEXT[]))
    AS e(id, name, data, collection_id, request_id)
)"""


def buffered_events_params(conn: AsyncConnection) -> dict[str, Any] | None:
    """The parameters of `BUFFERED_EVENTS` for the events buffered so far, which leave the buffer;
    None when there are none."""
    rows = take(conn)
    if not rows:
        return None
    return {
        "events_at": rows[0]["created_at"],
        "event_ids": [row["id"] for row in rows],
        "event_names": [row["name"] for row in rows],
        "event_data": [dumps(row["data"]) for row in rows],
        "event_collections": [row["payment_collection_id"] for row in rows],
        "event_requests": [row["request_id"] for row in rows],
    }


def take(conn: AsyncConnection) -> list[dict[str, Any]]:
    """The events buffered so far, as outbox rows with their ids, taken out of the buffer."""
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
