"""Drivers of the Stripe provider: against the in-memory fake, and against localstripe.

Both steer Stripe the way its users do: the storefront confirms and passes 3-D Secure, the merchant's
dashboard captures, cancels or refunds (each followed by the event Stripe sends for it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import stripe
from fake_stripe import FakeStripe, event_payload
from stripe_settings import API_KEY, WEBHOOK_SECRET, stripe_config

from paymod.domain.statuses import PaymentAction
from paymod.providers.base import WebhookPayload
from paymod.providers.stripe.amounts import from_smallest_unit, to_smallest_unit
from paymod.providers.stripe.provider import FormHTTPXClient
from paymod.services.dto import AccountHolderDTO, PaymentDTO, PaymentSessionDTO
from paymod.testing import Capability, Harness, Operation, ProviderDriver, Scenario

C = Capability
CAPTURE_PATH = "/v1/payment_intents/{}/capture"


def operation_of(method: str, path: str) -> Operation | None:
    """Which provider operation a Stripe API request belongs to (the POSTs the kit checks)."""
    if method != "POST":
        return None
    parts = path.strip("/").split("/")
    if parts == ["v1", "payment_intents"]:
        return Operation.INITIATE
    if parts[:2] == ["v1", "payment_intents"] and len(parts) == 4:
        return {"capture": Operation.CAPTURE, "cancel": Operation.CANCEL, "confirm": Operation.AUTHORIZE}.get(
            parts[3]
        )
    if parts == ["v1", "refunds"]:
        return Operation.REFUND
    return None


def signed_event(event_type: str, obj: Mapping[str, Any]) -> WebhookPayload:
    """A Stripe event about `obj`, signed as Stripe signs (`Stripe-Signature: t=...,v1=...`)."""
    event = {
        "id": f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": dict(obj)},
    }
    raw = json.dumps(event).encode()
    stamp = int(time.time())
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + raw, hashlib.sha256).hexdigest()
    headers = {"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"}
    return WebhookPayload(data=event, raw_data=raw, headers=headers)


class StripeDriver(ProviderDriver):
    """What both Stripe drivers share: the provider, the cards, and the merchant's direct client."""

    provider_id = "pp_stripe_stripe"
    webhooks = frozenset(
        {
            PaymentAction.AUTHORIZED,
            PaymentAction.SUCCESSFUL,
            PaymentAction.CANCELED,
            PaymentAction.REFUNDED,
            PaymentAction.FAILED,
            PaymentAction.REQUIRES_MORE,
        }
    )
    #: The event Stripe sends about an intent as it stands, per action.
    intent_events = {
        PaymentAction.AUTHORIZED: "payment_intent.amount_capturable_updated",
        PaymentAction.FAILED: "payment_intent.payment_failed",
        PaymentAction.REQUIRES_MORE: "payment_intent.requires_action",
    }

    def session_data(self, scenario: Scenario) -> dict[str, Any]:
        card = {
            Scenario.SUCCESS: "pm_card_visa",
            Scenario.CUSTOMER_ACTION: "pm_card_threeDSecure2Required",
            Scenario.DECLINE: "pm_card_chargeCustomerFail",
        }.get(scenario)
        return {} if card is None else {"payment_method": card, "confirm": True}

    def merchant(self) -> stripe.StripeClient:
        """The merchant's own Stripe client (its dashboard), beside paymod."""
        raise NotImplementedError

    async def webhook(
        self, harness: Harness, action: PaymentAction, session: PaymentSessionDTO, amount: Decimal
    ) -> WebhookPayload:
        intents = self.merchant().v1.payment_intents
        intent_id = str(session.data["id"])
        if action in self.intent_events:
            intent = await intents.retrieve_async(intent_id)
            return signed_event(self.intent_events[action], intent.to_dict())
        if action == PaymentAction.SUCCESSFUL:
            intent = await intents.capture_async(
                intent_id, {"amount_to_capture": to_smallest_unit(amount, self.currency_code)}
            )
            return signed_event("payment_intent.succeeded", intent.to_dict())
        if action == PaymentAction.CANCELED:
            intent = await intents.cancel_async(intent_id)
            return signed_event("payment_intent.canceled", intent.to_dict())
        if action == PaymentAction.REFUNDED:
            refund = await self.merchant().v1.refunds.create_async(
                {"payment_intent": intent_id, "amount": to_smallest_unit(amount, self.currency_code)}
            )
            # localstripe's refunds may leave `payment_intent` empty; Stripe's name the intent refunded.
            return signed_event("refund.created", {**refund.to_dict(), "payment_intent": intent_id})
        raise NotImplementedError(action)

    async def save_payment_method(self, harness: Harness, holder: AccountHolderDTO) -> str:
        # A SetupIntent through paymod, confirmed by the storefront (Stripe.js), the card attached.
        setup = await harness.module.create_payment_methods(
            {
                "provider_id": self.provider_id,
                "data": {"usage": "off_session", "payment_method_types": ["card"]},
                "context": {"account_holder": holder.model_dump(mode="json")},
            }
        )
        client = self.merchant()
        confirmed = await client.v1.setup_intents.confirm_async(setup.id, {"payment_method": "pm_card_visa"})
        method = str(confirmed.payment_method)
        attached = await client.v1.payment_methods.retrieve_async(method)
        if attached.customer != holder.external_id:
            await client.v1.payment_methods.attach_async(method, {"customer": holder.external_id})
        return method


