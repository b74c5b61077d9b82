"""The dashboard overview's figures: volume per currency and day, collections by status, failing
webhooks and deliveries, and the processes' last heartbeats."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select

from paymod.persistence import tables as t
from paymod.persistence.database import Database
from paymod.persistence.repository import utc_now


@dataclass(slots=True)
class DailyVolume:
    authorized: Decimal = Decimal(0)
    captured: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)


@dataclass(slots=True)
class Overview:
    #: currency -> day (UTC) -> volume, for the last `days` days.
    volume: dict[str, dict[date, DailyVolume]] = field(default_factory=dict)
    days: list[date] = field(default_factory=list)
    collections_by_status: dict[str, int] = field(default_factory=dict)
    failed_webhook_events: int = 0
    failing_deliveries: int = 0
    failing_endpoints: int = 0
    #: kind -> (last heartbeat, processes beating within the staleness window)
    heartbeats: dict[str, datetime] = field(default_factory=dict)


async def overview(database: Database, *, days: int = 30, now: datetime | None = None) -> Overview:
    now = now or utc_now()
    first = (now - timedelta(days=days - 1)).date()
    since = datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)
    result = Overview(days=[first + timedelta(days=n) for n in range(days)])
    p, c, r = t.payment, t.capture, t.refund
    # (what, the row's moment, its amount, the rows): authorized is the payment's own creation.
    sources: list[tuple[str, Any, Any, Any, ColumnElement[bool]]] = [
        ("authorized", p.c.created_at, p.c.amount, p, p.c.deleted_at.is_(None)),
        (
            "captured",
            c.c.created_at,
            c.c.amount,
            c.join(p, p.c.id == c.c.payment_id),
            c.c.deleted_at.is_(None),
        ),
        (
            "refunded",
            r.c.created_at,
            r.c.amount,
            r.join(p, p.c.id == r.c.payment_id),
            r.c.deleted_at.is_(None),
        ),
    ]
    async with database.read() as conn:
        for kind, moment, amount, rows_from, live in sources:
            rows: Iterable[tuple[str, Any, Decimal]]
            if database.is_postgresql:
                day = func.date(func.timezone("UTC", moment))
                grouped = (
                    select(p.c.currency_code, day, func.sum(amount))
                    .select_from(rows_from)
                    .where(live, moment >= since)
                    .group_by(p.c.currency_code, day)
                )
                rows = (await conn.execute(grouped)).tuples()
            else:
                plain = (
                    select(p.c.currency_code, moment, amount)
                    .select_from(rows_from)
                    .where(live, moment >= since)
                )
                rows = ((currency, when.date(), value) for currency, when, value in await conn.execute(plain))
            for currency, day_of, value in rows:
                volume = result.volume.setdefault(currency, {}).setdefault(day_of, DailyVolume())
                setattr(volume, kind, getattr(volume, kind) + Decimal(value))
        pc = t.payment_collection
        result.collections_by_status = {
            status: int(count)
            for status, count in await conn.execute(
                select(pc.c.status, func.count()).where(pc.c.deleted_at.is_(None)).group_by(pc.c.status)
            )
        }
        result.failed_webhook_events = int(
            (
                await conn.execute(
                    select(func.count())
                    .select_from(t.webhook_event)
                    .where(t.webhook_event.c.status == "failed")
                )
            ).scalar_one()
        )
        d, e = t.webhook_delivery, t.webhook_endpoint
        result.failing_deliveries = int(
            (
                await conn.execute(
                    select(func.count())
                    .select_from(d)
                    .where(d.c.status == "pending", d.c.attempts > 0, d.c.last_error.is_not(None))
                )
            ).scalar_one()
        )
        result.failing_endpoints = int(
            (
                await conn.execute(
                    select(func.count())
                    .select_from(e)
                    .where(
                        e.c.deleted_at.is_(None),
                        or_(e.c.failing_since.is_not(None), e.c.disabled_at.is_not(None)),
                    )
                )
            ).scalar_one()
        )
        h = t.process_heartbeat
        result.heartbeats = {
            kind: beat
            for kind, beat in await conn.execute(
                select(h.c.kind, func.max(h.c.heartbeat_at)).group_by(h.c.kind)
            )
        }
    return result
