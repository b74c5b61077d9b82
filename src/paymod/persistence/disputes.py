"""What a payment's disputes say about refunding it, read under the payment's lock."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain.statuses import DisputeStatus
from paymod.persistence import tables as t

_DISPUTES_OF_PAYMENT = select(t.dispute.c.status, t.dispute.c.amount).where(
    t.dispute.c.payment_id == bindparam("payment_id")
)


@dataclass(frozen=True, slots=True)
class DisputeFacts:
    statuses: list[DisputeStatus]
    #: The amounts of the disputes lost.
    lost: list[Decimal]


async def dispute_facts(conn: AsyncConnection, payment_id: str) -> DisputeFacts:
    """The payment's disputes. Read after the payment's lock was taken, in a statement of its own, so
    a dispute recorded by the lock's previous holder is seen (see `persistence.ledger`)."""
    rows = [
        (DisputeStatus(status), amount)
        for status, amount in await conn.execute(_DISPUTES_OF_PAYMENT, {"payment_id": payment_id})
    ]
    return DisputeFacts(
        statuses=[status for status, _ in rows],
        lost=[amount for status, amount in rows if status == DisputeStatus.LOST],
    )