class FakeStripeDriver(StripeDriver):
    """Stripe answered by the in-memory fake, with multicapture and the SDK's retries."""

    capabilities = frozenset(Capability)

    def __init__(self, fake: FakeStripe) -> None:
        self.fake = fake

    def provider_config(self) -> Mapping[str, Any]:
        return stripe_config(
            "https://api.stripe.test", http_client=self.fake, max_network_retries=2, multicapture=True
        )

    def merchant(self) -> stripe.StripeClient:
        return stripe.StripeClient(
            API_KEY,
            base_addresses={"api": "https://api.stripe.test"},
            http_client=self.fake,
            max_network_retries=0,
        )

    def session_data(self, scenario: Scenario) -> dict[str, Any]:
        if scenario == Scenario.DECLINE:
            return {"payment_method": "pm_card_visa_chargeDeclined", "confirm": True}
        return super().session_data(scenario)

    async def complete_customer_action(self, harness: Harness, session: PaymentSessionDTO) -> None:
        self.fake.authenticate(str(session.data["id"]))

    async def lose_next_capture(self, harness: Harness, payment: PaymentDTO) -> None:
        intent_id = (payment.data or {})["id"]
        # The SDK tries three times (two retries); each attempt reaches Stripe and loses its answer.
        self.fake.fail("lost", times=3, path=CAPTURE_PATH.format(intent_id))

    def idempotency_keys(self, harness: Harness, operation: Operation) -> list[str | None]:
        return [r.idempotency_key for r in self.fake.requests if operation_of(r.method, r.path) == operation]

    async def captured_at_provider(self, harness: Harness, payment: PaymentDTO) -> Decimal | None:
        intent = self.fake.objects[(payment.data or {})["id"]]
        return from_smallest_unit(intent["amount_received"], self.currency_code)

    async def webhook(
        self, harness: Harness, action: PaymentAction, session: PaymentSessionDTO, amount: Decimal
    ) -> WebhookPayload:
        intent_id = str(session.data["id"])
        if action == PaymentAction.REFUNDED:
            self.fake.refund_outside(intent_id, to_smallest_unit(amount, self.currency_code))
            raw, headers = self.fake.signed(self.fake.last_event("charge.refunded"))
            return WebhookPayload(data=json.loads(raw), raw_data=raw, headers=headers)
        if action in self.intent_events:
            raw, headers = self.fake.signed(event_payload(self.fake, self.intent_events[action], intent_id))
            return WebhookPayload(data=json.loads(raw), raw_data=raw, headers=headers)
        return await super().webhook(harness, action, session, amount)


@dataclass
class Recorded:
    method: str
    path: str
    idempotency_key: str | None


class RecordingClient(FormHTTPXClient):
    """The provider's HTTP client, recording the idempotency key of each request it sends."""

    name = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Recorded] = []

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        key = {k.lower(): v for k, v in dict(headers or {}).items()}.get("idempotency-key")
        self.requests.append(Recorded(method.upper(), urlsplit(url).path, key))
        return await super().request_async(method, url, headers, post_data)


class LocalstripeDriver(StripeDriver):
    """Stripe answered by localstripe, a local Stripe-compatible server. It has no multicapture, and
    no unknown outcome can be resolved against it: it ignores idempotency keys and its intents carry
    no `amount_received`, so a retried capture cannot learn that the lost one was made."""

    capabilities = frozenset(Capability) - {C.MULTIPLE_CAPTURES, C.UNKNOWN_OUTCOME}
    #: localstripe knows no magic id for a 3-D Secure card: one is made from its number per test.
    three_d_secure_card = ""

    def __init__(self, url: str, client: RecordingClient, merchant_client: FormHTTPXClient) -> None:
        self.url = url
        self.client = client
        self.merchant_client = merchant_client

    def provider_config(self) -> Mapping[str, Any]:
        return stripe_config(self.url, http_client=self.client)

    def merchant(self) -> stripe.StripeClient:
        return stripe.StripeClient(
            API_KEY, base_addresses={"api": self.url}, http_client=self.merchant_client, max_network_retries=0
        )

    async def setup(self, harness: Harness) -> None:
        card = {"number": "4000002500003155", "exp_month": 12, "exp_year": 2040, "cvc": "123"}
        method = await self.merchant().v1.payment_methods.create_async({"type": "card", "card": card})
        self.three_d_secure_card = method.id

    def session_data(self, scenario: Scenario) -> dict[str, Any]:
        if scenario == Scenario.CUSTOMER_ACTION:
            return {"payment_method": self.three_d_secure_card, "confirm": True}
        return super().session_data(scenario)

    async def complete_customer_action(self, harness: Harness, session: PaymentSessionDTO) -> None:
        # localstripe's own route for the 3-D Secure challenge.
        await self.merchant().raw_request_async(
            "post",
            f"/v1/payment_intents/{session.data['id']}/_authenticate",
            client_secret=session.data["client_secret"],
            success="true",
        )

    def idempotency_keys(self, harness: Harness, operation: Operation) -> list[str | None]:
        return [
            r.idempotency_key for r in self.client.requests if operation_of(r.method, r.path) == operation
        ]
