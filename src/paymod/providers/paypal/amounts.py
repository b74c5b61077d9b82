"""Decimal amounts <-> PayPal's money values (`{"currency_code": "USD", "value": "10.00"}`).

PayPal takes amounts as decimal strings in the currency's major unit, and only in the currencies its
REST API lists (developer.paypal.com/api/rest/reference/currency-codes): "up to two decimal places"
for most, none for HUF, JPY and TWD ("this currency does not support decimals. If you pass a decimal
amount, an error occurs"). paymod keeps HUF and TWD at ISO 4217's two decimals, so 100.50 HUF is a
valid paymod amount that PayPal cannot charge: it is refused here with
`InvalidDataError(code="invalid_amount")` before any call, as is any fraction of JPY. Other currencies
round half up once to two decimals (USD 10.005 -> "10.01"), as paymod rounds its own amounts.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from paymod.domain.errors import InvalidDataError

#: The currencies PayPal's REST API accepts (its currency-codes reference).
SUPPORTED = frozenset(
    "AUD BRL CAD CNY CZK DKK EUR HKD HUF ILS JPY MYR MXN TWD NZD NOK PHP PLN GBP SGD SEK CHF THB USD".split()  # noqa: SIM905
)
#: "This currency does not support decimals."
NO_DECIMALS = frozenset({"HUF", "JPY", "TWD"})

INVALID_AMOUNT = "invalid_amount"


def check_currency(currency_code: str) -> str:
    code = currency_code.upper()
    if code not in SUPPORTED:
        raise InvalidDataError(
            f"PayPal does not support the currency {code or '(none)'} "
            f"(supported: {', '.join(sorted(SUPPORTED))})",
            code="invalid_currency",
        )
    return code


def to_value(amount: Decimal, currency_code: str, what: str = "amount") -> str:
    """The one conversion to PayPal's `value`: USD 10 -> "10.00", USD 10.005 -> "10.01", JPY 500 -> "500";
    JPY 500.5 and HUF 100.50 raise `InvalidDataError(code="invalid_amount")`."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"amount must be a finite Decimal, got {amount!r}")
    if amount < 0:
        raise ValueError(f"amount must not be negative, got {amount}")
    code = check_currency(currency_code)
    if code in NO_DECIMALS:
        if amount != amount.to_integral_value():
            raise InvalidDataError(
                f"PayPal cannot charge {amount} {code} ({what}): {code} amounts must be whole units at "
                "PayPal, which does not support decimals for HUF, JPY and TWD",
                code=INVALID_AMOUNT,
            )
        return str(amount.quantize(Decimal(1)))
    return str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def money(amount: Decimal, currency_code: str, what: str = "amount") -> dict[str, str]:
    return {"currency_code": check_currency(currency_code), "value": to_value(amount, currency_code, what)}


def from_money(value: Any) -> Decimal | None:
    """A PayPal money object's value as an exact Decimal, None when absent or malformed."""
    if not isinstance(value, dict):
        return None
    try:
        found = Decimal(str(value.get("value")))
    except (InvalidOperation, ValueError):
        return None
    return found if found.is_finite() else None
