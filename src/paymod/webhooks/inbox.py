"""Inbound provider webhooks: verified before they are acknowledged, stored once, processed once.

`receive_webhook` is what the HTTP route calls: the provider verifies the raw body and headers
(an invalid signature raises and nothing is stored), the event goes into the `webhook_event` inbox,
unique on (provider, provider event id), and a duplicate delivery is recognised. The worker then
calls `process_webhook_event`, which takes the same locks as the API (Medusa's processPaymentWorkflow
without carts), so a webhook racing a checkout or an admin capture never pays twice.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from paymod.domain.errors import InvalidDataError, NotFoundError
from paymod.domain.ids import new_id
from paymod.domain.statuses import PaymentAction, PaymentSessionStatus
from paymod.observability.context import current_request_id
from paymod.persistence.repository import utc_now
from paymod.services.disputes import dispute_record
from paymod.services.dto import WebhookDispute, WebhookRefund
from paymod.services.payment_module import PaymentModule
from paymod.webhooks.stores import stores_for

log = logging.getLogger("paymod.webhooks")

WEBHOOK_EVENT_PREFIX = "whev"

# What a provider's report does to a session that is not authorized yet.
_SESSION_STATUS = {
    PaymentAction.FAILED: PaymentSessionStatus.ERROR,
    PaymentAction.CANCELED: PaymentSessionStatus.CANCELED,
    PaymentAction.REQUIRES_MORE: PaymentSessionStatus.REQUIRES_MORE,
    PaymentAction.PENDING: PaymentSessionStatus.PENDING,
    PaymentAction.PENDING_AUTHORIZATION: PaymentSessionStatus.PENDING_AUTHORIZATION,
}


@dataclass(frozen=True, slots=True)
class ReceivedWebhook:
    id: str
    provider_id: str
    event_id: str
    action: str
    duplicate: bool


def _payload_record(raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    try:
        body: dict[str, Any] = {"body": raw.decode("utf-8")}
    except UnicodeDecodeError:
        body = {"body_base64": base64.b64encode(raw).decode()}
    return {**body, "headers": {k.lower(): v for k, v in headers.items()}}


def _refunds_record(refunds: Sequence[WebhookRefund]) -> list[dict[str, Any]]:
    """The refunds of an event as stored (amounts as exact decimal text)."""
    return [
        {
            "id": refund.id,
            "amount": None if refund.amount is None else str(refund.amount),
            "paymod_refund_id": refund.paymod_refund_id,
            "failure_reason": refund.failure_reason,
        }
        for refund in refunds
    ]


def raw_body(record: Mapping[str, Any]) -> bytes:
    if "body_base64" in record:
        return base64.b64decode(record["body_base64"])
    return str(record.get("body", "")).encode("utf-8")


async def receive_webhook(
    module: PaymentModule, provider: str, raw: bytes, headers: Mapping[str, str], data: Any = None
) -> ReceivedWebhook:
    """Verifies and stores one delivery. Raises the provider's error when it does not verify."""
    result = await module.get_webhook_action_and_data(
        {"provider": provider, "payload": {"data": data or {}, "raw_data": raw, "headers": dict(headers)}}
    )
    provider_id = module.providers.resolve_webhook_provider(provider)
    event_id = result.event_id or "sha256:" + hashlib.sha256(raw).hexdigest()
    actionable = result.action != PaymentAction.NOT_SUPPORTED.value and result.data is not None
    if not actionable and result.event_id is None:
        # Nothing to do and nothing to dedupe on (e.g. a provider that verifies nothing): not stored,
        # so unauthenticated noise cannot fill the inbox.
        return ReceivedWebhook("", provider_id, event_id, result.action, duplicate=False)
    now = utc_now()
    values = {
        "id": new_id(WEBHOOK_EVENT_PREFIX),
        "provider_id": provider_id,
        "event_id": event_id,
        "action": result.action,
        "session_id": result.data.session_id if result.data else None,
        "amount": result.data.amount if result.data else None,
        "remaining_capturable": result.data.remaining_capturable if result.data else None,
        "refunds": _refunds_record(result.data.refunds) if result.data and result.data.refunds else None,
        "dispute": dispute_record(result.data.dispute) if result.data and result.data.dispute else None,
        "payload": _payload_record(raw, headers),
        "status": "pending" if actionable else "ignored",
        "attempts": 0,
        "available_at": now + timedelta(seconds=module.options.webhook_delay),
        "processed_at": None if actionable else now,
        "request_id": current_request_id(),
        "created_at": now,
        "updated_at": now,
    }
    stored = await stores_for(module).inbox.store(values)
    return ReceivedWebhook(stored.id, provider_id, event_id, result.action, duplicate=stored.duplicate)


def same_account(event_provider: str, session_provider: str) -> bool:
    """Same provider, or variants of one provider family on one configuration (Stripe's
    `pp_stripe_stripe` and `pp_stripe-ideal_stripe` share a webhook endpoint and an account)."""
    if event_provider == session_provider:
        return True

    def family(provider_id: str) -> tuple[str, str]:
        identifier, _, id = provider_id.removeprefix("pp_").partition("_")
        return identifier.split("-")[0], id

    return family(event_provider) == family(session_provider)


