"""The provider interface (Medusa's payment provider methods) with typed inputs and outputs.

A provider subclasses `PaymentProvider`, sets `identifier`, and implements the async methods. The
module calls them outside any database lock and always passes `context.idempotency_key`, stable
across retries of the same logical operation, so a provider can forward it to its API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from paymod.domain.statuses import DisputeStatus, PaymentAction, PaymentSessionStatus

Data = dict[str, Any]


@dataclass(slots=True)
class ProviderContext:
    idempotency_key: str | None = None
    customer: Mapping[str, Any] | None = None
    account_holder: Mapping[str, Any] | None = None
    extra: Data = field(default_factory=dict)
    #: True when this call repeats, with the same idempotency key, a call whose outcome paymod never
    #: learned (a resumed run): the provider may have done it already and should look before acting
    #: again if its idempotency keys can expire (Stripe prunes them after 24 hours).
    resumed: bool = False


@dataclass(slots=True)
class ProviderInput:
    data: Data = field(default_factory=dict)
    context: ProviderContext = field(default_factory=ProviderContext)


@dataclass(slots=True)
class InitiatePaymentInput(ProviderInput):
    amount: Decimal = Decimal(0)
    currency_code: str = ""


@dataclass(slots=True)
class UpdatePaymentInput(ProviderInput):
    amount: Decimal = Decimal(0)
    currency_code: str = ""


@dataclass(slots=True)
class CapturePaymentInput(ProviderInput):
    """The amount to capture now (Medusa leaves it out; paymod always tells the provider)."""

    amount: Decimal = Decimal(0)
    currency_code: str = ""


@dataclass(slots=True)
class RefundPaymentInput(ProviderInput):
    amount: Decimal = Decimal(0)
    currency_code: str = ""
    reason: str | None = None
    note: str | None = None


@dataclass(slots=True)
class ProviderOutput:
    data: Data | None = None


@dataclass(slots=True)
class CapturePaymentOutput(ProviderOutput):
    """A capture's answer. `remaining_capturable`, when the provider says: what it still holds for later
    captures of this authorization; `Decimal(0)` after a partial capture means the provider released
    the rest (Stripe without multicapture), and paymod closes the payment."""

    remaining_capturable: Decimal | None = None


@dataclass(slots=True)
class RefundPaymentOutput(ProviderOutput):
    """A refund's answer; `refund_id`, when the provider has one, is stored on paymod's refund so that
    the provider's later webhooks about it (refunded, failed) are recognised as about this refund."""

    refund_id: str | None = None


@dataclass(slots=True)
class InitiatePaymentOutput(ProviderOutput):
    id: str = ""
    status: PaymentSessionStatus | None = None


@dataclass(slots=True)
class StatusOutput(ProviderOutput):
    status: PaymentSessionStatus | None = None


@dataclass(slots=True)
class AuthorizePaymentOutput(ProviderOutput):
    """An authorization's answer. `expires_at` (aware UTC), when the provider says: the moment it will no
    longer let this authorization be captured (it releases the money then); paymod warns before it,
    marks the payment expired after it and refuses to capture it. None: it does not lapse, or unknown."""

    status: PaymentSessionStatus = PaymentSessionStatus.AUTHORIZED
    expires_at: datetime | None = None


@dataclass(slots=True)
class AccountHolderInput(ProviderInput):
    pass


@dataclass(slots=True)
class AccountHolderOutput(ProviderOutput):
    id: str = ""


@dataclass(slots=True)
class PaymentMethodInput(ProviderInput):
    pass


@dataclass(slots=True)
class PaymentMethodOutput(ProviderOutput):
    id: str = ""


@dataclass(slots=True)
class WebhookPayload:
    data: Mapping[str, Any]
    raw_data: bytes
    headers: Mapping[str, str]


@dataclass(slots=True)
class ProviderRefund:
    """One refund a `refunded` or `refund_failed` event is about: the provider's id, its amount (in
    the currency's main unit), paymod's refund id when paymod made it (e.g. from the refund's
    metadata), and why it failed."""

    id: str
    amount: Decimal | None = None
    paymod_refund_id: str | None = None
    failure_reason: str | None = None


@dataclass(slots=True)
class ProviderDispute:
    """The dispute (chargeback) a `disputed` event is about, as the provider sees it now: its id, the
    disputed amount (in the currency's main unit), the card network's reason, its status, when the
    evidence is due, and whether the disputed funds were withdrawn from (or given back to) the
    merchant's balance, when the provider says."""

    id: str
    amount: Decimal
    #: None: the payment's currency.
    currency_code: str | None
    status: DisputeStatus
    reason: str | None = None
    evidence_due_by: datetime | None = None
    funds_withdrawn: bool | None = None
    funds_reinstated: bool | None = None
    #: The provider's dispute object, kept as it reported it.
    data: Data = field(default_factory=dict)


