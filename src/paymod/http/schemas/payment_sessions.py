"""Payment sessions: the request body that starts one, and the entity."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from paymod.http.schemas.base import AmountOut, Body, Id, JsonObject, RawAmount, Timestamped


class CreatePaymentSession(Body):
    provider_id: Id
    data: JsonObject | None = None
    context: JsonObject | None = None


class PaymentSession(Timestamped):
    id: str
    amount: AmountOut | None = None
    raw_amount: RawAmount | None = None
    currency_code: str | None = None
    provider_id: str | None = None
    data: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    status: (
        Literal[
            "authorized", "captured", "pending", "requires_more", "error", "canceled", "pending_authorization"
        ]
        | None
    ) = None
    authorized_at: datetime | None = None
    payment_collection_id: str | None = None
    metadata: dict[str, Any] | None = None


__all__ = ["CreatePaymentSession", "PaymentSession"]