async def process_webhook_event(module: PaymentModule, event: Mapping[str, Any]) -> str:
    """Applies one stored event; returns what it did. Safe to run again for the same event."""
    action = PaymentAction(event["action"])
    session_id = event["session_id"]
    amount: Decimal | None = event["amount"]
    if not session_id:
        return "ignored"
    try:
        session = await module.retrieve_payment_session(session_id, {"relations": ["payment"]})
    except NotFoundError:
        # Not ours (or deleted): like Medusa, a report about an unknown session changes nothing.
        return "ignored"
    if not same_account(str(event["provider_id"]), session.provider_id):
        # A provider speaks only for its own sessions: a verified event from another provider's
        # secret must not capture them.
        log.warning(
            "webhook %s from %s names session %s of %s: ignored",
            event["id"],
            event["provider_id"],
            session_id,
            session.provider_id,
        )
        return "ignored"
    if action == PaymentAction.DISPUTED:
        return await _apply_dispute(module, session.payment.id if session.payment else None, event)
    if action in (PaymentAction.REFUNDED, PaymentAction.REFUND_FAILED):
        return await _apply_refunds(module, action, session.payment.id if session.payment else None, event)
    if action == PaymentAction.CANCELED and session.payment is not None:
        # Voided at the provider after paymod authorized it: the payment is canceled, not the session.
        canceled = await module.record_provider_cancel(session.payment.id)
        return "payment_canceled" if canceled is not None else "ignored"
    if action == PaymentAction.AUTHORIZED:
        payment = await module.authorize_payment_session(session_id)
        return "authorized" if payment is not None else "pending_authorization"
    if action == PaymentAction.SUCCESSFUL:
        payment = session.payment
        if payment is None:
            authorized = await module.authorize_payment_session(session_id)
            if authorized is None:
                raise InvalidDataError(f"Session {session_id} is not authorized yet; the capture waits.")
            payment = authorized
        # The provider already moved the money: book it up to the reported total, without asking again;
        # when it says nothing stays capturable, the rest of the authorization is closed too.
        capture: dict[str, Any] = {"payment_id": payment.id, "is_captured": True}
        if amount is not None:
            capture["captured_total"] = amount
        if event.get("remaining_capturable") is not None:
            capture["remaining_capturable"] = event["remaining_capturable"]
        await module.capture_payment(capture)
        return "captured"
    status = _SESSION_STATUS.get(action)
    if status is None:
        return "ignored"
    await module.record_payment_session_status(session_id, status.value)
    return f"session_{status.value}"


async def _apply_refunds(
    module: PaymentModule, action: PaymentAction, payment_id: str | None, event: Mapping[str, Any]
) -> str:
    """Books the refunds the provider made (each once), or marks paymod's that failed at the provider."""
    if payment_id is None:
        # No payment, nothing refundable: a report about money paymod never saw captured.
        log.warning(
            "webhook %s reports refunds of session %s without a payment: ignored",
            event["id"],
            event["session_id"],
        )
        return "ignored"
    changed = 0
    for refund in event.get("refunds") or ():
        if action == PaymentAction.REFUNDED:
            booked = await module.record_provider_refund(
                {
                    "payment_id": payment_id,
                    "provider_refund_id": refund["id"],
                    "paymod_refund_id": refund.get("paymod_refund_id"),
                    "amount": None if refund.get("amount") is None else Decimal(refund["amount"]),
                }
            )
        else:
            booked = await module.fail_provider_refund(
                {
                    "payment_id": payment_id,
                    "provider_refund_id": refund["id"],
                    "paymod_refund_id": refund.get("paymod_refund_id"),
                    "reason": refund.get("failure_reason"),
                }
            )
        changed += booked is not None
    if not changed:
        return "ignored"
    return "refunded" if action == PaymentAction.REFUNDED else "refund_failed"


async def _apply_dispute(module: PaymentModule, payment_id: str | None, event: Mapping[str, Any]) -> str:
    """Records the dispute the provider reports (created once, then updated)."""
    if payment_id is None or not event.get("dispute"):
        # No payment: nothing was charged that could be disputed.
        log.warning(
            "webhook %s reports a dispute of session %s without a payment: ignored",
            event["id"],
            event["session_id"],
        )
        return "ignored"
    dispute = WebhookDispute.model_validate(event["dispute"])
    recorded = await module.record_provider_dispute({"payment_id": payment_id, "dispute": dispute})
    return "ignored" if recorded is None else "disputed"


async def replay_webhook_event(module: PaymentModule, id: str) -> None:
    """Puts a failed (or any) stored event back in the queue, with a fresh retry budget."""
    await stores_for(module).inbox.replay(id)


async def list_webhook_events(
    module: PaymentModule, *, status: str | None = None, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """Stored events, newest first (rows as stored: `payload` holds the raw body and headers)."""
    return await stores_for(module).inbox.list_events(status=status, limit=limit, offset=offset)


async def count_webhook_events(module: PaymentModule, *, status: str | None = None) -> int:
    return await stores_for(module).inbox.count_events(status=status)


async def retrieve_webhook_event(module: PaymentModule, id: str) -> dict[str, Any]:
    return await stores_for(module).inbox.retrieve(id)


#: What operators see of a stored event; the raw body and headers (`payload`) only on request.
EVENT_FIELDS = (
    "id",
    "provider_id",
    "event_id",
    "action",
    "session_id",
    "amount",
    "status",
    "attempts",
    "last_error",
    "available_at",
    "processed_at",
    "created_at",
    "updated_at",
)


def webhook_event_document(row: Mapping[str, Any], *, payload: bool = False) -> dict[str, Any]:
    document = {name: row[name] for name in EVENT_FIELDS}
    if payload:
        document["payload"] = row["payload"]
    return document
