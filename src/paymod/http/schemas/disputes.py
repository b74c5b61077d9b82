"""Disputes (chargebacks): the entity, its documents and the bodies of the answers to one."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from paymod.http.schemas.base import AmountOut, Body, Entity, JsonObject, ListDocument, RawAmount

DisputeStatusName = Literal[
    "warning_needs_response",
    "warning_under_review",
    "warning_closed",
    "needs_response",
    "under_review",
    "won",
    "lost",
]


class Dispute(Entity):
    id: str
    payment_id: str | None = None
    provider_id: str | None = None
    provider_dispute_id: str | None = Field(default=None, description="The provider's id of the dispute")
    amount: AmountOut | None = None
    raw_amount: RawAmount | None = None
    currency_code: str | None = None
    reason: str | None = Field(default=None, description="The card network's reason, in the provider's words")
    status: DisputeStatusName | None = Field(
        default=None, description="won, lost and warning_closed are final; the others are open"
    )
    evidence_due_by: datetime | None = None
    funds_withdrawn: bool | None = None
    funds_reinstated: bool | None = None
    data: dict[str, Any] | None = None
    evidence_submitted_at: datetime | None = None
    accepted_at: datetime | None = None
    closed_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class DisputeResponse(BaseModel):
    dispute: Dispute


class DisputeList(ListDocument):
    disputes: list[Dispute]


class SubmitDisputeEvidence(Body):
    evidence: JsonObject = Field(
        default_factory=dict,
        description="The evidence, in the provider's field names (Stripe: `customer_name`, "
        "`uncategorized_text`, ...)",
    )
    submit: bool = Field(
        default=False, description="Send it to the bank now (final); false saves it to complete later"
    )


__all__ = ["Dispute", "DisputeList", "DisputeResponse", "DisputeStatusName", "SubmitDisputeEvidence"]
