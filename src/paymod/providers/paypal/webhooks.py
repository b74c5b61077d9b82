"""PayPal webhooks: verified by PayPal's own API before anything is read from them, then mapped onto
paymod's actions (the table is in mapping.py).

Verification posts the transmission headers, the configured `webhook_id` and the event, byte for byte
as received, to PayPal's `POST /v1/notifications/verify-webhook-signature`; only
`verification_status: SUCCESS` passes. (PayPal's other way, checking the RSA-SHA256 signature offline
against the certificate at `paypal-cert-url`, would need a certificate fetch and chain check of our
own; the postback leaves that to PayPal, at the cost of one call per event.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

from paymod.domain.errors import ProviderError, RetryableProviderError
from paymod.domain.statuses import PaymentAction
from paymod.providers.base import ProviderRefund, WebhookActionResult, WebhookPayload
from paymod.providers.paypal.amounts import from_money
from paymod.providers.paypal.client import Data
from paymod.providers.paypal.disputes import DISPUTE_EVENTS, PayPalDisputes
from paymod.providers.paypal.errors import retryable, unreachable
from paymod.providers.paypal.mapping import (
    REFUND_EVENTS,
    captured_total,
    event_action,
    paymod_refund_id,
    session_id,
    up_id,
)

REVERSED = "PAYMENT.CAPTURE.REVERSED"
#: The transmission headers PayPal sends with every webhook, as the verification call names them.
TRANSMISSION_HEADERS = {
    "auth_algo": "paypal-auth-algo",
    "cert_url": "paypal-cert-url",
    "transmission_id": "paypal-transmission-id",
    "transmission_sig": "paypal-transmission-sig",
    "transmission_time": "paypal-transmission-time",
}
VERIFY_PATH = "/v1/notifications/verify-webhook-signature"


def _invalid(message: str) -> ProviderError:
    return ProviderError(f"PayPal webhook refused: {message}", code="invalid_signature")


class PayPalWebhooks(PayPalDisputes):
    """The webhook method of `PayPalProvider` (and, through `PayPalDisputes`, the dispute methods)."""

    def _verification_body(self, payload: WebhookPayload) -> bytes:
        """The verification request, the event embedded as received: PayPal checks the signature over
        the body it sent, so the event must not be re-serialized on the way back."""
        if not self.settings.webhook_id:
            raise _invalid("the option `webhook_id` is not configured")
        headers = {key.lower(): value for key, value in payload.headers.items()}
        fields: Data = {}
        for name, header in TRANSMISSION_HEADERS.items():
            value = headers.get(header)
            if not value:
                raise _invalid(f"the header {header} is missing")
            fields[name] = value
        fields["webhook_id"] = self.settings.webhook_id
        head = json.dumps(fields, separators=(",", ":"))[:-1]
        return f'{head},"webhook_event":'.encode() + payload.raw_data.strip() + b"}"

    async def _verify(self, payload: WebhookPayload) -> Data:
        try:
            event = json.loads(payload.raw_data)
        except ValueError:
            raise _invalid("the body is not JSON") from None
        if not isinstance(event, dict) or not isinstance(event.get("resource"), dict):
            raise _invalid("the body is not a PayPal event")
        body = self._verification_body(payload)
        token = await self._blocking(self._access_token)
        try:
            response = await self._http_client().post(
                self.base_url + VERIFY_PATH,
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise unreachable(exc) from exc
        if retryable(response.status_code):
            raise RetryableProviderError(
                f"PayPal could not verify the webhook now (HTTP {response.status_code})",
                code="paypal_unavailable",
            )
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200 or answer.get("verification_status") != "SUCCESS":
            raise _invalid(
                f"PayPal did not verify it ({answer.get('verification_status') or response.status_code})"
            )
        return event

    async def get_webhook_action_and_data(self, payload: WebhookPayload) -> WebhookActionResult:
        event = await self._verify(payload)
        event_type = str(event.get("event_type") or "")
        event_id = str(event["id"]) if event.get("id") else None
        resource: Mapping[str, Any] = event["resource"]
        details: Data = {"event_type": event_type, "object_id": resource.get("id")}
        action = event_action(event_type)
        not_ours = WebhookActionResult(action=PaymentAction.NOT_SUPPORTED, event_id=event_id, data=details)
        if action == PaymentAction.NOT_SUPPORTED:
            return not_ours
        if event_type in REFUND_EVENTS:
            return await self._refund_event(resource, event_id, details) or not_ours
        if event_type in DISPUTE_EVENTS:
            return await self._dispute_event(resource, event_id, details)
        session = session_id(resource)
        if session is None:
            return not_ours
        amount = from_money(resource.get("amount"))
        remaining: Decimal | None = None
        if action == PaymentAction.SUCCESSFUL:
            # A capture event is about one capture; paymod books up to the order's captured total.
            order_id = ((resource.get("supplementary_data") or {}).get("related_ids") or {}).get("order_id")
            if order_id:
                order = await self._send(lambda c: c.orders.get_order({"id": order_id}))
                amount = captured_total(order.body)
            if resource.get("final_capture") is True:
                remaining = Decimal(0)  # a final capture: PayPal released the rest
        return WebhookActionResult(
            action=action,
            session_id=session,
            amount=amount if action in (PaymentAction.SUCCESSFUL, PaymentAction.AUTHORIZED) else None,
            event_id=event_id,
            data=details,
            remaining_capturable=remaining,
        )

    async def _refund_event(
        self, refund: Mapping[str, Any], event_id: str | None, details: Data
    ) -> WebhookActionResult | None:
        """A refund (or reversal) of a capture: the capture it links to (`rel: up`) names the session. A
        reversal of a disputed capture is the dispute's withdrawal, reported as the dispute."""
        capture_id = up_id(refund)
        if not capture_id or not refund.get("id"):
            return None
        session = await self._capture_session(capture_id)
        if session is None:
            return None
        if details["event_type"] == REVERSED:
            disputed = await self._reversal_dispute(capture_id, session, event_id, details)
            if disputed is not None:
                return disputed
        return WebhookActionResult(
            action=PaymentAction.REFUNDED,
            session_id=session,
            event_id=event_id,
            data={**details, "capture_id": capture_id},
            refunds=[
                ProviderRefund(
                    id=str(refund["id"]),
                    amount=from_money(refund.get("amount")),
                    paymod_refund_id=paymod_refund_id(refund),
                )
            ],
        )
