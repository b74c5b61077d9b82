"""The stored payment status (`payment.status`): the rule of `domain.rules.payment_status` in SQL, and
the statement that writes it.

Every write that changes what a status derives from (a payment authorized, a capture or refund booked
or unbooked, `captured_at` or `canceled_at` set or cleared) ends with `refresh` in its own transaction,
after the payment's row lock: the UPDATE is a new statement, so on PostgreSQL (READ COMMITTED) it reads
every movement committed by an earlier holder of the lock, and the write's own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Float, Update, and_, bindparam, case, cast, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain.statuses import PaymentStatus
from paymod.persistence import tables as t
from paymod.persistence.driver import DriverStatement


def live_sum(column: Any, is_postgresql: bool) -> ColumnElement[Any]:
    """The sum of an amount column, 0 for no rows."""
    if is_postgresql:
        return func.coalesce(func.sum(column), 0)
    # SQLite holds amounts as text. Rounding the float sum to 6 places makes the comparison of refunded
    # with captured exact for any amount the API accepts in a currency (at most 3 decimals).
    return func.coalesce(func.round(func.sum(cast(column, Float)), 6), 0)


def status_of_payment(is_postgresql: bool) -> ColumnElement[str]:
    """The status of the `payment` row in scope, from its flags and its live captures and refunds."""
    p = t.payment
    captured = (
        select(live_sum(t.capture.c.amount, is_postgresql))
        .where(and_(t.capture.c.payment_id == p.c.id, t.capture.c.deleted_at.is_(None)))
        .scalar_subquery()
    )
    refunded = (
        select(live_sum(t.refund.c.amount, is_postgresql))
        .where(and_(t.refund.c.payment_id == p.c.id, t.refund.c.deleted_at.is_(None)))
        .scalar_subquery()
    )
    return case(
        (p.c.canceled_at.is_not(None), PaymentStatus.CANCELED.value),
        (
            refunded > 0,
            case(
                (refunded >= captured, PaymentStatus.REFUNDED.value),
                else_=PaymentStatus.PARTIALLY_REFUNDED.value,
            ),
        ),
        (p.c.captured_at.is_not(None), PaymentStatus.CAPTURED.value),
        (captured > 0, PaymentStatus.PARTIALLY_CAPTURED.value),
        else_=PaymentStatus.AUTHORIZED.value,
    )


# The payment's row lock, taken by a write that changes nothing (see persistence.ledger: every holder
# of the lock leaves its transaction id on the row).
_LOCK = DriverStatement(text("UPDATE payment SET status = status WHERE id = :id"))


class PaymentStatusWriter:
    """`refresh`, built once for a dialect; `update` is its statement (`payment_id` bound)."""

    def __init__(self, dialect: str) -> None:
        self._locks = dialect == "postgresql"
        status = status_of_payment(self._locks)
        payment = t.payment
        # Only a changed status is written: a refresh that changes nothing leaves the row alone.
        self.update: Update = (
            update(payment)
            .where(payment.c.id == bindparam("payment_id"), payment.c.status != status)
            .values(status=status)
        )
        self._update = DriverStatement(self.update)

    async def refresh(self, conn: AsyncConnection, payment_id: str, *, locked: bool) -> None:
        """Stores the status the payment's facts derive, in the caller's transaction. `locked`: the
        transaction holds the payment's row lock already (it locked or updated the row); otherwise
        the lock is taken first, by its own statement (see the module's docstring)."""
        if self._locks and not locked:
            await _LOCK.execute(conn, {"id": payment_id})
        await self._update.execute(conn, {"payment_id": payment_id})
