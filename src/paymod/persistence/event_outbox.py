"""The worker's side of the `event_outbox`: claims in commit order, and what each pass came to.

Only SQL lives here; who receives an event is `paymod.webhooks.outbox`'s business. Events are
written by `paymod.persistence.outbox.emit`, in the transaction of the change they describe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain.ids import new_id
from paymod.persistence.database import Database
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import event_outbox, webhook_delivery, webhook_endpoint

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


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed batch of events and the endpoints live when it was claimed (who gets deliveries)."""

    events: list[dict[str, Any]]
    endpoints: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Retry:
    """An event a subscriber failed on: tried again at `available_at`."""

    event: Mapping[str, Any]
    error: str
    available_at: datetime


@dataclass(slots=True)
class Dispatch:
    """What one pass over a claimed batch came to, recorded in one transaction."""

    at: datetime
    #: Handed to every subscriber (by `sequence`).
    dispatched: list[int] = field(default_factory=list)
    #: Given up after the last attempt, with the error.
    given_up: list[tuple[Mapping[str, Any], str]] = field(default_factory=list)
    retries: list[Retry] = field(default_factory=list)
    #: Later events of a collection whose event failed now: released untouched, in order, for a later pass.
    held: list[int] = field(default_factory=list)
    #: `webhook_delivery` rows to queue for the endpoints.
    deliveries: list[dict[str, Any]] = field(default_factory=list)


class EventOutboxStore:
    """The worker's reads and writes of the `event_outbox`."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def claim(self, limit: int, *, lease: float = OUTBOX_LEASE) -> Claimed:
        """Claims due events (see `claim_events`) and reads the live endpoints, in one transaction."""
        async with self._database.write() as conn:
            rows = await claim_events(conn, limit, lease=lease)
            if not rows:
                return Claimed([], [])
            live = select(webhook_endpoint).where(
                webhook_endpoint.c.enabled.is_(True), webhook_endpoint.c.deleted_at.is_(None)
            )
            endpoints = [dict(r) for r in (await conn.execute(live)).mappings()]
        return Claimed(rows, endpoints)

    async def record(self, outcome: Dispatch) -> None:
        """Records every outcome of a pass and queues its deliveries, in one transaction."""
        now = outcome.at
        async with self._database.write() as conn:
            if outcome.dispatched:
                await conn.execute(
                    update(event_outbox)
                    .where(event_outbox.c.sequence.in_(outcome.dispatched))
                    .values(
                        status="dispatched",
                        dispatched_at=now,
                        locked_until=None,
                        attempts=event_outbox.c.attempts + 1,
                        last_error=None,
                    )
                )
            for row, error in outcome.given_up:
                await conn.execute(
                    update(event_outbox)
                    .where(event_outbox.c.sequence == row["sequence"])
                    .values(
                        status="failed",
                        dispatched_at=now,
                        locked_until=None,
                        attempts=row["attempts"] + 1,
                        last_error=error,
                    )
                )
            for retry in outcome.retries:
                await conn.execute(
                    update(event_outbox)
                    .where(event_outbox.c.sequence == retry.event["sequence"])
                    .values(
                        available_at=retry.available_at,
                        locked_until=None,
                        attempts=retry.event["attempts"] + 1,
                        last_error=retry.error,
                    )
                )
            if outcome.held:
                await conn.execute(
                    update(event_outbox)
                    .where(event_outbox.c.sequence.in_(outcome.held))
                    .values(locked_until=None)
                )
            if outcome.deliveries:
                await conn.execute(insert(webhook_delivery), outcome.deliveries)


def delivery_rows(
    events: Sequence[Mapping[str, Any]], endpoints: Sequence[Mapping[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """The `webhook_delivery` rows queueing each event for each endpoint that subscribes to it."""
    return [
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
        for row in events
        for endpoint in endpoints
        if "*" in endpoint["events"] or row["name"] in endpoint["events"]
    ]


__all__ = [
    "OUTBOX_LEASE",
    "Claimed",
    "Dispatch",
    "EventOutboxStore",
    "Retry",
    "claim_events",
    "delivery_rows",
]
