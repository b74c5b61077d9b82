"""The system (manual) provider, always registered as `pp_system_default` (reference 4.1).

It moves no money: it records payments a merchant takes outside paymod (cash, bank transfer).
"""

from __future__ import annotations

import uuid

from paymod.domain.statuses import PaymentSessionStatus
from paymod.providers.base import (
    AccountHolderInput,
    AccountHolderOutput,
    AuthorizePaymentOutput,
    CapturePaymentInput,
    InitiatePaymentInput,
    InitiatePaymentOutput,
    PaymentProvider,
    ProviderInput,
    ProviderOutput,
    RefundPaymentInput,
    StatusOutput,
    UpdatePaymentInput,
)


class SystemPaymentProvider(PaymentProvider):
    identifier = "system"

    async def initiate_payment(self, input: InitiatePaymentInput) -> InitiatePaymentOutput:
        return InitiatePaymentOutput(id=str(uuid.uuid4()), data={})

    async def update_payment(self, input: UpdatePaymentInput) -> StatusOutput:
        return StatusOutput(data={})

    async def delete_payment(self, input: ProviderInput) -> ProviderOutput:
        return ProviderOutput(data={})

    async def authorize_payment(self, input: ProviderInput) -> AuthorizePaymentOutput:
        return AuthorizePaymentOutput(data={}, status=PaymentSessionStatus.AUTHORIZED)

    async def capture_payment(self, input: CapturePaymentInput) -> ProviderOutput:
        return ProviderOutput(data={})

    async def refund_payment(self, input: RefundPaymentInput) -> ProviderOutput:
        return ProviderOutput(data={})

    async def retrieve_payment(self, input: ProviderInput) -> ProviderOutput:
        return ProviderOutput()

    async def cancel_payment(self, input: ProviderInput) -> ProviderOutput:
        return ProviderOutput(data={})

    async def get_payment_status(self, input: ProviderInput) -> StatusOutput:
        raise NotImplementedError("Method not implemented.")

    async def create_account_holder(self, input: AccountHolderInput) -> AccountHolderOutput:
        customer = input.context.customer or {}
        return AccountHolderOutput(id=str(customer.get("id", "")))

    async def retrieve_account_holder(self, input: AccountHolderInput) -> AccountHolderOutput:
        holder = input.context.account_holder or {}
        return AccountHolderOutput(id=str(holder.get("external_id") or holder.get("id", "")))

    async def delete_account_holder(self, input: AccountHolderInput) -> ProviderOutput:
        return ProviderOutput(data={})


services = [SystemPaymentProvider]
