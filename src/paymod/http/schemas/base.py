"""What every body shares: amounts (exact, with the patterns OpenAPI shows), currency codes, dates,
free-form JSON, ids, and the strict `Body` and `Entity` bases."""

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
from paymod.exact_json import plain

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


class Entity(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RawAmount(Entity):
    value: str
    precision: int


class Timestamped(Entity):
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None


class ListDocument(BaseModel):
    count: int
    offset: int
    limit: int


class Deleted(BaseModel):
    id: str
    object: str
    deleted: Literal[True]


__all__ = [
    "AMOUNT_PATTERN",
    "CURRENCY_CODE_SPELLINGS",
    "POSITIVE_AMOUNT_PATTERN",
    "Amount",
    "AmountOut",
    "Body",
    "CurrencyCode",
    "DateTime",
    "Deleted",
    "Entity",
    "Id",
    "JsonObject",
    "ListDocument",
    "NullableAmountOut",
    "PositiveAmount",
    "RawAmount",
    "Timestamped",
]
