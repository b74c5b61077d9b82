"""Refund reasons: request bodies, entities and documents."""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    Field,
)

from paymod.http.schemas.base import Body, JsonObject, ListDocument, Timestamped


class CreateRefundReason(Body):
    label: str = Field(min_length=1, max_length=1000)
    code: str = Field(min_length=1, max_length=1000)
    description: str | None = Field(default=None, max_length=10_000)
    metadata: JsonObject | None = None


class UpdateRefundReason(Body):
    # Optional but never null (a reason always has a label and a code): the schema says `string`.
    label: str = Field(default=None, min_length=1, max_length=1000)  # type: ignore[assignment]
    code: str = Field(default=None, min_length=1, max_length=1000)  # type: ignore[assignment]
    description: str | None = Field(default=None, max_length=10_000)
    metadata: JsonObject | None = None


class RefundReason(Timestamped):
    id: str
    label: str | None = None
    code: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None


class RefundReasonResponse(BaseModel):
    refund_reason: RefundReason


class RefundReasonList(ListDocument):
    refund_reasons: list[RefundReason]


__all__ = [
    "CreateRefundReason",
    "RefundReason",
    "RefundReasonList",
    "RefundReasonResponse",
    "UpdateRefundReason",
]
