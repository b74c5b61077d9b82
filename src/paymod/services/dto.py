"""Typed results of the module, with the reference's field names. Amounts are Decimal."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field

from paymod.domain.money import raw_amount
from paymod.domain.statuses import (
    DisputeStatus,
    PaymentAction,
    PaymentCollectionStatus,
    PaymentSessionStatus,
)


class DTO(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=False)


class _Timestamps(DTO):
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None


class _Amount(DTO):
    amount: Decimal

    @computed_field  # type: ignore[prop-decorator]
    @property
    def raw_amount(self) -> dict[str, Any]:
        return raw_amount(self.amount)


class PaymentProviderDTO(_Timestamps):
    id: str
    is_enabled: bool = True


class RefundReasonDTO(_Timestamps):
    id: str
    label: str
    code: str
    description: str | None = None
    metadata: dict[str, Any] | None = None
    refunds: list[RefundDTO] | None = None


class CaptureDTO(_Amount, _Timestamps):
    id: str
    payment_id: str
    created_by: str | None = None
    metadata: dict[str, Any] | None = None
    payment: PaymentDTO | None = None


class RefundDTO(_Amount, _Timestamps):
    id: str
    payment_id: str
    refund_reason_id: str | None = None
    note: str | None = None
    created_by: str | None = None
    metadata: dict[str, Any] | None = None
    #: The provider's id of this refund, when it gave one (paymod's own).
    provider_refund_id: str | None = None
    payment: PaymentDTO | None = None
    refund_reason: RefundReasonDTO | None = None


class PaymentDTO(_Amount, _Timestamps):
    id: str
    currency_code: str
    provider_id: str
    data: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    captured_at: datetime | None = None
    canceled_at: datetime | None = None
    #: What the provider released uncaptured when it closed the authorization (paymod's own).
    released_amount: Decimal | None = None
    #: When the provider stops letting the authorization be captured, and when paymod marked it expired
    #: (paymod's own).
    authorization_expires_at: datetime | None = None
    expired_at: datetime | None = None
    payment_collection_id: str
    payment_session_id: str
    captures: list[CaptureDTO] | None = None
    refunds: list[RefundDTO] | None = None
    #: The payment's disputes (chargebacks), when asked for (paymod's own).
    disputes: list[DisputeDTO] | None = None
    payment_session: PaymentSessionDTO | None = None
    payment_collection: PaymentCollectionDTO | None = None


class DisputeDTO(_Amount):
    """A dispute (chargeback) of a payment, as its provider last reported it (paymod's own)."""

    id: str
    payment_id: str
    provider_id: str
    provider_dispute_id: str
    currency_code: str
    reason: str | None = None
    status: DisputeStatus
    evidence_due_by: datetime | None = None
    funds_withdrawn: bool | None = None
    funds_reinstated: bool | None = None
    data: dict[str, Any] | None = None
    evidence_submitted_at: datetime | None = None
    accepted_at: datetime | None = None
    closed_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    payment: PaymentDTO | None = None


class PaymentSessionDTO(_Amount, _Timestamps):
    id: str
    currency_code: str
    provider_id: str
    data: dict[str, Any]
    context: dict[str, Any] | None = None
    status: PaymentSessionStatus
    authorized_at: datetime | None = None
    payment_collection_id: str
    metadata: dict[str, Any] | None = None
    payment: PaymentDTO | None = None
    payment_collection: PaymentCollectionDTO | None = None


class PaymentCollectionDTO(_Amount, _Timestamps):
    id: str
    currency_code: str
    authorized_amount: Decimal | None = None
    captured_amount: Decimal | None = None
    refunded_amount: Decimal | None = None
    completed_at: datetime | None = None
    status: PaymentCollectionStatus
    metadata: dict[str, Any] | None = None
    payment_providers: list[PaymentProviderDTO] | None = None
    payment_sessions: list[PaymentSessionDTO] | None = None
    payments: list[PaymentDTO] | None = None


class AccountHolderDTO(_Timestamps):
    id: str
    provider_id: str
    external_id: str
    email: str | None = None
    customer_id: str | None = None
    data: dict[str, Any]
    metadata: dict[str, Any] | None = None


class PaymentMethodDTO(DTO):
    id: str
    data: dict[str, Any] | None = None
    provider_id: str


class WebhookRefund(DTO):
    """A refund a webhook is about (paymod's own): the provider's id, amount, paymod's id if it made it."""

    id: str
    amount: Decimal | None = None
    paymod_refund_id: str | None = None
    failure_reason: str | None = None


class WebhookDispute(DTO):
    """The dispute a `disputed` webhook is about (paymod's own)."""

    id: str
    amount: Decimal
    #: None: the payment's currency.
    currency_code: str | None = None
    status: DisputeStatus
    reason: str | None = None
    evidence_due_by: datetime | None = None
    funds_withdrawn: bool | None = None
    funds_reinstated: bool | None = None
    data: dict[str, Any] = {}


class WebhookActionData(DTO):
    session_id: str
    amount: Decimal | None = None
    #: What the provider says stays capturable; 0: it closed the authorization (paymod's own).
    remaining_capturable: Decimal | None = None
    #: The refunds of a `refunded` / `refund_failed` event (paymod's own).
    refunds: list[WebhookRefund] = []
    #: The dispute of a `disputed` event (paymod's own).
    dispute: WebhookDispute | None = None


class WebhookActionAndData(DTO):
    action: PaymentAction
    data: WebhookActionData | None = None
    event_id: str | None = None


for _model in (
    RefundReasonDTO,
    CaptureDTO,
    RefundDTO,
    PaymentDTO,
    DisputeDTO,
    PaymentSessionDTO,
    PaymentCollectionDTO,
):
    _model.model_rebuild()