@dataclass(slots=True)
class DisputeEvidenceInput(ProviderInput):
    """Evidence for a dispute (`dispute_id`: the provider's id), in the provider's field names;
    `submit` sends it to the bank now, else it is saved as a draft (Stripe: `submit=false`)."""

    dispute_id: str = ""
    evidence: Data = field(default_factory=dict)
    submit: bool = False


@dataclass(slots=True)
class DisputeInput(ProviderInput):
    """A dispute to act on (`dispute_id`: the provider's id)."""

    dispute_id: str = ""


@dataclass(slots=True)
class DisputeOutput(ProviderOutput):
    """The dispute's status after the call, when the provider says."""

    status: DisputeStatus | None = None


@dataclass(slots=True)
class WebhookActionResult:
    action: PaymentAction
    session_id: str | None = None
    amount: Decimal | None = None
    event_id: str | None = None
    data: Data = field(default_factory=dict)
    #: What the provider still holds capturable, when the event says (0 on a `captured` event: the
    #: provider closed the authorization, e.g. Stripe's `payment_intent.succeeded`).
    remaining_capturable: Decimal | None = None
    #: The refunds a `refunded` / `refund_failed` event is about.
    refunds: list[ProviderRefund] = field(default_factory=list)
    #: The dispute a `disputed` event is about.
    dispute: ProviderDispute | None = None


class PaymentProvider:
    """Base class of every payment provider; optional methods raise NotImplementedError."""

    identifier: ClassVar[str] = ""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: Data = dict(options or {})

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        """Raises ValueError naming what is wrong with the configured options."""

    async def close(self) -> None:
        """Releases clients and connections."""

    # -- required ------------------------------------------------------------------------
    async def initiate_payment(self, input: InitiatePaymentInput) -> InitiatePaymentOutput:
        raise NotImplementedError

    async def update_payment(self, input: UpdatePaymentInput) -> StatusOutput:
        raise NotImplementedError

    async def delete_payment(self, input: ProviderInput) -> ProviderOutput:
        raise NotImplementedError

    async def authorize_payment(self, input: ProviderInput) -> AuthorizePaymentOutput:
        raise NotImplementedError

    async def capture_payment(self, input: CapturePaymentInput) -> ProviderOutput:
        """Captures `input.amount`; may answer a `CapturePaymentOutput` to say what stays capturable."""
        raise NotImplementedError

    async def refund_payment(self, input: RefundPaymentInput) -> ProviderOutput:
        """Refunds `input.amount`; may answer a `RefundPaymentOutput` carrying the provider's refund id."""
        raise NotImplementedError

    async def retrieve_payment(self, input: ProviderInput) -> ProviderOutput:
        raise NotImplementedError

    async def cancel_payment(self, input: ProviderInput) -> ProviderOutput:
        raise NotImplementedError

    async def get_payment_status(self, input: ProviderInput) -> StatusOutput:
        raise NotImplementedError

    async def get_webhook_action_and_data(self, payload: WebhookPayload) -> WebhookActionResult:
        return WebhookActionResult(action=PaymentAction.NOT_SUPPORTED)

    # -- optional: account holders and saved payment methods -------------------------------
    async def create_account_holder(self, input: AccountHolderInput) -> AccountHolderOutput:
        raise NotImplementedError

    async def retrieve_account_holder(self, input: AccountHolderInput) -> AccountHolderOutput:
        raise NotImplementedError

    async def update_account_holder(self, input: AccountHolderInput) -> ProviderOutput:
        raise NotImplementedError

    async def delete_account_holder(self, input: AccountHolderInput) -> ProviderOutput:
        raise NotImplementedError

    async def list_payment_methods(self, input: PaymentMethodInput) -> list[PaymentMethodOutput]:
        raise NotImplementedError

    async def save_payment_method(self, input: PaymentMethodInput) -> PaymentMethodOutput:
        raise NotImplementedError

    async def delete_payment_method(self, input: PaymentMethodInput) -> ProviderOutput:
        raise NotImplementedError

    # -- optional: disputes -----------------------------------------------------------------
    async def submit_dispute_evidence(self, input: DisputeEvidenceInput) -> DisputeOutput:
        """Saves (or, with `input.submit`, submits) evidence for a dispute."""
        raise NotImplementedError

    async def accept_dispute(self, input: DisputeInput) -> DisputeOutput:
        """Accepts a dispute: the merchant gives up, the dispute is lost."""
        raise NotImplementedError
