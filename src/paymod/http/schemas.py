"""Request and response bodies of the HTTP API, with the reference's field names.

Response models describe the documents for OpenAPI; routes render them with `paymod.http.json`, so
amounts go out as exact JSON numbers. With `?fields=` a client may ask for fewer fields, so only
`id` is required in an entity.
"""

from __future__ import annotations

import re
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

from paymod.domain.money import (
    MAX_AMOUNT,
    MAX_DECIMAL_PLACES,
    MAX_DIGITS,
    AmountError,
    currency_codes,
    to_amount,
)
from paymod.exact_json import MAX_JSON_NUMBER, plain

#: A decimal string in plain notation (no exponent, no minus sign, no spaces, `_` or non-ASCII
#: digits), less than 10^15, whose digits after the 20th decimal place are zeros. These patterns are
#: the whole rule for strings: the server checks a string against them before it reads the value.
_INTEGER = f"0*[0-9]{{1,{MAX_DIGITS}}}"
_FRACTION = f"[0-9]{{0,{MAX_DECIMAL_PLACES}}}0*"
AMOUNT_PATTERN = rf"^\+?(?:{_INTEGER}(?:\.{_FRACTION})?|\.[0-9]{{1,{MAX_DECIMAL_PLACES}}}0*)$"
#: The same, above 0: a non-zero digit before the point, or within the first 20 after it.
_NON_ZERO_FRACTION = "|".join(
    f"0{{{zeros}}}[1-9][0-9]{{0,{MAX_DECIMAL_PLACES - zeros - 1}}}0*" for zeros in range(MAX_DECIMAL_PLACES)
)
POSITIVE_AMOUNT_PATTERN = (
    rf"^\+?(?:0*[1-9][0-9]{{0,{MAX_DIGITS - 1}}}(?:\.{_FRACTION})?|0*\.(?:{_NON_ZERO_FRACTION}))$"
)
_AMOUNT_STRINGS = {True: re.compile(POSITIVE_AMOUNT_PATTERN), False: re.compile(AMOUNT_PATTERN)}
#: Numbers: what OpenAPI's multipleOf says of "at most 20 decimal places".
_STEP = Decimal(1).scaleb(-MAX_DECIMAL_PLACES)
_BOUNDS = (
    f"less than 10^{MAX_DIGITS} with at most {MAX_DECIMAL_PLACES} decimal places "
    '(a JSON number, or a decimal string in plain notation such as "49.90")'
)


def _free_json(value: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = plain(value)
    return result


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_amount", "{message}", {"message": message})


def _amount(value: object, info: ValidationInfo, *, positive: bool) -> Decimal:
    """Parses a request's amount with the domain's own parser, `to_amount` (one implementation),
    after checking a string against the documented pattern: a JSON number or a plain decimal string;
    booleans, objects, NaN, Infinity, `1_000`, `1e2` as a string, non-ASCII digits, surrounding
    spaces and amounts out of bounds are refused, naming the field."""
    field = info.field_name or "amount"
    if isinstance(value, str):
        if value != value.strip():
            raise _invalid("must not have spaces around the number")
        if not _AMOUNT_STRINGS[positive].fullmatch(value):
            try:
                parsed = to_amount(value, field)
            except AmountError:
                raise _invalid('must be a decimal number in plain notation (such as "49.90")') from None
            if "e" in value.lower():
                raise _invalid('must be in plain notation, without an exponent (such as "49.90")')
            if positive and parsed <= 0:
                raise _invalid("must be greater than 0")
            if value.startswith("-"):
                raise _invalid("must be greater than or equal to 0, without a sign")
            raise _invalid(
                f"must be less than 10^{MAX_DIGITS} with at most {MAX_DECIMAL_PLACES} decimal places, "
                'in plain notation (such as "49.90")'
            )
    elif not isinstance(value, int | float | Decimal):
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
                {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "exclusiveMaximum": int(MAX_AMOUNT),
                    "multipleOf": float(_STEP),
                },
                {"type": "string", "pattern": POSITIVE_AMOUNT_PATTERN},
            ],
            "description": f"A positive amount in the currency's major unit, {_BOUNDS}.",
            "examples": [49.9],
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
                {
                    "type": "number",
                    "minimum": 0,
                    "exclusiveMaximum": int(MAX_AMOUNT),
                    "multipleOf": float(_STEP),
                },
                {"type": "string", "pattern": AMOUNT_PATTERN},
            ],
            "description": f"An amount in the currency's major unit, {_BOUNDS}.",
            "examples": [49.9],
        }
    ),
]
#: An amount in a response: always an exact JSON number.
AmountOut = Annotated[Decimal, WithJsonSchema({"type": "number"})]
NullableAmountOut = Annotated[
    Decimal | None, WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "null"}]})
]


