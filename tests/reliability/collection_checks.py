"""The collection-level money invariants, checked on the rows in the database (deleted rows included).

Read with plain SQL, not through the module, so a bug in the module's own reads cannot hide a bug in
its writes:

- what the payments hold (a live payment its amount, a canceled one what it captured) ≤ the
  collection's amount, at the currency's precision (split payments are fine, two full payments are
  not);
- per payment, Σ captures ≤ its amount and Σ refunds ≤ Σ captures;
- every payment has its session row, and a live payment's session is not deleted;
- captures, refunds and payments are in the currency's precision;
- the stored status and totals are what `derive_collection` gives for the rows;
- each live payment's stored status is what `payment_status` gives for its rows;
- a deleted collection has no payment that was not canceled;
- optionally, at most one live session (the store's session route replaces earlier sessions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from paymod.domain.money import round_amount
from paymod.domain.rules import PaymentFacts, SessionFacts, derive_collection, payment_status
from paymod.persistence.database import Database

ZERO = Decimal(0)


def _total(values: Sequence[Decimal]) -> Decimal:
    return sum(values, ZERO)


def _d(value: Any) -> Decimal:
    return Decimal(str(value))


@dataclass
class CollectionRows:
    collection: dict[str, Any]
    sessions: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    captures: dict[str, list[Decimal]]
    refunds: dict[str, list[Decimal]]

    @property
    def live_sessions(self) -> list[dict[str, Any]]:
        return [s for s in self.sessions if s["deleted_at"] is None]

    @property
    def live_payments(self) -> list[dict[str, Any]]:
        return [p for p in self.payments if p["deleted_at"] is None and p["canceled_at"] is None]


async def read_rows(
    database_url: str, collection_id: str, *, database: Database | None = None
) -> CollectionRows:
    owned = database is None
    database = database or Database(database_url, pool_size=1)
    try:
        async with database.read() as conn:

            async def rows(sql: str) -> list[dict[str, Any]]:
                found = await conn.execute(text(sql), {"id": collection_id})
                return [dict(r) for r in found.mappings()]

            collection = (await rows("SELECT * FROM payment_collection WHERE id = :id"))[0]
            sessions = await rows(
                "SELECT * FROM payment_session WHERE payment_collection_id = :id ORDER BY created_at, id"
            )
            payments = await rows("SELECT * FROM payment WHERE payment_collection_id = :id ORDER BY id")
            movements: dict[str, dict[str, list[Decimal]]] = {"capture": {}, "refund": {}}
            for table, found in movements.items():
                for row in await rows(
                    f"SELECT m.payment_id, m.amount FROM {table} m JOIN payment p ON p.id = m.payment_id "
                    "WHERE p.payment_collection_id = :id AND m.deleted_at IS NULL"
                ):
                    found.setdefault(row["payment_id"], []).append(_d(row["amount"]))
    finally:
        if owned:
            await database.close()
    for row in (collection, *sessions, *payments):
        if row.get("amount") is not None:
            row["amount"] = _d(row["amount"])
    return CollectionRows(collection, sessions, payments, movements["capture"], movements["refund"])


def violations(rows: CollectionRows, *, single_session: bool = False) -> list[str]:
    """What is wrong with the collection's rows (empty when every invariant holds)."""
    found: list[str] = []
    collection = rows.collection
    currency = collection["currency_code"]

    def money(value: Decimal) -> Decimal:
        return round_amount(value, currency)

    # a live payment holds its amount; a canceled one what it captured before
    held = _total(
        [
            _total(rows.captures.get(p["id"], [])) if p["canceled_at"] is not None else p["amount"]
            for p in rows.payments
            if p["deleted_at"] is None
        ]
    )
    if money(held) > money(collection["amount"]):
        found.append(
            f"payments hold {held}, more than the collection's amount {collection['amount']} "
            f"({len(rows.live_payments)} live payments)"
        )
    sessions = {s["id"]: s for s in rows.sessions}
    for payment in rows.payments:
        if payment["deleted_at"] is not None:
            continue
        captured = _total(rows.captures.get(payment["id"], []))
        refunded = _total(rows.refunds.get(payment["id"], []))
        if captured > payment["amount"]:
            found.append(f"{payment['id']}: captured {captured} of {payment['amount']}")
        if refunded > captured:
            found.append(f"{payment['id']}: refunded {refunded} of {captured} captured")
        status = payment_status(
            canceled=payment["canceled_at"] is not None,
            fully_captured=payment["captured_at"] is not None,
            captured=captured,
            refunded=refunded,
        )
        if payment["status"] != status.value:
            found.append(
                f"{payment['id']}: stored status {payment['status']} but the rows give {status.value}"
            )
        for what, amounts in (
            ("payment", [payment["amount"]]),
            ("capture", rows.captures.get(payment["id"], [])),
            ("refund", rows.refunds.get(payment["id"], [])),
        ):
            for amount in amounts:
                if amount != money(amount):
                    found.append(f"{payment['id']}: {what} amount {amount} is finer than {currency} allows")
        session = sessions.get(payment["payment_session_id"])
        if session is None:
            found.append(f"{payment['id']}: its session {payment['payment_session_id']} is gone")
        elif payment["canceled_at"] is None and session["deleted_at"] is not None:
            found.append(f"{payment['id']}: live, but its session {session['id']} is deleted")
    if collection["deleted_at"] is not None:
        kept = [p["id"] for p in rows.payments if p["canceled_at"] is None]
        if kept:
            found.append(f"the collection was deleted with payments that were never canceled: {kept}")
    if single_session and len(rows.live_sessions) > 1:
        found.append(f"{len(rows.live_sessions)} live sessions where the store leaves one")

    live_payments = [p for p in rows.payments if p["deleted_at"] is None]
    canceled_sessions = {p["payment_session_id"] for p in live_payments if p["canceled_at"] is not None}
    derived = derive_collection(
        amount=collection["amount"],
        currency_code=currency,
        sessions=[
            SessionFacts(
                status=s["status"],
                amount=s["amount"],
                currency_code=s["currency_code"],
                payment_canceled=s["id"] in canceled_sessions,
            )
            for s in rows.live_sessions
        ],
        payments=[
            PaymentFacts(
                currency_code=p["currency_code"],
                canceled=p["canceled_at"] is not None,
                captures=rows.captures.get(p["id"], []),
                refunds=rows.refunds.get(p["id"], []),
            )
            for p in live_payments
        ],
    )
    stored = (
        collection["status"],
        _d(collection["authorized_amount"] or 0),
        _d(collection["captured_amount"] or 0),
        _d(collection["refunded_amount"] or 0),
    )
    expected = (
        derived.status.value,
        derived.authorized_amount,
        derived.captured_amount,
        derived.refunded_amount,
    )
    if stored != expected:
        found.append(f"stored status/authorized/captured/refunded {stored} but the rows give {expected}")
    return found


async def check(
    database_url: str, collection_id: str, *, single_session: bool = False, database: Database | None = None
) -> list[str]:
    rows = await read_rows(database_url, collection_id, database=database)
    return violations(rows, single_session=single_session)
