"""Provider events received (the inbox) and the endpoints paymod sends its events to."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
)

from paymod.http.schemas.base import Body, Entity, ListDocument, NullableAmountOut

#: An event name an endpoint subscribes to (`payment.captured`), or `*` for every event.
EventName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^(\*|[a-z0-9_-]+(\.[a-z0-9_-]+)+)$")]


#: Control characters and every character a regex engine may count as a space, spelled out: `\s`
#: differs between ECMA-262 (OpenAPI's), Python's and pydantic's engines (U+0085, U+FEFF, U+001D).
_NOT_IN_URL = r"\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


class CreateWebhookEndpoint(Body):
    url: str = Field(
        max_length=2048,
        pattern=rf"^https?://[^{_NOT_IN_URL}/?#]+(?:[/?#][^{_NOT_IN_URL}]*)?$",
        description="Where events are POSTed (http or https)",
        examples=["https://shop.example/paymod-events"],
    )
    events: list[EventName] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        max_length=100,
        description="Event names to receive (`payment.captured`, ...); `*` for all",
    )
    description: str | None = Field(default=None, max_length=10_000)


class WebhookEvent(Entity):
    """A provider's event as paymod stored it (its raw body and headers only with `fields=+payload`)."""

    id: str
    provider_id: str | None = None
    event_id: str | None = Field(default=None, description="The provider's event id (the dedupe key)")
    action: str | None = None
    session_id: str | None = None
    amount: NullableAmountOut = None
    status: Literal["pending", "processed", "ignored", "failed"] | None = None
    attempts: int | None = None
    last_error: str | None = None
    available_at: datetime | None = Field(default=None, description="When it is (next) due")
    processed_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    payload: dict[str, Any] | None = Field(default=None, description="The verified raw body and headers")


class WebhookEventList(ListDocument):
    webhook_events: list[WebhookEvent]


class WebhookEventResponse(BaseModel):
    webhook_event: WebhookEvent


class WebhookEndpoint(Entity):
    id: str
    url: str
    events: list[str]
    enabled: bool
    description: str | None = None
    failing_since: datetime | None = Field(
        default=None, description="since when every delivery failed (null while it works)"
    )
    consecutive_failures: int = Field(default=0, description="deliveries that failed in a row")
    retry_at: datetime | None = Field(
        default=None, description="when a failing endpoint is tried again (it backs off as a whole)"
    )
    disabled_at: datetime | None = Field(
        default=None, description="when paymod disabled it, after it failed for too long"
    )
    disabled_reason: str | None = None
    created_at: datetime
    updated_at: datetime


class CreatedWebhookEndpoint(WebhookEndpoint):
    secret: str = Field(
        description="Signs every delivery (`Paymod-Signature`); returned only now, keep it to verify"
    )


class WebhookEndpointResponse(BaseModel):
    webhook_endpoint: CreatedWebhookEndpoint


class WebhookEndpointList(ListDocument):
    webhook_endpoints: list[WebhookEndpoint]


class WebhookReceived(BaseModel):
    received: Literal[True]
    action: str = Field(description="What the provider reported (`authorized`, `captured`, ...)")
    id: str = Field(
        description="The stored event (`whev_...`), processed by a worker; empty when the event asks "
        "nothing of paymod and carries no event id to dedupe on (then it is not stored)"
    )
    duplicate: bool = Field(description="true when this event was already stored: it is not stored again")


__all__ = [
    "CreateWebhookEndpoint",
    "CreatedWebhookEndpoint",
    "EventName",
    "WebhookEndpoint",
    "WebhookEndpointList",
    "WebhookEndpointResponse",
    "WebhookEvent",
    "WebhookEventList",
    "WebhookEventResponse",
    "WebhookReceived",
]
