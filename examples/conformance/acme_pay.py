"""Acme Pay: a card service kept in memory, standing in for a provider package of your own."""

from __future__ import annotations

import uuid
from decimal import Decimal

from paymod import PaymentProvider, PaymentSessionStatus
from paymod.providers.base import (
    AuthorizePaymentOutput,
    CapturePaymentInput,
    InitiatePaymentInput,
    InitiatePaymentOutput,
    ProviderInput,
    ProviderOutput,
    RefundPaymentInput,
    StatusOutput,
    UpdatePaymentInput,
)


class AcmePayProvider(PaymentProvider):
    identifier = "acme"

    def __init__(self, options: dict[str, object] | None = None) -> None:
        super().__init__(options)
        self.intents: dict[str, dict[str, str]] = {}
        #: (operation, idempotency key) of every call that moved money, as Acme's request log has them
        self.calls: list[tuple[str, str | None]] = []

    def _intent(self, input: ProviderInput, operation: str) -> dict[str, str]:
        self.calls.append((operation, input.context.idempotency_key))
        return self.intents[input.data["id"]]

    async def initiate_payment(self, input: InitiatePaymentInput) -> InitiatePaymentOutput:
        intent = {
            "id": f"acme_{uuid.uuid4().hex}",
            "amount": str(input.amount),
            "status": "open",
            **input.data,
        }
        self.intents[intent["id"]] = intent
        return InitiatePaymentOutput(id=intent["id"], data=dict(intent))

    async def update_payment(self, input: UpdatePaymentInput) -> StatusOutput:
        self.intents[input.data["id"]]["amount"] = str(input.amount)
        return StatusOutput(data=dict(self.intents[input.data["id"]]))

    async def authorize_payment(self, input: ProviderInput) -> AuthorizePaymentOutput:
        intent = self._intent(input, "authorize_payment")
        intent["status"] = "declined" if intent.get("card") == "declined" else "authorized"
        status = (
            PaymentSessionStatus.ERROR if intent["status"] == "declined" else PaymentSessionStatus.AUTHORIZED
        )
        return AuthorizePaymentOutput(data=dict(intent), status=status)

    async def capture_payment(self, input: CapturePaymentInput) -> ProviderOutput:
        intent = self._intent(input, "capture_payment")
        intent["captured"] = str(Decimal(intent.get("captured", "0")) + input.amount)
        return ProviderOutput(data=dict(intent))

    async def refund_payment(self, input: RefundPaymentInput) -> ProviderOutput:
        intent = self._intent(input, "refund_payment")
        intent["refunded"] = str(Decimal(intent.get("refunded", "0")) + input.amount)
        return ProviderOutput(data=dict(intent))

    async def cancel_payment(self, input: ProviderInput) -> ProviderOutput:
        intent = self._intent(input, "cancel_payment")
        intent["status"] = "canceled"
        return ProviderOutput(data=dict(intent))

    async def get_payment_status(self, input: ProviderInput) -> StatusOutput:
        status = {"authorized": PaymentSessionStatus.AUTHORIZED, "canceled": PaymentSessionStatus.CANCELED}
        intent = self.intents[input.data["id"]]
        return StatusOutput(
            data=dict(intent), status=status.get(intent["status"], PaymentSessionStatus.PENDING)
        )

    async def delete_payment(self, input: ProviderInput) -> ProviderOutput:
        return ProviderOutput(data=self.intents.pop(input.data["id"], {}))

    async def retrieve_payment(self, input: ProviderInput) -> ProviderOutput:
        return ProviderOutput(data=dict(self.intents[input.data["id"]]))
