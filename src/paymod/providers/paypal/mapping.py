"""PayPal's Orders v2 and Payments v2 objects -> session statuses, and webhook events -> actions.

Pure functions over PayPal's JSON (plain dicts), so the tables are tested without the SDK.

Order statuses (developer.paypal.com/docs/api/orders/v2, order `status`): CREATED, SAVED, APPROVED,
VOIDED, COMPLETED, PAYER_ACTION_REQUIRED. Authorization statuses: CREATED, CAPTURED, DENIED,
PARTIALLY_CAPTURED, VOIDED, PENDING. Capture statuses: COMPLETED, DECLINED, PARTIALLY_REFUNDED, PENDING,
REFUNDED, FAILED. Refund statuses: CANCELLED, FAILED, PENDING, COMPLETED.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from paymod.domain.statuses import PaymentAction, PaymentSessionStatus
from paymod.providers.paypal.amounts import from_money

S = PaymentSessionStatus
Data = dict[str, Any]

#: The order waits for the buyer (PayPal's approval page).
AWAITING_BUYER = frozenset({"CREATED", "SAVED", "PAYER_ACTION_REQUIRED"})
#: Captures whose money moved (a refund may follow).
CAPTURED = frozenset({"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"})
#: Refunds whose money left (a pending one has left the balance already).
REFUND_MOVED = frozenset({"COMPLETED", "PENDING"})


def purchase_unit(order: Mapping[str, Any]) -> Mapping[str, Any]:
    units = order.get("purchase_units")
    if isinstance(units, list) and units and isinstance(units[0], Mapping):
        return units[0]
    return {}


def _payments(order: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    payments = purchase_unit(order).get("payments") or {}
    found = payments.get(kind) if isinstance(payments, Mapping) else None
    return [item for item in found or () if isinstance(item, Mapping)]


def authorizations(order: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return _payments(order, "authorizations")


def captures(order: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return _payments(order, "captures")


def refunds(order: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return _payments(order, "refunds")


def link(resource: Mapping[str, Any], *rels: str) -> str | None:
    """The href of the first HATEOAS link with one of `rels`."""
    for wanted in rels:
        for item in resource.get("links") or ():
            if isinstance(item, Mapping) and item.get("rel") == wanted and item.get("href"):
                return str(item["href"])
    return None


def approve_link(order: Mapping[str, Any]) -> str | None:
    """Where the buyer approves the order: `payer-action` (orders with a payment source's experience
    context) or `approve` (orders without)."""
    return link(order, "payer-action", "approve")


def up_id(resource: Mapping[str, Any]) -> str | None:
    """The id of the parent a capture or refund links to (`rel: up`: its authorization or capture)."""
    href = link(resource, "up")
    return href.rstrip("/").rsplit("/", 1)[-1] if href else None


def session_id(resource: Mapping[str, Any]) -> str | None:
    """paymod's session id, which paymod sets as the purchase unit's `custom_id` and `reference_id`
    (an authorization or capture carries the unit's `custom_id`)."""
    unit = purchase_unit(resource) if "purchase_units" in resource else resource
    for key in ("custom_id", "reference_id"):
        value = unit.get(key)
        if isinstance(value, str) and value.startswith("payses_"):
            return value
    return None


def authorization_status(authorization: Mapping[str, Any]) -> PaymentSessionStatus:
    status = authorization.get("status")
    if status in ("CREATED", "PARTIALLY_CAPTURED"):
        return S.AUTHORIZED
    if status == "CAPTURED":
        return S.CAPTURED
    if status == "VOIDED":
        return S.CANCELED
    if status == "DENIED":
        return S.ERROR
    return S.PENDING


def capture_status(capture: Mapping[str, Any]) -> PaymentSessionStatus:
    status = capture.get("status")
    if status in CAPTURED:
        return S.CAPTURED
    if status in ("DECLINED", "FAILED"):
        return S.ERROR
    return S.PENDING


def order_status(order: Mapping[str, Any]) -> PaymentSessionStatus:
    """An order's status as a session status: the buyer has yet to approve it (requires_more), it waits
    for paymod's authorize call (pending), or it was completed into an authorization or a capture."""
    status = order.get("status")
    if status in AWAITING_BUYER:
        return S.REQUIRES_MORE
    if status == "APPROVED":
        return S.PENDING
    if status == "VOIDED":
        return S.CANCELED
    if status == "COMPLETED":
        found = authorizations(order)
        if found:
            return authorization_status(found[-1])
        taken = captures(order)
        if taken:
            return capture_status(taken[-1])
    return S.PENDING


def captured_total(order: Mapping[str, Any]) -> Decimal:
    """What the order's captures moved (refunds aside)."""
    return sum(
        (from_money(c.get("amount")) or Decimal(0) for c in captures(order) if c.get("status") in CAPTURED),
        Decimal(0),
    )


def refunded_by_capture(order: Mapping[str, Any]) -> dict[str, Decimal]:
    """capture id -> what its refunds took back (refunds that did not fail)."""
    taken: dict[str, Decimal] = {}
    for refund in refunds(order):
        parent = up_id(refund)
        if parent is None or refund.get("status") not in REFUND_MOVED:
            continue
        taken[parent] = taken.get(parent, Decimal(0)) + (from_money(refund.get("amount")) or Decimal(0))
    return taken


def refundable_captures(order: Mapping[str, Any]) -> list[tuple[str, Decimal]]:
    """(capture id, what can still be refunded of it), oldest capture first, only those with money left."""
    taken = refunded_by_capture(order)
    found: list[tuple[str, Decimal]] = []
    for capture in captures(order):
        if capture.get("status") not in ("COMPLETED", "PARTIALLY_REFUNDED"):
            continue
        left = (from_money(capture.get("amount")) or Decimal(0)) - taken.get(
            str(capture.get("id")), Decimal(0)
        )
        if left > 0:
            found.append((str(capture["id"]), left))
    return found


def refunds_made_for(order: Mapping[str, Any], paymod_refund_id: str) -> list[Mapping[str, Any]]:
    """The refunds PayPal made for one of paymod's refunds (its id is the refund's `custom_id`)."""
    return [
        r
        for r in refunds(order)
        if r.get("custom_id") == paymod_refund_id and r.get("status") in REFUND_MOVED
    ]


# -- webhooks -----------------------------------------------------------------------------------
#: event type -> action (developer.paypal.com/api/rest/webhooks/event-names).
EVENTS: dict[str, PaymentAction] = {
    # The buyer approved: paymod's authorize call (which authorizes or captures the order) finishes it.
    "CHECKOUT.ORDER.APPROVED": PaymentAction.AUTHORIZED,
    "PAYMENT.AUTHORIZATION.CREATED": PaymentAction.AUTHORIZED,
    "PAYMENT.AUTHORIZATION.VOIDED": PaymentAction.CANCELED,
    "PAYMENT.CAPTURE.COMPLETED": PaymentAction.SUCCESSFUL,
    "PAYMENT.CAPTURE.PENDING": PaymentAction.PENDING,
    "PAYMENT.CAPTURE.DENIED": PaymentAction.FAILED,
    "PAYMENT.CAPTURE.DECLINED": PaymentAction.FAILED,
    "PAYMENT.CAPTURE.REFUNDED": PaymentAction.REFUNDED,
    # A reversal of a disputed capture is reported as the dispute instead (disputes.py).
    "PAYMENT.CAPTURE.REVERSED": PaymentAction.REFUNDED,
    # A dispute (inquiry or chargeback) of a capture: the dispute as it stands (disputes.py).
    "CUSTOMER.DISPUTE.CREATED": PaymentAction.DISPUTED,
    "CUSTOMER.DISPUTE.UPDATED": PaymentAction.DISPUTED,
    "CUSTOMER.DISPUTE.RESOLVED": PaymentAction.DISPUTED,
}
REFUND_EVENTS = frozenset({"PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"})


def event_action(event_type: str) -> PaymentAction:
    return EVENTS.get(event_type, PaymentAction.NOT_SUPPORTED)


def paymod_refund_id(refund: Mapping[str, Any]) -> str | None:
    """paymod's refund id when paymod made the refund (it sets the refund's `custom_id` to it)."""
    value = refund.get("custom_id")
    return value if isinstance(value, str) and value.startswith("ref_") else None
