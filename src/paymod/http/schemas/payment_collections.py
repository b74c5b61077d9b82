"""Payment collections and their sessions: request bodies, entities and documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
)

from paymod.http.schemas.base import (
    Amount,
    AmountOut,
    Body,
    CurrencyCode,
    Id,
    JsonObject,
    ListDocument,
    NullableAmountOut,
    RawAmount,
    Timestamped,
)
from paymod.http.schemas.payment_sessions import PaymentSession
from paymod.http.schemas.payments import Payment, PaymentProvider


class CreatePaymentCollection(Body):
    amount: Amount
    currency_code: CurrencyCode
    metadata: JsonObject | None = None


class UpdatePaymentCollection(Body):
    amount: Amount | None = None
    currency_code: CurrencyCode | None = None
    metadata: JsonObject | None = None


class MarkAsPaid(Body):
    provider_id: Id | None = None


class AuthorizePaymentCollection(Body):
    session_id: Id | None = None
    context: JsonObject | None = None


class PaymentCollection(Timestamped):
    id: str
    amount: AmountOut | None = None
    raw_amount: RawAmount | None = None
    currency_code: str | None = None
    authorized_amount: NullableAmountOut = None
    captured_amount: NullableAmountOut = None
    refunded_amount: NullableAmountOut = None
    completed_at: datetime | None = None
    status: (
        Literal[
            "not_paid",
            "awaiting",
            "authorized",
            "partially_authorized",
            "canceled",
            "failed",
            "partially_captured",
            "completed",
        ]
        | None
    ) = None
    metadata: dict[str, Any] | None = None
    payment_sessions: list[PaymentSession] | None = None
    payments: list[Payment] | None = None
    payment_providers: list[PaymentProvider] | None = None


class PaymentCollectionResponse(BaseModel):
    payment_collection: PaymentCollection


class PaymentCollectionList(ListDocument):
    payment_collections: list[PaymentCollection]


class Authorization(BaseModel):
    """The checkout's answer: the payment, or the session when the client must act first."""

    payment_collection: PaymentCollection
    payment: Payment | None = None
    payment_session: PaymentSession | None = None
    action_required: bool = Field(
        description="true when the provider needs the customer to act (e.g. 3-D Secure): "
        "`payment_session.data` says what to do; authorize again afterwards"
    )


__all__ = [
    "Authorization",
    "AuthorizePaymentCollection",
    "CreatePaymentCollection",
    "MarkAsPaid",
    "PaymentCollection",
    "PaymentCollectionList",
    "PaymentCollectionResponse",
    "UpdatePaymentCollection",
]
