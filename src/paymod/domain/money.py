"""Exact money: Decimal amounts and ISO 4217 precision (babel), never float."""

from __future__ import annotations

import re
from datetime import date
from decimal import MAX_PREC, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import lru_cache

from babel.core import get_global
from babel.numbers import get_currency_precision, get_territory_currencies

from paymod.domain.errors import AmountError as AmountError

# An amount's integer part stays well inside NUMERIC and every provider's limits.
MAX_DIGITS = 15
MAX_DECIMAL_PLACES = 20
MAX_AMOUNT = Decimal(10) ** MAX_DIGITS
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)


@lru_cache(maxsize=512)
def currency_precision(currency_code: str) -> int:
    """Decimal digits of a currency: USD 2, JPY 0, KWD 3, unknown codes 2."""
    return int(get_currency_precision(currency_code.upper()))


@lru_cache(maxsize=512)
def _quantum(currency_code: str) -> Decimal:
    return Decimal(1).scaleb(-currency_precision(currency_code))


def round_amount(amount: Decimal, currency_code: str) -> Decimal:
    """Rounds half-up to the currency's precision (JPY to units, unlike Medusa 2.21)."""
    return amount.quantize(_quantum(currency_code), rounding=ROUND_HALF_UP)


def minor_unit(currency_code: str) -> Decimal:
    """One minor unit: the refund guard's tolerance (USD 0.01, JPY 1, KWD 0.001)."""
    return _quantum(currency_code)


def to_amount(value: object, field: str = "amount") -> Decimal:
    """Parses an input amount exactly; floats go through their shortest repr, bools are refused."""
    if isinstance(value, bool) or value is None:
        raise AmountError(f"{field} must be a number")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float | str):
        text = str(value).strip()
        # Plain ASCII decimal notation only: Decimal() would also take "1_000" and non-Latin digits.
        if not _NUMBER.fullmatch(text):
            raise AmountError(f"{field} must be a number")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise AmountError(f"{field} must be a number") from None
    elif isinstance(value, dict) and "value" in value:
        # Medusa's raw BigNumber shape {"value": "12.5", "precision": 20}
        return to_amount(value["value"], field)
    else:
        raise AmountError(f"{field} must be a number")
    if not amount.is_finite():
        raise AmountError(f"{field} must be a finite number")
    if amount != 0 and amount.adjusted() >= MAX_DIGITS:
        raise AmountError(f"{field} is too large")
    if decimal_places(amount) > MAX_DECIMAL_PLACES:
        raise AmountError(f"{field} has more than {MAX_DECIMAL_PLACES} decimal places")
    # Whole amounts lose their trailing zeros ("50.00" -> 50), as Medusa's numbers do.
    return Decimal(int(amount)) if amount == amount.to_integral_value() else amount


@lru_cache(maxsize=1)
def currency_codes() -> frozenset[str]:
    """The ISO 4217 codes in use (lower-case, as Medusa stores them): every currency some territory
    uses today in babel's CLDR data, legal tender or not (USD, EUR, JPY, the funds codes such as
    CLF or USN, the supranational X codes). Withdrawn codes (DEM, HRK) are not among them."""
    today = date.today()
    codes: set[str] = set()
    for territory in get_global("territory_currencies"):
        codes.update(get_territory_currencies(territory, today, tender=True, non_tender=True))
    return frozenset(code.lower() for code in codes)


def decimal_places(amount: Decimal) -> int:
    """Decimal places of the value, whatever its spelling: `1.50` has one, `1.5E-3` four. (A value
    is then a multiple of 10^-places, which is what OpenAPI's `multipleOf` describes.)"""
    _, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0:
        return 0
    text = "".join(map(str, digits))
    if not text.strip("0"):
        return 0
    trailing_zeros = len(text) - len(text.rstrip("0"))
    return max(0, -exponent - trailing_zeros)


def normalize_currency_code(value: object) -> str:
    """Lower-cases a currency code, refusing what is not an ISO 4217 code in use."""
    if not isinstance(value, str):
        raise AmountError("Currency code needs to be a string")
    code = value.strip().lower()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise AmountError(f"Currency code {value!r} is not a 3-letter ISO 4217 code")
    if code not in currency_codes():
        raise AmountError(f"Currency code {value!r} is not an ISO 4217 currency code")
    return code


#: Wide enough to keep every digit: `normalize()` under the default 28 digits would round an amount of
#: 15 integer digits and 20 decimals.
_EXACT = Context(prec=MAX_PREC)


def exact_text(amount: Decimal) -> str:
    """The amount in plain decimal notation without trailing zeros, every digit kept: 49.90 → "49.9"."""
    return format(amount.normalize(_EXACT), "f") if amount != 0 else "0"


def raw_amount(amount: Decimal) -> dict[str, object]:
    """Medusa's raw BigNumber shape: the exact decimal string and a precision of 20."""
    return {"value": exact_text(amount), "precision": 20}
