"""The reads of the dashboard's webhook endpoints and regions pages."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from paymod.persistence import tables as t
from paymod.persistence.database import Database


async def recent_deliveries(
    database: Database, endpoint_ids: Sequence[str], per_endpoint: int = 5
) -> dict[str, list[Mapping[str, Any]]]:
    d, o = t.webhook_delivery, t.event_outbox
    found: dict[str, list[Mapping[str, Any]]] = {id: [] for id in endpoint_ids}
    async with database.read() as conn:
        for id in endpoint_ids:
            rows = await conn.execute(
                select(d, o.c.name)
                .outerjoin(o, o.c.id == d.c.event_id)
                .where(d.c.endpoint_id == id)
                .order_by(d.c.created_at.desc())
                .limit(per_endpoint)
            )
            found[id] = [dict(row) for row in rows.mappings()]
    return found


async def regions(database: Database) -> dict[str, list[str]]:
    """Each region and the providers enabled in it."""
    link = t.region_payment_provider
    found: dict[str, list[str]] = defaultdict(list)
    async with database.read() as conn:
        for region_id, provider_id in await conn.execute(
            select(link.c.region_id, link.c.payment_provider_id).order_by(
                link.c.region_id, link.c.payment_provider_id
            )
        ):
            found[region_id].append(provider_id)
    return dict(found)
