"""Payment rules: capture and refund guards, and the payment and collection status derivations.

Messages are Medusa's, typos included ("substracted"), because clients match on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from paymod.domain.errors import InvalidDataError, NotAllowedError
from paymod.domain.money import currency_precision, minor_unit, round_amount
from paymod.domain.statuses import PaymentCollectionStatus, PaymentSessionStatus, PaymentStatus

CAPTURE_EXCEEDS = (
    "You cannot capture more than the authorized amount substracted by what is already captured."
)
REFUND_EXCEEDS = "You cannot refund more than what is captured on the payment."
CAPTURE_NOT_POSITIVE = "Capture amount must be greater than 0."
REFUND_NOT_POSITIVE = "Refund amount must be greater than 0."
LOST_DISPUTES = "The amounts of the disputes lost on it were returned to the customer already."

ZERO = Decimal(0)


def total(amounts: Iterable[Decimal]) -> Decimal:
    return sum(amounts, ZERO)


def payment_status(
    *, canceled: bool, fully_captured: bool, captured: Decimal, refunded: Decimal
) -> PaymentStatus:
    """A payment's status from its facts: canceled, captured in full (`captured_at`), and the sums of
    its live captures and refunds. A cancel wins (a payment closed after a partial capture is canceled
    for the rest); then refunds; then captures. `persistence.payment_status` states the same rule in
    SQL, and both must agree."""
    if canceled:
        return PaymentStatus.CANCELED
    if refunded > 0:
        return PaymentStatus.REFUNDED if refunded >= captured else PaymentStatus.PARTIALLY_REFUNDED
    if fully_captured:
        return PaymentStatus.CAPTURED
    return PaymentStatus.PARTIALLY_CAPTURED if captured > 0 else PaymentStatus.AUTHORIZED


@dataclass(frozen=True, slots=True)
class CapturePlan:
    amount: Decimal
    fully_captured: bool


def require_currency_precision(amount: Decimal, currency_code: str, field: str = "amount") -> Decimal:
    """Refuses an amount finer than the currency's minor unit: money moves in whole minor units, as
    providers move it (Stripe takes integers), so the books can always hold what was moved."""
    if amount != round_amount(amount, currency_code):
        digits = currency_precision(currency_code)
        raise InvalidDataError(
            f"{field} {amount} is finer than {currency_code.upper()} allows: "
            f"{currency_code.upper()} amounts have {digits} decimal place{'' if digits == 1 else 's'}.",
            code="invalid_amount",
        )
    return amount


def _floor(amount: Decimal, currency_code: str) -> Decimal:
    return amount.quantize(minor_unit(currency_code), rounding=ROUND_DOWN)


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
    A capture is in the currency's precision and the captures' exact sum never passes the payment's
    amount at that precision (Medusa compared rounded values, which let 0.994 + 0.014 pass on 1.00).
    """
    if canceled:
        raise InvalidDataError(f"The payment: {payment_id} has been canceled.")
    if already_fully_captured:
        return None
    limit = round_amount(payment_amount, currency_code)
    captured_total = total(captured)
    if requested is None:
        amount = _floor(limit - captured_total, currency_code)
        if amount <= 0:
            return None
    else:
        if requested <= 0:
            raise InvalidDataError(CAPTURE_NOT_POSITIVE)
        amount = require_currency_precision(requested, currency_code)
    after = captured_total + amount
    if after > limit:
        raise InvalidDataError(CAPTURE_EXCEEDS)
    return CapturePlan(amount=amount, fully_captured=after >= limit)


def plan_refund(
    *,
    currency_code: str,
    captured: Sequence[Decimal],
    refunded: Sequence[Decimal],
    requested: Decimal | None,
    lost: Sequence[Decimal] = (),
) -> Decimal:
    """The amount to refund: in the currency's precision, and never more than what was captured.

    `lost`: the amounts of disputes lost on the payment; that money went back to the customer through
    the card network already, so it is no longer refundable.

    Unlike Medusa, a refund without an amount takes what remains refundable, not the payment amount.
    Captured amounts are compared at the currency's precision, so a capture booked with sub-unit
    digits (87.957975 USD, before amounts were held to the currency) can be refunded as 87.96:
    Medusa's one-minor-unit tolerance, which is no longer needed for anything else.
    """
    refundable = round_amount(total(captured), currency_code) - total(refunded) - total(lost)
    if requested is None:
        amount = _floor(refundable, currency_code)
        if amount <= 0:
            raise InvalidDataError(REFUND_EXCEEDS if not lost else f"{REFUND_EXCEEDS} {LOST_DISPUTES}")
        return amount
    if requested <= 0:
        raise InvalidDataError(REFUND_NOT_POSITIVE)
    require_currency_precision(requested, currency_code)
    if requested > refundable:
        raise InvalidDataError(REFUND_EXCEEDS if not lost else f"{REFUND_EXCEEDS} {LOST_DISPUTES}")
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
    id: str = ""
    #: An authorization of this session is in flight (claimed by a live process).
    authorizing: bool = False


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    currency_code: str
    canceled: bool
    captures: Sequence[Decimal]
    refunds: Sequence[Decimal]
    id: str = ""
    session_id: str = ""
    amount: Decimal = ZERO


def held_total(payments: Sequence[PaymentFacts], currency_code: str) -> Decimal:
    """What a collection's payments hold, at the currency's precision: a live payment its amount, a
    canceled one what it captured before (a payment closed after a partial capture keeps that)."""
    return round_amount(total(total(p.captures) if p.canceled else p.amount for p in payments), currency_code)


def check_payment_fits(
    *,
    collection_id: str,
    collection_amount: Decimal,
    currency_code: str,
    payments: Sequence[PaymentFacts],
    in_flight: Sequence[Decimal],
    amount: Decimal,
) -> None:
    """A new payment of `amount` keeps what the collection's payments hold (and the authorizations in
    flight) within its amount: split payments fit (two of 5.00 on 10.00), a second full payment does
    not, nor a new full payment after one that captured part and was closed."""
    held = held_total(payments, currency_code) + round_amount(total(in_flight), currency_code)
    limit = round_amount(collection_amount, currency_code)
    if held + round_amount(amount, currency_code) > limit:
        code = currency_code.upper()
        raise NotAllowedError(
            f"Payment collection {collection_id} cannot take a payment of {amount} {code}: "
            f"its payments already hold {held} of its {limit} {code}."
        )


def check_amount_change(
    *,
    collection_id: str,
    currency_code: str,
    payments: Sequence[PaymentFacts],
    new_amount: Decimal,
    new_currency_code: str,
) -> None:
    """A collection's amount may change while it still covers its live payments; its currency only
    while it has none (Medusa's order edit cancels the authorization; capture less than was
    authorized instead)."""
    held = held_total(payments, currency_code)
    if held <= 0 and all(p.canceled for p in payments):
        return
    if new_currency_code != currency_code:
        raise NotAllowedError(
            f"Cannot change the currency of payment collection {collection_id}: it has payments that "
            "are not canceled."
        )
    if round_amount(new_amount, currency_code) < held:
        raise NotAllowedError(
            f"Cannot set the amount of payment collection {collection_id} to {new_amount} "
            f"{currency_code.upper()}: its payments hold {held}. Capture less than was authorized, "
            "or cancel a payment first."
        )


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
