"""The money path's reads: a payment with its movements, a collection with the facts its status is
derived from, each in as few round trips as the database allows.

The child rows come along as JSON arrays built by the database, so a guard or a recomputation reads
one statement instead of one per table. Amounts stay exact: PostgreSQL writes NUMERIC into JSON as
its decimal text, SQLite stores them as strings, and both are parsed into `Decimal`.

Locks: on PostgreSQL the row lock (`FOR NO KEY UPDATE`) is its own statement, and the facts are read
by the next one. A statement reads with the snapshot it started with, so facts read by the statement
that waited for the lock would miss what the lock holder committed (READ COMMITTED), and a guard or a
total could be computed from stale rows. On SQLite, `BEGIN IMMEDIATE` already holds the database's
write lock, so the facts come with the row in one statement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import TextualSelect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain.errors import NotFoundError
from paymod.persistence.types import Amount, JSONDocument, UTCDateTime

Row = dict[str, Any]

# {agg}: the aggregate that builds a JSON array; {arr}: a JSON array of values; {sub}: makes a
# subquery's JSON text a nested array.
_DIALECT = {
    "postgresql": {"agg": "json_agg", "arr": "json_build_array", "sub": ""},
    "sqlite": {"agg": "json_group_array", "arr": "json_array", "sub": "json"},
}

_MOVEMENTS = """
  (SELECT CAST({agg}(x.amount) AS TEXT) FROM capture x
    WHERE x.payment_id = {payment} AND x.deleted_at IS NULL) AS captured,
  (SELECT CAST({agg}(y.amount) AS TEXT) FROM refund y
    WHERE y.payment_id = {payment} AND y.deleted_at IS NULL) AS refunded
"""

_LOCK_PAYMENT = "SELECT p.* FROM payment p WHERE p.id = :id AND p.deleted_at IS NULL FOR NO KEY UPDATE OF p"

_LOCK_COLLECTION = (
    "SELECT c.id FROM payment_collection c WHERE c.id = :id AND c.deleted_at IS NULL FOR NO KEY UPDATE OF c"
)

_COLLECTION = """
SELECT c.id, c.amount, c.currency_code,
  (SELECT CAST({agg}({arr}(s.id, s.status, s.amount, s.currency_code)) AS TEXT)
    FROM payment_session s
    WHERE s.payment_collection_id = c.id AND s.deleted_at IS NULL) AS sessions,
  (SELECT CAST({agg}({arr}(p.id, p.payment_session_id, p.currency_code, p.canceled_at IS NOT NULL,
      {sub}((SELECT {agg}(x.amount) FROM capture x WHERE x.payment_id = p.id AND x.deleted_at IS NULL)),
      {sub}((SELECT {agg}(y.amount) FROM refund y WHERE y.payment_id = p.id AND y.deleted_at IS NULL))
    )) AS TEXT)
    FROM payment p
    WHERE p.payment_collection_id = c.id AND p.deleted_at IS NULL) AS payments
FROM payment_collection c
WHERE c.id = :id AND c.deleted_at IS NULL
"""

# Typed by name (positional columns would be matched by position).
_PAYMENT_TYPES: dict[str, Any] = {
    "amount": Amount(),
    "data": JSONDocument,
    "metadata": JSONDocument,
    "captured_at": UTCDateTime(),
    "canceled_at": UTCDateTime(),
    "created_at": UTCDateTime(),
    "updated_at": UTCDateTime(),
    "deleted_at": UTCDateTime(),
}


def _amounts(values: Any) -> list[Decimal]:
    return [Decimal(str(v)) for v in values or ()]


def _parse(document: str | None) -> list[Any]:
    if document is None:  # PostgreSQL aggregates no rows into NULL
        return []
    parsed = json.loads(document, parse_float=Decimal, parse_int=Decimal)
    return list(parsed)


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    status: str
    amount: Decimal
    currency_code: str


@dataclass(frozen=True, slots=True)
class PaymentRow:
    id: str
    payment_session_id: str
    currency_code: str
    canceled: bool
    captures: list[Decimal]
    refunds: list[Decimal]


@dataclass(frozen=True, slots=True)
class CollectionFacts:
    id: str
    amount: Decimal
    currency_code: str
    sessions: list[SessionRow]
    payments: list[PaymentRow]


@dataclass(frozen=True, slots=True)
class LockedPayment:
    row: Row
    captures: list[Decimal]
    refunds: list[Decimal]


class Ledger:
    """The statements, built once for a dialect."""

    def __init__(self, dialect: str) -> None:
        parts = _DIALECT[dialect]
        self._locks = dialect == "postgresql"
        if self._locks:
            self._payment: TextualSelect = text(_LOCK_PAYMENT).columns(**_PAYMENT_TYPES)
            self._movements = text("SELECT " + _MOVEMENTS.format(**parts, payment=":id"))
            self._lock_collection = text(_LOCK_COLLECTION)
        else:
            movements = _MOVEMENTS.format(**parts, payment="p.id")
            self._payment = text(
                f"SELECT p.*, {movements} FROM payment p WHERE p.id = :id AND p.deleted_at IS NULL"
            ).columns(**_PAYMENT_TYPES)
        self._collection = text(_COLLECTION.format(**parts)).columns(amount=Amount())

    async def lock_payment(self, conn: AsyncConnection, payment_id: str) -> LockedPayment:
        """The payment, locked, with its live capture and refund amounts."""
        found = (await conn.execute(self._payment, {"id": payment_id})).mappings().first()
        if found is None:
            raise NotFoundError(f"Payment with id: {payment_id} was not found")
        row = dict(found)
        if self._locks:
            movements = (await conn.execute(self._movements, {"id": payment_id})).mappings().one()
            captured, refunded = movements["captured"], movements["refunded"]
        else:
            captured, refunded = row.pop("captured"), row.pop("refunded")
        return LockedPayment(row=row, captures=_amounts(_parse(captured)), refunds=_amounts(_parse(refunded)))

    async def lock_collection(self, conn: AsyncConnection, collection_id: str) -> CollectionFacts:
        """The collection, locked, with what its status derives from."""
        if self._locks and (await conn.execute(self._lock_collection, {"id": collection_id})).first() is None:
            raise NotFoundError(f"PaymentCollection with id: {collection_id} was not found")
        found = (await conn.execute(self._collection, {"id": collection_id})).mappings().first()
        if found is None:
            raise NotFoundError(f"PaymentCollection with id: {collection_id} was not found")
        return CollectionFacts(
            id=found["id"],
            amount=found["amount"],
            currency_code=found["currency_code"],
            sessions=[
                SessionRow(id=s[0], status=s[1], amount=Decimal(str(s[2])), currency_code=s[3])
                for s in _parse(found["sessions"])
            ],
            payments=[
                PaymentRow(
                    id=p[0],
                    payment_session_id=p[1],
                    currency_code=p[2],
                    canceled=bool(p[3]),
                    captures=_amounts(p[4]),
                    refunds=_amounts(p[5]),
                )
                for p in _parse(found["payments"])
            ],
        )
