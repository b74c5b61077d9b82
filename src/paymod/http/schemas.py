"""Request and response bodies of the HTTP API, with the reference's field names.

Response models describe the documents for OpenAPI; routes render them with `paymod.http.json`, so
amounts go out as exact JSON numbers. With `?fields=` a client may ask for fewer fields, so only
`id` is required in an entity.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from paymod.domain.money import MAX_AMOUNT, MAX_DECIMAL_PLACES, MAX_DIGITS, AmountError, to_amount
from paymod.http.json import plain

#: A decimal string as `to_amount` reads one: ASCII digits, an optional sign, fraction and exponent,
#: nothing around it (no spaces, no `_`, no other digits, no NaN or Infinity).
AMOUNT_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_BOUNDS = (
    f"less than 10^{MAX_DIGITS} with at most {MAX_DECIMAL_PLACES} decimal places "
    "(a number or a decimal string)"
)


def _free_json(value: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = plain(value)
    return result


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_amount", "{message}", {"message": message})


def _amount(value: object, info: ValidationInfo, *, positive: bool) -> Decimal:
    """Parses a request's amount with the domain's own parser, `to_amount` (one implementation):
    a JSON number or a decimal string; booleans, objects, NaN, Infinity, `1_000`, non-ASCII digits,
    surrounding spaces and amounts out of bounds are refused, naming the field."""
    field = info.field_name or "amount"
    if isinstance(value, str) and value != value.strip():
        raise _invalid("must not have spaces around the number")
    if not isinstance(value, int | float | Decimal | str):
        # `to_amount` also reads Medusa's raw {"value": ...} shape: not part of the HTTP API.
        raise _invalid("must be a number or a decimal string")
    try:
        amount = to_amount(value, field)
    except AmountError as exc:
        raise _invalid(str(exc).removeprefix(f"{field} ")) from None
    if positive and amount <= 0:
        raise _invalid("must be greater than 0")
    if not positive and amount < 0:
        raise _invalid("must be greater than or equal to 0")
    return amount


def _positive_amount(value: object, info: ValidationInfo) -> Decimal:
    return _amount(value, info, positive=True)


def _non_negative_amount(value: object, info: ValidationInfo) -> Decimal:
    return _amount(value, info, positive=False)


#: An amount in a request: a JSON number or a decimal string, > 0.
PositiveAmount = Annotated[
    Decimal,
    PlainValidator(_positive_amount),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": int(MAX_AMOUNT)},
                {"type": "string", "pattern": AMOUNT_PATTERN},
            ],
            "description": f"A positive amount in the currency's major unit, {_BOUNDS}.",
        }
    ),
]
#: An amount in a request that may be 0 (a collection for nothing).
Amount = Annotated[
    Decimal,
    PlainValidator(_non_negative_amount),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "exclusiveMaximum": int(MAX_AMOUNT)},
                {"type": "string", "pattern": AMOUNT_PATTERN},
            ],
            "description": f"An amount in the currency's major unit, {_BOUNDS}.",
        }
    ),
]
#: An amount in a response: always an exact JSON number.
AmountOut = Annotated[Decimal, WithJsonSchema({"type": "number"})]
NullableAmountOut = Annotated[
    Decimal | None, WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "null"}]})
]
JsonObject = Annotated[dict[str, Any], AfterValidator(_free_json)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$", examples=["usd"])]
Id = Annotated[str, Field(min_length=1, max_length=255)]


class Body(BaseModel):
    """Request bodies are strict, as Medusa's are: an unknown field is an error naming it."""

    model_config = ConfigDict(extra="forbid")


# -- request bodies ---------------------------------------------------------------------------
class CreatePaymentCollection(Body):
    amount: Amount
    currency_code: CurrencyCode
    metadata: JsonObject | None = None


class UpdatePaymentCollection(Body):
    amount: Amount | None = None
    currency_code: CurrencyCode | None = None
    metadata: JsonObject | None = None


class CreatePaymentSession(Body):
    provider_id: Id
    data: JsonObject | None = None
    context: JsonObject | None = None


class MarkAsPaid(Body):
    provider_id: Id | None = None


class AuthorizePaymentCollection(Body):
    session_id: Id | None = None
    context: JsonObject | None = None


class CapturePayment(Body):
    amount: PositiveAmount | None = None


class RefundPayment(Body):
    amount: PositiveAmount | None = None
    refund_reason_id: Id | None = None
    note: str | None = Field(default=None, max_length=10_000)


class CreateRefundReason(Body):
    label: str = Field(min_length=1, max_length=1000)
    code: str = Field(min_length=1, max_length=1000)
    description: str | None = Field(default=None, max_length=10_000)
    metadata: JsonObject | None = None


class UpdateRefundReason(Body):
    label: str | None = Field(default=None, min_length=1, max_length=1000)
    code: str | None = Field(default=None, min_length=1, max_length=1000)
    description: str | None = Field(default=None, max_length=10_000)
    metadata: JsonObject | None = None


class RegionPaymentProviders(Body):
    add: list[Id] = Field(default_factory=list, max_length=100)
    remove: list[Id] = Field(default_factory=list, max_length=100)


class Customer(BaseModel):
    """The merchant's customer the holder belongs to (its id keys the provider's record)."""

    model_config = ConfigDict(extra="allow")

    id: Id
    email: str | None = Field(default=None, max_length=1000)


