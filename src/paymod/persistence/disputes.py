"""What a payment's disputes say about refunding it, read under the payment's lock (with its movements,
by `Ledger.lock_payment`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from paymod.domain.statuses import DisputeStatus


@dataclass(frozen=True, slots=True)
class DisputeFacts:
    statuses: list[DisputeStatus]
    #: The amounts of the disputes lost.
    lost: list[Decimal]

    @classmethod
    def of(cls, disputes: Iterable[tuple[str, Decimal]]) -> DisputeFacts:
        """From (status, amount) pairs."""
        pairs = [(DisputeStatus(status), amount) for status, amount in disputes]
        return cls(
            statuses=[status for status, _ in pairs],
            lost=[amount for status, amount in pairs if status == DisputeStatus.LOST],
        )
