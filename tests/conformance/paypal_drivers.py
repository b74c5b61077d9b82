"""The driver of the PayPal provider against the fake PayPal (tests/paypal/fake_paypal.py).

It steers PayPal the way its users do: the buyer approves the order on PayPal (or not yet), the
storefront's PayPal buttons may authorize an approved order themselves, and the merchant's PayPal
account captures, voids or refunds; each followed by the signed event PayPal sends for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx
from fake_paypal import CLIENT_ID, CLIENT_SECRET, FakePayPal
from paypal_settings import paypal_config

from paymod.domain.statuses import PaymentAction
from paymod.providers.base import WebhookPayload
from paymod.providers.paypal.amounts import to_value
from paymod.services.dto import PaymentDTO, PaymentSessionDTO
from paymod.testing import Capability, Harness, Operation, ProviderDriver, Scenario

C = Capability
Json = dict[str, Any]

#: The path of each PayPal call (a POST) the kit checks, per provider operation.
OPERATIONS: dict[Operation, str] = {
    Operation.INITIATE: r"/v2/checkout/orders",
    Operation.AUTHORIZE: r"/v2/checkout/orders/[^/]+/(authorize|capture)",
    Operation.CAPTURE: r"/v2/payments/authorizations/[^/]+/capture",
    Operation.REFUND: r"/v2/payments/captures/[^/]+/refund",
    Operation.CANCEL: r"/v2/payments/authorizations/[^/]+/void",
}
#: The captures whose money moved (refunds aside), as PayPal reports them.
MOVED = frozenset({"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"})


class FakePayPalDriver(ProviderDriver):
    """PayPal (intent AUTHORIZE) answered by the fake. The provider keeps no customers or saved
    payment methods at PayPal, and PayPal has no event that asks the buyer for more or fails an order
    that was never approved, so those are not declared."""

    provider_id = "pp_paypal_test"
    capabilities = frozenset(Capability) - {C.ACCOUNT_HOLDERS, C.SAVED_METHODS}
    webhooks = frozenset(
        {PaymentAction.AUTHORIZED, PaymentAction.SUCCESSFUL, PaymentAction.CANCELED, PaymentAction.REFUNDED}
    )
    #: A hard decline (the session ends in error); INSTRUMENT_DECLINED would send the buyer back to PayPal.
    decline_issue = "TRANSACTION_REFUSED"

    def __init__(self, fake: FakePayPal) -> None:
        self.fake = fake
        self.merchant = httpx.AsyncClient(base_url=fake.url, timeout=10)
        self._token: str | None = None

    async def close(self) -> None:
        await self.merchant.aclose()

    def provider_config(self) -> Mapping[str, Any]:
        return paypal_config(self.fake.url)

    def session_data(self, scenario: Scenario) -> dict[str, Any]:
        # The kit hands the driver no order, so the fake's switches for new orders stand for the buyer:
        # a plain checkout is approved at once (PayPal's buttons approve before the shop's server sees
        # the order), a declined one is approved with a funding source PayPal refuses.
        self.fake.approve_new_orders = scenario in (Scenario.SUCCESS, Scenario.DECLINE)
        self.fake.decline_new_orders = self.decline_issue if scenario == Scenario.DECLINE else None
        return {}

    async def complete_customer_action(self, harness: Harness, session: PaymentSessionDTO) -> None:
        self.fake.approve(str(session.data["id"]))

    async def lose_next_capture(self, harness: Harness, payment: PaymentDTO) -> None:
        authorization_id = (payment.data or {})["authorization_id"]
        # The SDK does not retry (paymod does): one attempt reaches PayPal and loses its answer.
        self.fake.fail_next("lost", path=f"/v2/payments/authorizations/{authorization_id}/capture")

    def idempotency_keys(self, harness: Harness, operation: Operation) -> list[str | None]:
        pattern = OPERATIONS[operation]
        return [
            r.request_id for r in self.fake.requests if r.method == "POST" and re.fullmatch(pattern, r.path)
        ]

    async def captured_at_provider(self, harness: Harness, payment: PaymentDTO) -> Decimal | None:
        order = self.fake.order((payment.data or {})["id"])
        captures = order["purchase_units"][0].get("payments", {}).get("captures", [])
        return sum((Decimal(c["amount"]["value"]) for c in captures if c["status"] in MOVED), Decimal(0))

    # -- webhooks ----------------------------------------------------------------------------------
    async def webhook(
        self, harness: Harness, action: PaymentAction, session: PaymentSessionDTO, amount: Decimal
    ) -> WebhookPayload:
        order_id = str(session.data["id"])
        if action == PaymentAction.AUTHORIZED:
            order = self.fake.order(order_id)
            if order["status"] == "APPROVED":
                # The storefront's PayPal buttons authorize the approved order in the browser.
                order = await self._merchant_post(f"/v2/checkout/orders/{order_id}/authorize", {})
            return self._signed("PAYMENT.AUTHORIZATION.CREATED", _last(order, "authorizations"))
        authorization_id = str(_last(self.fake.order(order_id), "authorizations")["id"])
        if action == PaymentAction.SUCCESSFUL:
            capture = await self._merchant_post(
                f"/v2/payments/authorizations/{authorization_id}/capture",
                {"amount": self._money(amount)},
            )
            return self._signed("PAYMENT.CAPTURE.COMPLETED", capture)
        if action == PaymentAction.CANCELED:
            return self._signed("PAYMENT.AUTHORIZATION.VOIDED", self.fake.void_outside(authorization_id))
        if action == PaymentAction.REFUNDED:
            capture_id = str(_last(self.fake.order(order_id), "captures")["id"])
            return self._signed("PAYMENT.CAPTURE.REFUNDED", self.fake.refund_outside(capture_id, amount))
        raise NotImplementedError(action)

    def _money(self, amount: Decimal) -> Json:
        currency = self.currency_code.upper()
        return {"currency_code": currency, "value": to_value(amount, currency)}

    def _signed(self, event_type: str, resource: Json) -> WebhookPayload:
        event = self.fake.event(event_type, resource)
        raw, headers = self.fake.sign(event)
        return WebhookPayload(data=event, raw_data=raw, headers=headers)

    async def _merchant_post(self, path: str, body: Json) -> Json:
        """A call to PayPal's REST API with the merchant's own credentials, beside paymod."""
        if self._token is None:
            answer = await self.merchant.post(
                "/v1/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(CLIENT_ID, CLIENT_SECRET),
            )
            answer.raise_for_status()
            self._token = str(answer.json()["access_token"])
        response = await self.merchant.post(
            path,
            json=body,
            headers={"Authorization": f"Bearer {self._token}", "Prefer": "return=representation"},
        )
        response.raise_for_status()
        result: Json = response.json()
        return result


def _last(order: Json, kind: str) -> Json:
    """The order's newest authorization or capture."""
    found: list[Json] = order["purchase_units"][0].get("payments", {}).get(kind, [])
    assert found, f"PayPal order {order.get('id')} has no {kind}"
    return found[-1]
