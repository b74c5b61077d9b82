"""Input coercion: what the module's public methods accept (mappings, pydantic models, Medusa's
one-or-many convention) turned into checked values, with Medusa's messages."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from paymod.domain.errors import InvalidDataError
from paymod.domain.money import AmountError, normalize_currency_code, to_amount
from paymod.providers.base import ProviderContext


def as_mapping(value: Any, what: str) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    if not isinstance(value, Mapping):
        raise InvalidDataError(f"{what} must be an object")
    return dict(value)


def batch(data: Any, what: str) -> tuple[bool, list[dict[str, Any]]]:
    """Medusa's calling convention: one object in, one out; a list in, a list out."""
    if isinstance(data, Mapping | BaseModel):
        return True, [as_mapping(data, what)]
    if isinstance(data, list | tuple):
        return False, [as_mapping(item, what) for item in data]
    raise InvalidDataError(f"{what} must be an object or a list of objects")


def required(data: Mapping[str, Any], entity: str, field: str) -> Any:
    value = data.get(field)
    if value is None or value == "":
        raise InvalidDataError(f"Value for {entity}.{field} is required, 'undefined' found")
    return value


def parse_amount(
    value: Any, field: str = "amount", *, positive: bool = False, signed: bool = False
) -> Decimal:
    """Parses an amount; `signed` leaves the sign to the domain rule (which has Medusa's message)."""
    try:
        amount = to_amount(value, field)
    except AmountError as exc:
        raise InvalidDataError(str(exc), code="invalid_amount") from None
    if signed:
        return amount
    if amount < 0 or (positive and amount == 0):
        raise InvalidDataError(f"{field} must be {'greater than 0' if positive else 'at least 0'}")
    return amount


def parse_currency(value: Any) -> str:
    try:
        return normalize_currency_code(value)
    except AmountError as exc:
        raise InvalidDataError(str(exc), code="invalid_currency_code") from None


def optional_object(data: Mapping[str, Any], field: str) -> dict[str, Any] | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidDataError(f"{field} must be an object")
    return dict(value)


def optional_text(data: Mapping[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is not None and not isinstance(value, str):
        raise InvalidDataError(f"{field} must be a string")
    return value


def provider_context(
    context: Mapping[str, Any] | None, idempotency_key: str | None, *, resumed: bool = False
) -> ProviderContext:
    context = dict(context or {})
    return ProviderContext(
        idempotency_key=context.pop("idempotency_key", None) or idempotency_key,
        customer=context.pop("customer", None),
        account_holder=context.pop("account_holder", None),
        extra=context,
        resumed=resumed,
    )


#: Longer ids than this are no provider's (Stripe's are under 70 characters) and would not fit an index.
MAX_WEBHOOK_ID_LENGTH = 255


def webhook_text(value: object, what: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidDataError(f"The webhook's {what} must be a string.", code="invalid_webhook")
    if len(value) > MAX_WEBHOOK_ID_LENGTH or not value.isprintable():
        raise InvalidDataError(
            f"The webhook's {what} must be at most {MAX_WEBHOOK_ID_LENGTH} printable characters.",
            code="invalid_webhook",
        )
    return value
