"""Webhook endpoints and their deliveries (`webhook_endpoint`, `webhook_delivery`): the lanes' SQL.

An endpoint's row doubles as its lane: a worker takes the lane by leasing the row (`lane_locked_until`,
`lane_owner`), and a lane whose owner stopped beating is free at once (`persistence.processes`). Claims
read the lane's pending deliveries through the partial indexes on pending rows, so their cost follows
what is claimed, not the backlog. Only SQL lives here; retries, backoff and when to disable an
endpoint are `paymod.webhooks.deliveries`'s business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain.errors import NotFoundError
from paymod.persistence import outbox
from paymod.persistence.database import Database
from paymod.persistence.processes import owner_alive
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import event_outbox, webhook_delivery, webhook_endpoint

#: How long a worker may hold a lane for one batch; a dead worker's lane is free at once (its
#: heartbeat stops), so this only bounds a stuck one.
LANE_LEASE = timedelta(seconds=120)


def _lane_free(now: datetime) -> Any:
    table = webhook_endpoint
    return or_(
        table.c.lane_locked_until.is_(None),
        table.c.lane_locked_until <= now,
        ~owner_alive(table.c.lane_owner, now),
    )


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


def _with_event() -> Any:
    return select(
        webhook_delivery,
        event_outbox.c.name,
        event_outbox.c.data,
        event_outbox.c.request_id,
        event_outbox.c.created_at.label("event_created_at"),
    ).join(event_outbox, event_outbox.c.id == webhook_delivery.c.event_id)


async def claim_deliveries(
    conn: AsyncConnection, endpoint: Mapping[str, Any], *, probe: bool, limit: int
) -> list[dict[str, Any]]:
    """The lane's next deliveries in commit order, each with its event: those due whose collection has
    nothing earlier waiting; or, to probe an endpoint that is backing off, its oldest delivery, due or not."""
    now = utc_now()
    if probe:
        head = (
            _with_event()
            .where(webhook_delivery.c.endpoint_id == endpoint["id"], webhook_delivery.c.status == "pending")
            .order_by(webhook_delivery.c.event_sequence)
            .limit(1)
        )
        return [dict(r) for r in (await conn.execute(head)).mappings()]
    stmt = (
        _with_event()
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


@dataclass(frozen=True, slots=True)
class Lane:
    """A lane taken: its endpoint's row and the deliveries claimed for this batch."""

    endpoint: dict[str, Any]
    deliveries: list[dict[str, Any]]


@dataclass(slots=True)
class LaneRecord:
    """What one batch of a lane came to, recorded in one transaction."""

    at: datetime
    #: Delivered, by the endpoint's answer status.
    delivered: dict[int | None, list[str]] = field(default_factory=dict)
    #: Failed deliveries: their id and the values to write (attempts, error, next try or `failed`).
    failed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Changes to the endpoint's health columns (none when it stays as it was).
    endpoint: dict[str, Any] | None = None
    #: The endpoint is disabled: its waiting deliveries are given up.
    disabled: bool = False
    #: Events to write with the record (e.g. `webhook_endpoint.disabled`), as (name, data).
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class WebhookEndpointStore:
    """Endpoints, their lanes and their deliveries."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- endpoints ---------------------------------------------------------------------------------
    async def create(self, values: Mapping[str, Any]) -> None:
        async with self._database.write() as conn:
            await conn.execute(insert(webhook_endpoint).values(dict(values)))

    async def list_endpoints(self, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Endpoints not deleted, oldest first (rows as stored, secrets included)."""
        stmt = (
            select(webhook_endpoint)
            .where(webhook_endpoint.c.deleted_at.is_(None))
            .order_by(webhook_endpoint.c.created_at, webhook_endpoint.c.id)
            .limit(limit)
            .offset(offset)
        )
        async with self._database.read() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    async def count_endpoints(self) -> int:
        stmt = (
            select(func.count()).select_from(webhook_endpoint).where(webhook_endpoint.c.deleted_at.is_(None))
        )
        async with self._database.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def delete(self, id: str) -> None:
        """Soft-deletes an endpoint; its queued deliveries go with it (one being sent may still arrive)."""
        async with self._database.write() as conn:
            done = await conn.execute(
                update(webhook_endpoint)
                .where(and_(webhook_endpoint.c.id == id, webhook_endpoint.c.deleted_at.is_(None)))
                .values(deleted_at=utc_now(), enabled=False)
            )
            if not done.rowcount:
                raise NotFoundError(f"WebhookEndpoint with id: {id} was not found")
            await conn.execute(
                update(webhook_delivery)
                .where(webhook_delivery.c.endpoint_id == id, webhook_delivery.c.status == "pending")
                .values(status="failed", last_error="endpoint deleted")
            )

    # -- lanes -------------------------------------------------------------------------------------
    async def due_endpoints(self) -> list[str]:
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
                        table.c.retry_at.is_(None),
                        pending.where(webhook_delivery.c.available_at <= now).exists(),
                    ),
                    # backing off, and the time has come to probe with its oldest delivery
                    and_(table.c.retry_at <= now, pending.exists()),
                ),
            )
            .order_by(table.c.id)
        )
        async with self._database.single() as conn:
            return list((await conn.execute(stmt)).scalars())

    async def take_lane(self, endpoint_id: str, owner: str | None, *, limit: int) -> Lane | None:
        """Takes the endpoint's lane for `owner` and claims its next deliveries (a probe of its oldest
        one when it is backing off); None when the lane is held elsewhere or the endpoint is gone."""
        now = utc_now()
        async with self._database.write() as conn:
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
            if row is None:
                return None
            endpoint = dict(row)
            rows = await claim_deliveries(conn, endpoint, probe=endpoint["retry_at"] is not None, limit=limit)
        return Lane(endpoint, rows)

    async def give_back(self, endpoint_id: str, owner: str | None) -> None:
        """Releases the lane, unless another owner has taken it over meanwhile."""
        table = webhook_endpoint
        mine = table.c.lane_owner.is_(None) if owner is None else table.c.lane_owner == owner
        async with self._database.write() as conn:
            await conn.execute(
                update(table).where(table.c.id == endpoint_id, mine).values(lane_locked_until=None)
            )

    async def record(self, endpoint_id: str, record: LaneRecord) -> None:
        """Writes every delivery's outcome and the endpoint's health, in one transaction."""
        async with self._database.write() as conn:
            # The delivered ones in one statement per answer status (nearly always one: 200).
            for status, ids in record.delivered.items():
                await conn.execute(
                    update(webhook_delivery)
                    .where(webhook_delivery.c.id.in_(ids))
                    .values(
                        status="delivered",
                        delivered_at=record.at,
                        response_status=status,
                        attempts=webhook_delivery.c.attempts + 1,
                        last_error=None,
                        locked_until=None,
                    )
                )
            for id, values in record.failed:
                await conn.execute(update(webhook_delivery).where(webhook_delivery.c.id == id).values(values))
            if record.endpoint is not None:
                await conn.execute(
                    update(webhook_endpoint)
                    .where(webhook_endpoint.c.id == endpoint_id)
                    .values(record.endpoint)
                )
            if record.disabled:
                await conn.execute(
                    update(webhook_delivery)
                    .where(
                        webhook_delivery.c.endpoint_id == endpoint_id, webhook_delivery.c.status == "pending"
                    )
                    .values(status="failed", last_error="endpoint disabled")
                )
            for name, data in record.events:
                outbox.emit(conn, name, data)


__all__ = ["LANE_LEASE", "Lane", "LaneRecord", "WebhookEndpointStore", "claim_deliveries"]