class CreateAccountHolder(Body):
    provider_id: Id
    customer: Customer
    metadata: JsonObject | None = None


class SavePaymentMethod(Body):
    """Saves a payment method at the provider (Stripe: a SetupIntent for the customer)."""

    data: JsonObject = Field(default_factory=dict)


class StoreSavePaymentMethod(SavePaymentMethod):
    customer_id: Id | None = Field(
        default=None,
        description="only when the server trusts it (`[store] trust_customer_id`): the customer the account "
        "holder belongs to. Otherwise the request carries an ephemeral key for the holder.",
    )


class CreateEphemeralKey(Body):
    expires_in: int | None = Field(
        default=None, ge=60, le=86_400, description="seconds the key lives (default 3600, at most 86400)"
    )


class EphemeralKey(BaseModel):
    id: str
    object: Literal["ephemeral_key"] = "ephemeral_key"
    account_holder_id: str
    #: shown once: only this response carries it
    secret: str
    expires_at: datetime


class EphemeralKeyResponse(BaseModel):
    ephemeral_key: EphemeralKey


class UpdateAccountHolder(Body):
    customer: Customer | None = None
    metadata: JsonObject | None = None


#: An event name an endpoint subscribes to (`payment.captured`), or `*` for every event.
EventName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^(\*|[a-z0-9_-]+(\.[a-z0-9_-]+)+)$")]


class CreateWebhookEndpoint(Body):
    url: str = Field(
        max_length=2048,
        pattern=r"^https?://[^\s/?#]+(?:[/?#]\S*)?$",
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


# -- entities ---------------------------------------------------------------------------------
class Entity(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RawAmount(Entity):
    value: str
    precision: int


class _Timestamps(Entity):
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None


class PaymentProvider(Entity):
    id: str
    is_enabled: bool | None = None


class RefundReason(_Timestamps):
    id: str
    label: str | None = None
    code: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None


class Capture(_Timestamps):
    id: str
    amount: AmountOut | None = None
    raw_amount: RawAmount | None = None
    payment_id: str | None = None
    created_by: str | None = None
    metadata: dict[str, Any] | None = None


class Refund(_Timestamps):
    id: str
    amount: AmountOut | None = None
    raw_amount: RawAmount | None = None
    payment_id: str | None = None
    refund_reason_id: str | None = None
    note: str | None = None
    created_by: str | None = None
    metadata: dict[str, Any] | None = None
    refund_reason: RefundReason | None = None


class PaymentSession(_Timestamps):
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


class Payment(_Timestamps):
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
    payment_collection_id: str | None = None
    payment_session_id: str | None = None
    captures: list[Capture] | None = None
    refunds: list[Refund] | None = None
    payment_session: PaymentSession | None = None


class PaymentCollection(_Timestamps):
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


class AccountHolder(_Timestamps):
    id: str
    provider_id: str | None = None
    external_id: str | None = None
    email: str | None = None
    customer_id: str | None = None
    data: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


# -- response documents -----------------------------------------------------------------------
class _List(BaseModel):
    count: int
    offset: int
    limit: int


class PaymentCollectionResponse(BaseModel):
    payment_collection: PaymentCollection


class PaymentCollectionList(_List):
    payment_collections: list[PaymentCollection]


class PaymentResponse(BaseModel):
    payment: Payment


class PaymentList(_List):
    payments: list[Payment]


class PaymentProviderList(_List):
    payment_providers: list[PaymentProvider]


class RefundReasonResponse(BaseModel):
    refund_reason: RefundReason


class RefundReasonList(_List):
    refund_reasons: list[RefundReason]


class AccountHolderResponse(BaseModel):
    account_holder: AccountHolder


class AccountHolderList(_List):
    account_holders: list[AccountHolder]


class PaymentMethod(BaseModel):
    id: str
    provider_id: str
    data: dict[str, Any] | None = None


class PaymentMethodList(_List):
    payment_methods: list[PaymentMethod]


class PaymentMethodResponse(BaseModel):
    payment_method: PaymentMethod


class RegionPaymentProvidersResponse(BaseModel):
    region_id: str
    payment_providers: list[PaymentProvider]


class Deleted(BaseModel):
    id: str
    object: str
    deleted: Literal[True]


class Authorization(BaseModel):
    """The checkout's answer: the payment, or the session when the client must act first."""

    payment_collection: PaymentCollection
    payment: Payment | None = None
    payment_session: PaymentSession | None = None
    action_required: bool = Field(
        description="true when the provider needs the customer to act (e.g. 3-D Secure): "
        "`payment_session.data` says what to do; authorize again afterwards"
    )


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


class WebhookEventList(_List):
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


class WebhookEndpointList(_List):
    webhook_endpoints: list[WebhookEndpoint]


class WebhookReceived(BaseModel):
    received: Literal[True]
    action: str = Field(description="What the provider reported (`authorized`, `captured`, ...)")
    id: str = Field(
        description="The stored event (`whev_...`), processed by a worker; empty when the event asks "
        "nothing of paymod and carries no event id to dedupe on (then it is not stored)"
    )
    duplicate: bool = Field(description="true when this event was already stored: it is not stored again")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unreachable"]
