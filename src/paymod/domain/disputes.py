"""Dispute rules: which report about a dispute is news, and what an open dispute forbids.

A dispute (a chargeback) is the customer asking their bank for the money back. While it is open the
provider refuses refunds of the payment (Stripe does): the money is already held for the dispute.
A lost dispute gave the disputed amount back to the customer, so it is no longer refundable.
"""

from __future__ import annotations

from collections.abc import Iterable

from paymod.domain.errors import NotAllowedError
from paymod.domain.statuses import DisputeStatus


def is_regression(current: DisputeStatus, reported: DisputeStatus) -> bool:
    """A report that would reopen a closed dispute: an older event delivered late. Providers do not
    reopen a dispute, so the closed status stays."""
    return current.is_final and not reported.is_final


def check_no_open_dispute(payment_id: str, statuses: Iterable[DisputeStatus]) -> None:
    """Refunds wait while a dispute of the payment is open (warnings included: the bank may still
    turn an inquiry into a chargeback)."""
    if any(not status.is_final for status in statuses):
        raise NotAllowedError(
            f"Payment {payment_id} has an open dispute: it cannot be refunded until the dispute is "
            "closed. Respond to the dispute (submit evidence or accept it) instead."
        )
