"""Decimal amounts in major units <-> Stripe's integer amounts in the currency's smallest unit.

Stripe's currency exponents differ from ISO 4217 (babel) in places, so the tables are Stripe's
(docs.stripe.com/currencies, "Specify amounts in API requests"), not babel's:

- zero-decimal: the amount as it is (500 JPY -> 500). MGA and VUV are zero-decimal at Stripe.
- ISK and UGX ("special cases"): zero-decimal currencies that Stripe still takes as two-decimal values
  "where the decimal amount is always 00" (5 UGX -> 500), and "you can't charge fractions" of them;
  Stripe refuses other values (`invalid_charge_amount_no_decimal_compatible`).
- three-decimal (BHD, JOD, KWD, OMR, TND): x1000, and Stripe requires "the least-significant (last)
  digit to be 0" (5.12 KWD -> 5120; 5.124 KWD cannot be charged).
- HUF and TWD are zero-decimal at Stripe for payouts only: "you can charge two-decimal amounts"
  (x100, as every other currency).

An amount of ISK, UGX or a three-decimal currency that Stripe cannot represent is refused here, with
`InvalidDataError(code="invalid_amount")`, before any call: rounding it would charge or refund
something else than what paymod books. Other currencies keep rounding half up once to their smallest
unit (USD 10.005 -> 1001, JPY 100.5 -> 101).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from paymod.domain.errors import InvalidDataError

ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf vnd vuv xaf xof xpf".split()  # noqa: SIM905
)
#: Zero-decimal in fact, two-decimal in Stripe's API: whole units only, sent x100.
WHOLE_UNITS_AS_TWO_DECIMALS = frozenset({"isk", "ugx"})
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())  # noqa: SIM905

INVALID_AMOUNT = "invalid_amount"


def multiplier(currency_code: str) -> int:
    """Smallest units per major unit at Stripe: 1 (JPY), 1000 (KWD) or 100 (USD, ISK, UGX)."""
    code = currency_code.lower()
    if code in ZERO_DECIMAL:
        return 1
    if code in THREE_DECIMAL:
        return 1000
    return 100


def check_amount(amount: Decimal, currency_code: str, what: str = "amount") -> None:
    """Raises `InvalidDataError(code="invalid_amount")` when Stripe cannot charge `amount` exactly in
    this currency (ISK/UGX fractions, a third decimal other than 0); other currencies always pass."""
    code = currency_code.lower()
    if code in WHOLE_UNITS_AS_TWO_DECIMALS and amount != amount.to_integral_value():
        raise InvalidDataError(
            f"Stripe cannot charge {amount} {code.upper()} ({what}): {code.upper()} amounts must be whole "
            f"units (Stripe takes {code.upper()} as a two-decimal value whose decimals are always 00, "
            "and refuses fractions: docs.stripe.com/currencies#special-cases)",
            code=INVALID_AMOUNT,
        )
    if code in THREE_DECIMAL and amount * 100 != (amount * 100).to_integral_value():
        raise InvalidDataError(
            f"Stripe cannot charge {amount} {code.upper()} ({what}): {code.upper()} is a three-decimal "
            "currency whose last decimal must be 0 at Stripe, so amounts must be multiples of 0.01 "
            "(docs.stripe.com/currencies#three-decimal)",
            code=INVALID_AMOUNT,
        )


def to_smallest_unit(amount: Decimal, currency_code: str, what: str = "amount") -> int:
    """The one conversion to Stripe's integer amount.

    USD 10.005 -> 1001 and JPY 100.5 -> 101 (half up, once); UGX 5 -> 500, ISK 5 -> 500,
    KWD 1.23 -> 1230; UGX 5.5, ISK 0.5 and KWD 1.234 raise `InvalidDataError` (`check_amount`).
    """
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"amount must be a finite Decimal, got {amount!r}")
    if amount < 0:
        raise ValueError(f"amount must not be negative, got {amount}")
    check_amount(amount, currency_code, what)
    return int((amount * multiplier(currency_code)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_smallest_unit(value: object, currency_code: str) -> Decimal:
    """Stripe's integer amount back to an exact Decimal in major units (1001 USD -> 10.01, 500 UGX -> 5)."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise ValueError(f"Stripe amount must be an integer, got {value!r}")
    units = Decimal(value)
    if units != units.to_integral_value():
        raise ValueError(f"Stripe amount must be an integer, got {value!r}")
    return units / multiplier(currency_code)
