"""Payments, their captures and refunds, and payment providers: request bodies, entities and documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import (
    BaseModel,
    Field,
)

from paymod.http.schemas.base import (
    AmountOut,
    Body,
    Entity,
    Id,
    ListDocument,
    NullableAmountOut,
    PositiveAmount,
    RawAmount,
    Timestamped,
)
from paymod.http.schemas.disputes import Dispute
from paymod.http.schemas.payment_sessions import PaymentSession
from paymod.http.schemas.refund_reasons import RefundReason


class CapturePayment(Body):
    amount: PositiveAmount | None = None


class RefundPayment(Body):
    amount: PositiveAmount | None = None
    refund_reason_id: Id | None = Field(
        default=None, description="A refund reason's id (`refr_...`) or its code (`pricing_error`)"
    )
    note: str | None = Field(default=None, max_length=10_000)


class PaymentProvider(Entity):
    id: str
    is_enabled: bool | None = None


class Capture(Timestamped):
    id: str
    amount: AmountOut | None = None
    raw_amount: RawAmount | None = None
    payment_id: str | None = None
    created_by: str | None = None
    metadata: dict[str, Any] | None = None


class Refund(Timestamped):
    id: str
    amount: AmountOut | None = None
    raw_amount: RawAmount | None = None
    payment_id: str | None = None
    refund_reason_id: str | None = None
    note: str | None = None
    created_by: str | None = None
    metadata: dict[str, Any] | None = None
    refund_reason: RefundReason | None = None


class Payment(Timestamped):
    id: str
    amount: AmountOut | None = None
    raw_amount: RawAmount | None = None
    currency_code: str | None = None
    provider_id: str | None = None
    data: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    captured_at: datetime | None = None
    canceled_at: datetime | None = None
    released_amount: NullableAmountOut = Field(
        default=None,
        description="what the provider released uncaptured when it closed the authorization (the payment "
        "is then canceled for the rest)",
    )
    authorization_expires_at: datetime | None = Field(
        default=None, description="when the provider stops letting the authorization be captured"
    )
    expired_at: datetime | None = Field(
        default=None, description="when paymod marked the authorization expired (it is canceled then)"
    )
    payment_collection_id: str | None = None
    payment_session_id: str | None = None
    captures: list[Capture] | None = None
    refunds: list[Refund] | None = None
    disputes: list[Dispute] | None = Field(
        default=None, description="Its disputes (chargebacks), as the provider reported them"
    )
    payment_session: PaymentSession | None = None


class PaymentResponse(BaseModel):
    payment: Payment


class PaymentList(ListDocument):
    payments: list[Payment]
    count: int | None = Field(  # type: ignore[assignment]
        description="how many payments match; null on a page read after a cursor, or with `count=false` "
        "(counting a million payments costs more than reading a page)"
    )
    next_cursor: str | None = Field(
        default=None,
        description="pass it as `after` for the next page (in `created_at` order); null after the last",
    )


class PaymentProviderList(ListDocument):
    payment_providers: list[PaymentProvider]


__all__ = [
    "Capture",
    "CapturePayment",
    "Payment",
    "PaymentList",
    "PaymentProvider",
    "PaymentProviderList",
    "PaymentResponse",
    "Refund",
    "RefundPayment",
]
