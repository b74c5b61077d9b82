"""Medusa's mapping of PaymentIntents onto session statuses and of webhook events onto actions.

Pure functions over plain dicts (`StripeObject.to_dict()`), so the tables are tested without the SDK.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from paymod.domain.statuses import PaymentAction, PaymentSessionStatus

S = PaymentSessionStatus


def payment_method_type(intent: Mapping[str, Any]) -> str | None:
    """The type of the intent's payment method when it is expanded, else None."""
    method = intent.get("payment_method")
    if isinstance(method, Mapping):
        kind = method.get("type")
        return str(kind) if kind else None
    return None


def session_status(intent: Mapping[str, Any], async_types: Collection[str] = ()) -> PaymentSessionStatus:
    """PaymentIntent.status -> PaymentSessionStatus (reference section 8)."""
    status = intent.get("status")
    if status == "requires_payment_method":
        return S.ERROR if intent.get("last_payment_error") else S.PENDING
    if status == "requires_confirmation":
        return S.PENDING
    if status == "processing":
        return S.PENDING_AUTHORIZATION if payment_method_type(intent) in async_types else S.PENDING
    if status == "requires_action":
        return S.REQUIRES_MORE
    if status == "canceled":
        return S.CANCELED
    if status == "requires_capture":
        return S.AUTHORIZED
    if status == "succeeded":
        return S.CAPTURED
    return S.PENDING


#: How long Stripe holds an online card authorization when the charge does not say (`capture_before`).
CARD_AUTHORIZATION_HOLD = timedelta(days=7)


def authorization_expires_at(intent: Mapping[str, Any]) -> datetime | None:
    """When Stripe releases an authorized intent's money: the charge's `capture_before` (folded into
    the intent as `capture_before`), else 7 days after the intent's creation for a card; None for other
    methods, or when the intent is not waiting for a capture."""
    if intent.get("status") != "requires_capture":
        return None
    deadline = intent.get("capture_before")
    if isinstance(deadline, int | float) and not isinstance(deadline, bool):
        return datetime.fromtimestamp(deadline, UTC)
    method = payment_method_type(intent)
    types = intent.get("payment_method_types") or ()
    created = intent.get("created")
    is_card = method == "card" or (method is None and list(types) == ["card"])
    if is_card and isinstance(created, int | float) and not isinstance(created, bool):
        return datetime.fromtimestamp(created, UTC) + CARD_AUTHORIZATION_HOLD
    return None


# event type -> (action, field holding the amount in smallest units)
_EVENTS: dict[str, tuple[PaymentAction, str]] = {
    "payment_intent.canceled": (PaymentAction.CANCELED, "amount"),
    "payment_intent.payment_failed": (PaymentAction.FAILED, "amount"),
    "payment_intent.requires_action": (PaymentAction.REQUIRES_MORE, "amount"),
    "payment_intent.amount_capturable_updated": (PaymentAction.AUTHORIZED, "amount_capturable"),
    "payment_intent.partially_funded": (PaymentAction.REQUIRES_MORE, "amount"),
    "payment_intent.succeeded": (PaymentAction.SUCCESSFUL, "amount_received"),
}
PENDING_EVENTS = frozenset({"payment_intent.created", "payment_intent.processing"})
EVENT_TYPES = frozenset(_EVENTS) | PENDING_EVENTS


def webhook_action(
    event_type: str, intent: Mapping[str, Any], *, payment_method_is_async: bool = False
) -> tuple[PaymentAction, Any]:
    """(action, amount in smallest units) for an event about a PaymentIntent.

    Intents without `metadata.session_id` were not created by paymod: `not_supported`. Where Stripe
    leaves the amount field out (stripe-compatible fakes do), the intent's `amount` stands in.
    """
    metadata = intent.get("metadata")
    if intent.get("object", "payment_intent") != "payment_intent" or not (
        isinstance(metadata, Mapping) and metadata.get("session_id")
    ):
        return PaymentAction.NOT_SUPPORTED, None
    if event_type in PENDING_EVENTS:
        action = PaymentAction.PENDING_AUTHORIZATION if payment_method_is_async else PaymentAction.PENDING
        return action, intent.get("amount")
    if event_type not in _EVENTS:
        return PaymentAction.NOT_SUPPORTED, None
    action, field = _EVENTS[event_type]
    amount = intent.get(field)
    if event_type == "payment_intent.partially_funded":
        next_action = intent.get("next_action") or {}
        instructions = next_action.get("display_bank_transfer_instructions") or {}
        amount = instructions.get("amount_remaining")
    return action, intent.get("amount") if amount is None else amount


#: The metadata key that carries paymod's refund id (its idempotency key) on each Stripe refund.
REFUND_ID_KEY = "paymod_refund_id"

# Events about refunds (docs.stripe.com/api/events/types): `charge.refunded` carries a Charge,
# the others a Refund. `charge.refund.updated` is the older name of `refund.updated`.
REFUND_EVENTS = frozenset({"charge.refunded", "refund.created", "refund.updated", "charge.refund.updated"})
# A Refund's `status` (docs.stripe.com/api/refunds/object#refund_object-status): pending,
# requires_action, succeeded, failed, canceled. A pending refund has left the balance already.
_REFUND_MOVED = frozenset({"pending", "requires_action", "succeeded"})
_REFUND_UNDONE = frozenset({"failed", "canceled"})


def refund_action(refund: Mapping[str, Any]) -> PaymentAction:
    """What a Refund object's status asks for: `refunded` (book it, once), `refund_failed`, or nothing."""
    status = refund.get("status")
    if status in _REFUND_MOVED:
        return PaymentAction.REFUNDED
    if status in _REFUND_UNDONE:
        return PaymentAction.REFUND_FAILED
    return PaymentAction.NOT_SUPPORTED


def charge_refunds(charge: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The refunds a Charge carries in full, else None: since API version 2022-11-15 `refunds` is
    left out unless expanded (webhooks never expand), and a list with `has_more` is a first page."""
    refunds = charge.get("refunds")
    if (
        not isinstance(refunds, Mapping)
        or refunds.get("has_more")
        or not isinstance(refunds.get("data"), list)
    ):
        return None
    return [r for r in refunds["data"] if isinstance(r, Mapping)]


def moved_refunds(refunds: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The refunds whose money has left (a failed or canceled one of the list is not booked)."""
    return [r for r in refunds if refund_action(r) == PaymentAction.REFUNDED]