def _currency_code(value: object) -> str:
    if isinstance(value, str) and value in CURRENCY_CODE_SPELLINGS:
        return value.lower()
    raise PydanticCustomError(
        "invalid_currency_code",
        "'{value}' is not an ISO 4217 currency code (lower- or upper-case, such as usd or EUR)",
        {"value": value if isinstance(value, str) else type(value).__name__},
    )


#: The codes a request may spell: ISO 4217 codes in use, in lower or upper case (stored lower-case).
CURRENCY_CODE_SPELLINGS = tuple(sorted(currency_codes())) + tuple(sorted(c.upper() for c in currency_codes()))
CurrencyCode = Annotated[
    str,
    PlainValidator(_currency_code),
    WithJsonSchema(
        {
            "type": "string",
            "enum": list(CURRENCY_CODE_SPELLINGS),
            "description": "An ISO 4217 currency code in use, lower- or upper-case (kept lower-case)",
            "examples": ["usd"],
        }
    ),
]
#: RFC 3339, as OpenAPI's `date-time` format says: a date, a time and a zone (`Z` or an offset).
_RFC_3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _date_time(value: object) -> datetime:
    if isinstance(value, str) and _RFC_3339.fullmatch(value):
        try:
            return datetime.fromisoformat(value.upper())
        except ValueError:
            pass
    raise PydanticCustomError(
        "invalid_date_time", "must be an RFC 3339 date-time with a zone, such as 2026-11-29T10:00:00Z", {}
    )


#: A moment in a query: pydantic alone would also read `0.5` as seconds since 1970.
DateTime = Annotated[
    datetime, PlainValidator(_date_time), WithJsonSchema({"type": "string", "format": "date-time"})
]
#: Free-form JSON; `describe_request_strings` documents what it may hold.
JsonObject = Annotated[dict[str, Any], AfterValidator(_free_json)]
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
    refund_reason_id: Id | None = Field(
        default=None, description="A refund reason's id (`refr_...`) or its code (`pricing_error`)"
    )
    note: str | None = Field(default=None, max_length=10_000)


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


# -- what the OpenAPI document says of every string a request carries ---------------------------------
#: No NUL character: PostgreSQL cannot store one, so the server refuses it anywhere in a request.
NO_NUL = "^[^\\x00]*$"
_JSON_VALUE = "#/components/schemas/JsonValue"
_JSON_OBJECT = "#/components/schemas/JsonObject"
#: Free-form JSON (metadata, data, context): any JSON without NUL characters, numbers within a
#: double's range (they are kept as doubles), nested at most 32 levels.
JSON_COMPONENTS: dict[str, dict[str, Any]] = {
    "JsonValue": {
        "description": "Any JSON value: strings and keys without NUL characters, numbers within a "
        "double's range, at most 32 levels deep",
        "anyOf": [
            {"type": "null"},
            {"type": "boolean"},
            {"type": "number", "minimum": -MAX_JSON_NUMBER, "maximum": MAX_JSON_NUMBER},
            {"type": "string", "pattern": NO_NUL},
            {"type": "array", "items": {"$ref": _JSON_VALUE}},
            {"$ref": _JSON_OBJECT},
        ],
    },
    "JsonObject": {
        "description": "A free-form JSON object (at most 32 levels deep)",
        "type": "object",
        "propertyNames": {"pattern": NO_NUL},
        "additionalProperties": {"$ref": _JSON_VALUE},
    },
}


def _request_strings_have_no_nul(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _request_strings_have_no_nul(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "string" and not {"pattern", "enum", "const", "format"} & node.keys():
        node["pattern"] = NO_NUL
    if node.get("additionalProperties") is True:
        node["additionalProperties"] = {"$ref": _JSON_VALUE}
        node["propertyNames"] = {"pattern": NO_NUL}
    for value in node.values():
        _request_strings_have_no_nul(value)


def _refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["$ref"].rsplit("/", 1)[1]} if isinstance(node.get("$ref"), str) else set()
    return found.union(*(_refs(value) for value in node.values()))


def describe_request_strings(schema: dict[str, Any]) -> None:
    """Says in the OpenAPI document what the server refuses in any request: a NUL character in a
    path, query or body string or key (`paymod.exact_json.check_text`), and free-form JSON beyond
    `JSON_COMPONENTS`. Applied to parameters and to the schemas request bodies use (not responses)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(JSON_COMPONENTS)
    pending: set[str] = set()
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                _request_strings_have_no_nul(parameter.get("schema"))
            body = operation.get("requestBody")
            if body is not None:
                _request_strings_have_no_nul(body)
                pending |= _refs(body)
    seen: set[str] = set(JSON_COMPONENTS)
    while pending:
        name = pending.pop()
        if name in seen or name not in components:
            continue
        seen.add(name)
        _request_strings_have_no_nul(components[name])
        pending |= _refs(components[name])
