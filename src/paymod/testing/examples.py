"""Drivers of the built-in providers: the kit's own checks, and examples to copy for yours."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from paymod.domain.statuses import PaymentAction
from paymod.providers.base import WebhookPayload
from paymod.providers.testing import SIGNATURE_HEADER, TestingPaymentProvider, sign
from paymod.services.dto import PaymentDTO, PaymentSessionDTO
from paymod.testing.driver import Capability, Harness, Operation, ProviderDriver, Scenario
from paymod.testing.suite import CHECKED_WEBHOOKS

C = Capability


class SystemDriver(ProviderDriver):
    """The system provider (`pp_system_default`, always registered): it records payments taken outside
    paymod, so everything paymod books must hold, and there is nothing to decline or to call back."""

    provider_id = "pp_system_default"
    capabilities = frozenset(
        {C.PARTIAL_CAPTURE, C.MULTIPLE_CAPTURES, C.REFUNDS, C.MULTIPLE_REFUNDS, C.CANCEL, C.ACCOUNT_HOLDERS}
    )


class TestingDriver(ProviderDriver):
    """The scripted `testing` provider: its session data picks the scenario, its webhooks are JSON
    signed with HMAC-SHA256, and it counts its calls per idempotency key."""

    __test__ = False  # not a pytest class
    provider_id = "pp_testing_default"
    capabilities = frozenset(Capability)
    webhooks = CHECKED_WEBHOOKS
    secret = "whsec_conformance"

    def provider_config(self) -> Mapping[str, Any]:
        return {
            "resolve": "paymod.providers.testing",
            "id": "default",
            "options": {"webhook_secret": self.secret},
        }

    def session_data(self, scenario: Scenario) -> dict[str, Any]:
        return {
            Scenario.CUSTOMER_ACTION: {"scenario": "requires_more"},
            Scenario.DECLINE: {"scenario": "decline"},
        }.get(scenario, {})

    async def complete_customer_action(self, harness: Harness, session: PaymentSessionDTO) -> None:
        await harness.module.update_payment_session({"id": session.id, "data": {"action_completed": True}})

    async def lose_next_capture(self, harness: Harness, payment: PaymentDTO) -> None:
        provider = harness.provider
        assert isinstance(provider, TestingPaymentProvider)
        provider.lose_next_capture_answer()

    async def webhook(
        self, harness: Harness, action: PaymentAction, session: PaymentSessionDTO, amount: Decimal
    ) -> WebhookPayload:
        body: dict[str, Any] = {
            "id": f"evt_{uuid.uuid4().hex}",
            "action": action.value,
            "session_id": session.id,
            "amount": str(amount),
        }
        if action == PaymentAction.REFUNDED:
            body["refund_id"] = f"tre_outside_{uuid.uuid4().hex}"
        raw = json.dumps(body).encode()
        headers = {SIGNATURE_HEADER: sign(raw, self.secret), "content-type": "application/json"}
        return WebhookPayload(data=body, raw_data=raw, headers=headers)

    def idempotency_keys(self, harness: Harness, operation: Operation) -> list[str | None]:
        provider = harness.provider
        assert isinstance(provider, TestingPaymentProvider)
        return [
            key for (method, key), n in provider.calls.items() if method == operation.value for _ in range(n)
        ]
