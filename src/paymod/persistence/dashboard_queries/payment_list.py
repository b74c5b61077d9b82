"""The dashboard's payment list: filters, search by any of our ids or the provider's, keyset pages,
and the status a payment is in (derived: payments have no status column)."""

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
    and_,
    cast,
    exists,
    func,
    not_,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.persistence import tables as t
from paymod.persistence.database import Database

#: Keys of a payment's provider data that hold the provider's own id (Stripe's PaymentIntent `id`, the
#: testing provider's `reference`): searching the list for one finds the payment.
EXTERNAL_ID_KEYS = ("id", "reference")
PAGE_SIZE = 25


class PaymentStatus(StrEnum):
    """Where a payment stands; payments have no status column, it is derived from these facts."""

    AUTHORIZED = "authorized"
    PARTIALLY_CAPTURED = "partially_captured"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CANCELED = "canceled"


def payment_status(
    canceled_at: datetime | None, captured_at: datetime | None, captured: Decimal, refunded: Decimal
) -> PaymentStatus:
    if canceled_at is not None:
        return PaymentStatus.CANCELED
    if refunded > 0:
        return PaymentStatus.REFUNDED if refunded >= captured else PaymentStatus.PARTIALLY_REFUNDED
    if captured_at is not None:
        return PaymentStatus.CAPTURED
    return PaymentStatus.PARTIALLY_CAPTURED if captured > 0 else PaymentStatus.AUTHORIZED


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


def _sum(column: Any, is_postgresql: bool) -> ColumnElement[Any]:
    if is_postgresql:
        return func.coalesce(func.sum(column), 0)
    # SQLite holds amounts as text. Rounding the float sum to 6 places makes the comparison of refunded
    # with captured exact for any amount the API accepts in a currency (at most 3 decimals).
    return func.coalesce(func.round(func.sum(cast(column, Float)), 6), 0)


def _status_clause(status: PaymentStatus, is_postgresql: bool) -> ColumnElement[bool]:
    p = t.payment
    live_capture = and_(t.capture.c.payment_id == p.c.id, t.capture.c.deleted_at.is_(None))
    live_refund = and_(t.refund.c.payment_id == p.c.id, t.refund.c.deleted_at.is_(None))
    has_capture = exists().where(live_capture)
    has_refund = exists().where(live_refund)
    not_canceled = p.c.canceled_at.is_(None)
    if status is PaymentStatus.CANCELED:
        return p.c.canceled_at.is_not(None)
    if status is PaymentStatus.AUTHORIZED:
        return and_(not_canceled, p.c.captured_at.is_(None), not_(has_capture), not_(has_refund))
    if status is PaymentStatus.PARTIALLY_CAPTURED:
        return and_(not_canceled, p.c.captured_at.is_(None), has_capture, not_(has_refund))
    if status is PaymentStatus.CAPTURED:
        return and_(not_canceled, p.c.captured_at.is_not(None), not_(has_refund))
    refunded = select(_sum(t.refund.c.amount, is_postgresql)).where(live_refund).scalar_subquery()
    captured = select(_sum(t.capture.c.amount, is_postgresql)).where(live_capture).scalar_subquery()
    whole = refunded >= captured if status is PaymentStatus.REFUNDED else refunded < captured
    return and_(not_canceled, has_refund, whole)


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
        p.c.captured_at,
        p.c.canceled_at,
    ).where(p.c.deleted_at.is_(None))
    if filters.status is not None:
        stmt = stmt.where(_status_clause(filters.status, pg))
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
            status=payment_status(r.canceled_at, r.captured_at, *totals[r.id]),
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
