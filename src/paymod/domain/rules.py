"""Payment rules: capture and refund guards and the collection status derivation.

Messages are Medusa's, typos included ("substracted"), because clients match on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from paymod.domain.errors import InvalidDataError, NotAllowedError
from paymod.domain.money import minor_unit, round_amount
from paymod.domain.statuses import PaymentCollectionStatus, PaymentSessionStatus

CAPTURE_EXCEEDS = (
    "You cannot capture more than the authorized amount substracted by what is already captured."
)
REFUND_EXCEEDS = "You cannot refund more than what is captured on the payment."
CAPTURE_NOT_POSITIVE = "Capture amount must be greater than 0."
REFUND_NOT_POSITIVE = "Refund amount must be greater than 0."

ZERO = Decimal(0)


def total(amounts: Iterable[Decimal]) -> Decimal:
    return sum(amounts, ZERO)


@dataclass(frozen=True, slots=True)
class CapturePlan:
    amount: Decimal
    fully_captured: bool


def plan_capture(
    *,
    payment_id: str,
    payment_amount: Decimal,
    currency_code: str,
    captured: Sequence[Decimal],
    requested: Decimal | None,
    canceled: bool,
    already_fully_captured: bool,
) -> CapturePlan | None:
    """What to capture, or None when the payment is already fully captured (an idempotent no-op).

    Unlike Medusa, a capture without an amount takes what remains, not the whole payment amount.
    """
    if canceled:
        raise InvalidDataError(f"The payment: {payment_id} has been canceled.")
    if already_fully_captured:
        return None
    captured_total = total(captured)
    remaining = payment_amount - captured_total
    amount = remaining if requested is None else requested
    if amount <= 0:
        if requested is None:
            return None
        raise InvalidDataError(CAPTURE_NOT_POSITIVE)
    # Medusa compares round(amount) with round(remaining), which lets sub-unit captures add up past the
    # rounded payment amount (0.994 + 0.014 on 1.00); comparing the rounded totals does not.
    after = round_amount(captured_total + amount, currency_code)
    if after > round_amount(payment_amount, currency_code):
        raise InvalidDataError(CAPTURE_EXCEEDS)
    fully = after >= round_amount(payment_amount, currency_code)
    return CapturePlan(amount=amount, fully_captured=fully)


def plan_refund(
    *,
    currency_code: str,
    captured: Sequence[Decimal],
    refunded: Sequence[Decimal],
    requested: Decimal | None,
) -> Decimal:
    """The amount to refund; tolerates one minor unit of the currency above what was captured.

    Unlike Medusa, a refund without an amount takes what remains refundable, not the payment amount.
    """
    refundable = total(captured) - total(refunded)
    if requested is None:
        if refundable <= 0:
            raise InvalidDataError(REFUND_EXCEEDS)
        return refundable
    if requested <= 0:
        raise InvalidDataError(REFUND_NOT_POSITIVE)
    if refundable - requested < -minor_unit(currency_code):
        raise InvalidDataError(REFUND_EXCEEDS)
    return requested


def check_cancel(
    *,
    payment_id: str,
    payment_amount: Decimal,
    currency_code: str,
    captured: Sequence[Decimal],
    already_fully_captured: bool,
) -> None:
    """A payment whose captures (booked, even if the provider has not answered yet) cover it stays."""
    covered = round_amount(total(captured), currency_code) >= round_amount(payment_amount, currency_code)
    if already_fully_captured or (covered and payment_amount > 0):
        raise NotAllowedError(f"Cannot cancel a payment: {payment_id} that has been captured.")


@dataclass(frozen=True, slots=True)
class SessionFacts:
    status: str
    amount: Decimal
    currency_code: str
    payment_canceled: bool = False


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    currency_code: str
    canceled: bool
    captures: Sequence[Decimal]
    refunds: Sequence[Decimal]


@dataclass(frozen=True, slots=True)
class CollectionTotals:
    status: PaymentCollectionStatus
    authorized_amount: Decimal
    captured_amount: Decimal
    refunded_amount: Decimal
    completed: bool


def derive_collection(
    *,
    amount: Decimal,
    currency_code: str,
    sessions: Sequence[SessionFacts],
    payments: Sequence[PaymentFacts],
) -> CollectionTotals:
    """A collection's status and totals, from its sessions, payments, captures and refunds.

    Medusa's derivation (reference 2.1), with two fixes: only amounts in the collection's currency
    count, and a canceled payment no longer counts as authorized (so cancel updates the collection:
    `canceled`, or `partially_captured` when something was captured before).
    """
    currency = currency_code.lower()
    authorized = total(
        s.amount
        for s in sessions
        if s.status == PaymentSessionStatus.AUTHORIZED
        and not s.payment_canceled
        and s.currency_code.lower() == currency
    )
    own = [p for p in payments if p.currency_code.lower() == currency]
    captured = total(total(p.captures) for p in own)
    refunded = total(total(p.refunds) for p in own)

    target = round_amount(amount, currency)
    status = PaymentCollectionStatus.AWAITING if sessions else PaymentCollectionStatus.NOT_PAID
    if authorized > 0:
        status = (
            PaymentCollectionStatus.AUTHORIZED
            if round_amount(authorized, currency) >= target
            else PaymentCollectionStatus.PARTIALLY_AUTHORIZED
        )
    elif any(p.canceled for p in own):
        status = (
            PaymentCollectionStatus.PARTIALLY_CAPTURED if captured > 0 else PaymentCollectionStatus.CANCELED
        )
    completed = round_amount(captured, currency) >= target
    if completed:
        status = PaymentCollectionStatus.COMPLETED
    return CollectionTotals(
        status=status,
        authorized_amount=authorized,
        captured_amount=captured,
        refunded_amount=refunded,
        completed=completed,
    )
