"""Medusa's `process-payment` flow: what a verified webhook event does to a session's payment.

Runs synchronously in the webhook request for now; the webhook issue moves it behind an inbox.
"""

from __future__ import annotations

from decimal import Decimal

from paymod.domain.rules import total
from paymod.domain.statuses import PaymentAction
from paymod.services.dto import PaymentDTO
from paymod.services.payment_module import PaymentModule


async def process_payment(
    module: PaymentModule, *, action: str, session_id: str, amount: Decimal | None = None
) -> PaymentDTO | None:
    """`authorized` authorizes the session; `captured` also books what the provider captured.

    The provider already moved the money for `captured`, so the capture is booked without asking it
    to capture again, and only for what is not booked yet (the event's amount is cumulative).
    """
    if action not in (PaymentAction.AUTHORIZED, PaymentAction.SUCCESSFUL):
        return None
    existing = await module.list_payments({"payment_session_id": session_id})
    payment = existing[0] if existing else await module.authorize_payment_session(session_id)
    if payment is None or action != PaymentAction.SUCCESSFUL:
        return payment
    payment = await module.retrieve_payment(payment.id, {"relations": ["captures"]})
    if payment.captured_at is not None or payment.canceled_at is not None:
        return payment
    booked = total(c.amount for c in payment.captures or [])
    to_book = (payment.amount if amount is None else amount) - booked
    if to_book <= 0:
        return payment
    return await module.capture_payment({"payment_id": payment.id, "amount": to_book, "is_captured": True})
