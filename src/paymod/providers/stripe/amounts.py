"""Decimal amounts in major units <-> Stripe's integer amounts in the currency's smallest unit.

Stripe's currency exponents differ from ISO 4217 in places (MGA and VUV are zero-decimal at Stripe),
so the table is Stripe's (as in Medusa's provider), not babel's. Three-decimal currencies must be sent
as multiples of 10 (docs.stripe.com/currencies#three-decimal).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()  # noqa: SIM905
)
THREE_DECIMAL = frozenset("bhd iqd jod kwd omr tnd".split())  # noqa: SIM905


def multiplier(currency_code: str) -> int:
    """Smallest units per major unit at Stripe: 1 (JPY), 1000 (KWD) or 100."""
    code = currency_code.lower()
    if code in ZERO_DECIMAL:
        return 1
    if code in THREE_DECIMAL:
        return 1000
    return 100


def to_smallest_unit(amount: Decimal, currency_code: str) -> int:
    """The one conversion to Stripe's integer amount, rounding half up once.

    USD 10.005 -> 1001, JPY 100.5 -> 101, KWD 1.2345 -> 1230 (three-decimal currencies are rounded
    to a multiple of 10, half up, so Stripe never sees a last digit it refuses).
    """
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"amount must be a finite Decimal, got {amount!r}")
    if amount < 0:
        raise ValueError(f"amount must not be negative, got {amount}")
    factor = multiplier(currency_code)
    if factor == 1000:
        return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * 10
    return int((amount * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_smallest_unit(value: object, currency_code: str) -> Decimal:
    """Stripe's integer amount back to an exact Decimal in major units (1001 USD -> 10.01)."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise ValueError(f"Stripe amount must be an integer, got {value!r}")
    units = Decimal(value)
    if units != units.to_integral_value():
        raise ValueError(f"Stripe amount must be an integer, got {value!r}")
    return units / multiplier(currency_code)
