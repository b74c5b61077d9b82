"""The dashboard's payment list: filters (the status by the stored `payment.status` and its index),
search by any of our ids or the provider's, keyset pages."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    cast,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain import rules
from paymod.domain.statuses import PaymentStatus
from paymod.persistence import tables as t
from paymod.persistence.database import Database

#: Keys of a payment's provider data that hold the provider's own id (Stripe's PaymentIntent `id`, the
#: testing provider's `reference`): searching the list for one finds the payment.
EXTERNAL_ID_KEYS = ("id", "reference")
PAGE_SIZE = 25


def payment_status(
    canceled_at: datetime | None, captured_at: datetime | None, captured: Decimal, refunded: Decimal
) -> PaymentStatus:
    """The status of a payment read with its facts (the collection page's payments)."""
    return rules.payment_status(
        canceled=canceled_at is not None,
        fully_captured=captured_at is not None,
        captured=captured,
        refunded=refunded,
    )


class PaymentOrder(StrEnum):
    NEWEST = "-created_at"
    OLDEST = "created_at"
    LARGEST = "-amount"
    SMALLEST = "amount"


@dataclass(frozen=True, slots=True)
class PaymentFilters:
    status: PaymentStatus | None = None
    provider_id: str | None = None
    currency_code: str | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None
    q: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentRow:
    id: str
    amount: Decimal
    currency_code: str
    provider_id: str
    payment_collection_id: str
    payment_session_id: str
    created_at: datetime
    captured: Decimal
    refunded: Decimal
    status: PaymentStatus


@dataclass(frozen=True, slots=True)
class PaymentPage:
    rows: list[PaymentRow]
    #: Cursors for the next and the previous page (None at either end).
    after: str | None
    before: str | None


def _search_clause(q: str) -> ColumnElement[bool]:
    """Our ids say what they are by their prefix, so each is one index probe; anything else is looked
    for as the provider's id in the payment's data."""
    p = t.payment
    if q.startswith("pay_col_"):
        return p.c.payment_collection_id == q
    if q.startswith("payses_"):
        return p.c.payment_session_id == q
    if q.startswith("capt_"):
        return p.c.id.in_(select(t.capture.c.payment_id).where(t.capture.c.id == q))
    if q.startswith("ref_"):
        return p.c.id.in_(select(t.refund.c.payment_id).where(t.refund.c.id == q))
    if q.startswith("pay_"):
        return p.c.id == q
    return or_(*(p.c.data[key].as_string() == q for key in EXTERNAL_ID_KEYS))


def _order_key(order: PaymentOrder, is_postgresql: bool) -> ColumnElement[Any]:
    p = t.payment
    if order in (PaymentOrder.NEWEST, PaymentOrder.OLDEST):
        return p.c.created_at
    # SQLite stores amounts as text; its order is by number only through a cast (no index then).
    return p.c.amount if is_postgresql else cast(p.c.amount, Float)


def encode_cursor(value: Any, id: str) -> str:
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return base64.urlsafe_b64encode(json.dumps([text, id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, order: PaymentOrder) -> tuple[Any, str] | None:
    """The (value, id) a cursor points after; None for a cursor that is not one of ours."""
    try:
        text, id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if order in (PaymentOrder.NEWEST, PaymentOrder.OLDEST):
            return datetime.fromisoformat(text), str(id)
        return Decimal(text), str(id)
    except (ValueError, TypeError, ArithmeticError):
        return None


def _cursor_value(value: Any, is_postgresql: bool) -> Any:
    return float(value) if isinstance(value, Decimal) and not is_postgresql else value


async def list_payments(
    database: Database,
    filters: PaymentFilters,
    *,
    order: PaymentOrder = PaymentOrder.NEWEST,
    after: str | None = None,
    before: str | None = None,
    limit: int = PAGE_SIZE,
) -> PaymentPage:
    """One page of payments in `order`, after (or before) a cursor: keyset pagination, so a page
    deep in the list costs what the first one does."""
    pg = database.is_postgresql
    p = t.payment
    key = _order_key(order, pg)
    descending = order in (PaymentOrder.NEWEST, PaymentOrder.LARGEST)
    backwards = before is not None and after is None
    # Reading backwards flips the order; the page is turned around again below.
    reading_desc = descending != backwards
    stmt: Select[Any] = select(
        p.c.id,
        p.c.amount,
        p.c.currency_code,
        p.c.provider_id,
        p.c.payment_collection_id,
        p.c.payment_session_id,
        p.c.created_at,
        p.c.status,
    ).where(p.c.deleted_at.is_(None))
    if filters.status is not None:
        stmt = stmt.where(p.c.status == filters.status.value)
    if filters.provider_id:
        stmt = stmt.where(p.c.provider_id == filters.provider_id)
    if filters.currency_code:
        stmt = stmt.where(p.c.currency_code == filters.currency_code.lower())
    if filters.created_from is not None:
        stmt = stmt.where(p.c.created_at >= filters.created_from)
    if filters.created_before is not None:
        stmt = stmt.where(p.c.created_at < filters.created_before)
    if filters.q:
        stmt = stmt.where(_search_clause(filters.q.strip()))
    cursor = decode_cursor(after or before or "", order) if (after or before) else None
    if cursor is not None:
        value, id = cursor
        bound = tuple_(key, p.c.id)
        point = tuple_(_cursor_value(value, pg), id)
        stmt = stmt.where(bound < point if reading_desc else bound > point)
    if reading_desc:
        stmt = stmt.order_by(key.desc(), p.c.id.desc())
    else:
        stmt = stmt.order_by(key.asc(), p.c.id.asc())
    stmt = stmt.limit(limit + 1)
    async with database.read() as conn:
        found = list((await conn.execute(stmt)).all())
        more = len(found) > limit
        found = found[:limit]
        if backwards:
            found.reverse()
        totals = await _totals(conn, [r.id for r in found])
    rows = [
        PaymentRow(
            id=r.id,
            amount=r.amount,
            currency_code=r.currency_code,
            provider_id=r.provider_id,
            payment_collection_id=r.payment_collection_id,
            payment_session_id=r.payment_session_id,
            created_at=r.created_at,
            captured=totals[r.id][0],
            refunded=totals[r.id][1],
            status=PaymentStatus(r.status),
        )
        for r in found
    ]

    def cursor_of(row: PaymentRow) -> str:
        value = row.created_at if order in (PaymentOrder.NEWEST, PaymentOrder.OLDEST) else row.amount
        return encode_cursor(value, row.id)

    has_next = more if not backwards else True
    has_previous = (more if backwards else cursor is not None) and bool(rows)
    return PaymentPage(
        rows=rows,
        after=cursor_of(rows[-1]) if rows and has_next else None,
        before=cursor_of(rows[0]) if has_previous else None,
    )


async def _totals(conn: AsyncConnection, payment_ids: Sequence[str]) -> dict[str, tuple[Decimal, Decimal]]:
    """Captured and refunded per payment, summed exactly."""
    captured: dict[str, Decimal] = defaultdict(Decimal)
    refunded: dict[str, Decimal] = defaultdict(Decimal)
    if payment_ids:
        for table, into in ((t.capture, captured), (t.refund, refunded)):
            rows = await conn.execute(
                select(table.c.payment_id, table.c.amount).where(
                    table.c.payment_id.in_(payment_ids), table.c.deleted_at.is_(None)
                )
            )
            for payment_id, amount in rows:
                into[payment_id] += amount
    return {id: (captured[id], refunded[id]) for id in payment_ids}


async def payment_currencies_and_providers(database: Database) -> tuple[list[str], list[str]]:
    """The filter choices: currencies seen on payments, and providers registered."""
    async with database.read() as conn:
        currencies = (
            await conn.execute(
                select(t.payment_collection.c.currency_code)
                .distinct()
                .order_by(t.payment_collection.c.currency_code)
            )
        ).scalars()
        providers = (
            await conn.execute(select(t.payment_provider.c.id).order_by(t.payment_provider.c.id))
        ).scalars()
        return list(currencies), list(providers)
