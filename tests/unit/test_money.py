"""Money: currency precision, half-up rounding, minor units and exact amount parsing (no I/O)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paymod.domain.money import (
    MAX_AMOUNT,
    AmountError,
    currency_codes,
    currency_precision,
    minor_unit,
    normalize_currency_code,
    raw_amount,
    round_amount,
    to_amount,
)

D = Decimal


# -- currency precision -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "digits"),
    [
        ("USD", 2),
        ("usd", 2),
        ("EUR", 2),
        ("eur", 2),
        ("JPY", 0),
        ("jpy", 0),
        ("KRW", 0),
        ("KWD", 3),
        ("kwd", 3),
        ("BHD", 3),
    ],
)
def test_currency_precision_follows_iso_4217(code: str, digits: int) -> None:
    assert currency_precision(code) == digits


@pytest.mark.parametrize("code", ["XYZ", "qqq", "ABC"])
def test_unknown_three_letter_codes_have_two_digits(code: str) -> None:
    assert currency_precision(code) == 2


@pytest.mark.parametrize(
    ("code", "unit"),
    [
        ("usd", D("0.01")),
        ("eur", D("0.01")),
        ("jpy", D(1)),
        ("krw", D(1)),
        ("kwd", D("0.001")),
        ("bhd", D("0.001")),
    ],
)
def test_minor_unit_is_one_unit_of_the_last_digit(code: str, unit: Decimal) -> None:
    assert minor_unit(code) == unit


def test_minor_unit_of_an_unknown_code_is_a_hundredth() -> None:
    assert minor_unit("xyz") == D("0.01")


# -- rounding -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "code", "expected"),
    [
        # half-up, not banker's rounding
        ("0.125", "usd", "0.13"),
        ("0.135", "usd", "0.14"),
        ("0.124999", "usd", "0.12"),
        ("200.129", "usd", "200.13"),
        ("87.957975", "usd", "87.96"),
        ("2.5", "jpy", "3"),
        ("3.5", "jpy", "4"),
        ("1000.4", "jpy", "1000"),
        ("1000.5", "jpy", "1001"),
        ("0.5", "krw", "1"),
        ("1.0005", "kwd", "1.001"),
        ("1.0004", "kwd", "1.000"),
        ("2.0025", "bhd", "2.003"),
        ("12", "usd", "12.00"),
        # ties go away from zero for negative amounts too
        ("-0.125", "usd", "-0.13"),
    ],
)
def test_round_amount_is_half_up_to_the_currency_precision(amount: str, code: str, expected: str) -> None:
    rounded = round_amount(D(amount), code)
    assert rounded == D(expected)
    assert -rounded.as_tuple().exponent == currency_precision(code)


def test_jpy_rounds_to_units_unlike_medusa() -> None:
    # Medusa 2.21 does not round zero-decimal currencies at all (reference 2.2); paymod does.
    assert round_amount(D("999.6"), "JPY") == D(1000)
    assert round_amount(D("999.6"), "jpy") == round_amount(D("1000.4"), "jpy")


CURRENCIES = st.sampled_from(["usd", "eur", "jpy", "krw", "kwd", "bhd", "xyz"])
AMOUNTS = st.decimals(
    min_value=D("-1e12"), max_value=D("1e12"), allow_nan=False, allow_infinity=False, places=8
)


@given(amount=AMOUNTS, code=CURRENCIES)
def test_rounding_is_idempotent_and_within_half_a_minor_unit(amount: Decimal, code: str) -> None:
    rounded = round_amount(amount, code)
    assert round_amount(rounded, code) == rounded
    assert abs(rounded - amount) <= minor_unit(code) / 2
    # the result is on the currency's grid
    assert rounded % minor_unit(code) == 0


@given(a=AMOUNTS, b=AMOUNTS, code=CURRENCIES)
def test_rounding_is_monotonic(a: Decimal, b: Decimal, code: str) -> None:
    low, high = sorted((a, b))
    assert round_amount(low, code) <= round_amount(high, code)


# -- to_amount ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, D(0)),
        (1, D(1)),
        (-5, D(-5)),
        (10**15 - 1, D(10**15 - 1)),
        ("12.50", D("12.5")),
        (" 3 ", D(3)),
        ("1e3", D(1000)),
        ("-0.01", D("-0.01")),
        ("87.957975", D("87.957975")),
        (D("1.10"), D("1.1")),
        (D("200.129"), D("200.129")),
        # floats go through their shortest repr, so 0.1 is exactly one tenth
        (0.1, D("0.1")),
        (0.3, D("0.3")),
        (1.1, D("1.1")),
        (87.96, D("87.96")),
        (1e-7, D("1e-7")),
        (100.0, D(100)),
        ({"value": "12.5", "precision": 20}, D("12.5")),
        ({"value": "87.957975", "precision": 20}, D("87.957975")),
        ({"value": 30, "precision": 20}, D(30)),
    ],
)
def test_to_amount_parses_exactly(value: object, expected: Decimal) -> None:
    parsed = to_amount(value)
    assert isinstance(parsed, Decimal)
    assert parsed == expected


def test_to_amount_float_is_not_the_binary_expansion() -> None:
    assert to_amount(0.1) != D(0.1)  # D(0.1) is 0.1000000000000000055511151231257827...
    assert to_amount(0.1) + to_amount(0.2) == D("0.3")


def test_to_amount_returns_whole_amounts_with_their_value() -> None:
    for value in ("50.00", D("50.00"), 50, 50.0):
        parsed = to_amount(value)
        assert parsed == 50
        assert parsed == parsed.to_integral_value()


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        float("nan"),
        float("inf"),
        float("-inf"),
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        D("NaN"),
        D("Infinity"),
        D("-Infinity"),
        "",
        "   ",
        "abc",
        "12abc",
        "1,000",
        "0x10",
        "1.2.3",
        "$5",
        b"12",
        [12],
        (12,),
        {"precision": 20},
        {"value": None, "precision": 20},
        {"value": "garbage", "precision": 20},
        {"value": True, "precision": 20},
        frozenset({1}),
        complex(1, 0),
        # too large: the integer part must stay well inside NUMERIC and providers' limits
        10**15,
        -(10**15),
        "1e15",
        "1e400",
        1e300,
        # beyond the decimal context's exponent limit: refused, not a decimal.Overflow
        D("1E+1000000"),
        "1e1000000",
        {"value": "1E+1000000", "precision": 20},
        {"value": "1e20", "precision": 20},
    ],
    ids=lambda value: f"{type(value).__name__}:{value!s:.24}",
)
def test_to_amount_refuses_what_is_not_a_finite_reasonable_number(value: object) -> None:
    with pytest.raises(AmountError):
        to_amount(value)


def test_amount_error_is_a_value_error_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"^capture amount "):
        to_amount("abc", "capture amount")
    with pytest.raises(AmountError, match="refund"):
        to_amount(None, "refund")


def test_max_amount_bound() -> None:
    assert to_amount(MAX_AMOUNT - D("0.01")) == MAX_AMOUNT - D("0.01")
    with pytest.raises(AmountError):
        to_amount(MAX_AMOUNT)


@given(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=D("-1e14"), max_value=D("1e14"), places=6)
)
def test_to_amount_round_trips_decimals_and_their_strings(value: Decimal) -> None:
    assert to_amount(value) == value
    assert to_amount(str(value)) == value
    assert to_amount(raw_amount(value)) == value


@given(st.floats(min_value=-1e14, max_value=1e14, allow_nan=False, allow_infinity=False))
def test_to_amount_of_a_float_is_its_shortest_repr(value: float) -> None:
    exponent = D(repr(value)).as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -20:
        # More than 20 decimal places is refused (it would overflow NUMERIC on PostgreSQL).
        with pytest.raises(AmountError, match="decimal places"):
            to_amount(value)
        return
    parsed = to_amount(value)
    assert parsed == D(repr(value))
    assert float(parsed) == value


def test_to_amount_refuses_more_than_twenty_decimal_places() -> None:
    assert to_amount("0." + "1" * 20) == D("0." + "1" * 20)
    for value in ("0." + "1" * 21, 1e-21, D("1E-21")):
        with pytest.raises(AmountError):
            to_amount(value)


# -- currency codes -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"), [("USD", "usd"), ("usd", "usd"), ("Jpy", "jpy"), (" kwd ", "kwd"), ("XOF", "xof")]
)
def test_normalize_currency_code_lower_cases(value: str, expected: str) -> None:
    assert normalize_currency_code(value) == expected


@pytest.mark.parametrize(
    "value", ["", "us", "usdd", "u d", "12a", "123", "üsd", "US$", None, 840, b"usd", ["usd"], True]
)
def test_normalize_currency_code_refuses_what_is_not_three_ascii_letters(value: object) -> None:
    with pytest.raises(AmountError):
        normalize_currency_code(value)


@pytest.mark.parametrize("value", ["xyz", "ABC", "dem", "hrk", "usx"])
def test_normalize_currency_code_refuses_codes_that_are_not_iso_4217_in_use(value: str) -> None:
    with pytest.raises(AmountError, match="ISO 4217"):
        normalize_currency_code(value)


def test_currency_codes_are_babels_iso_4217_codes_in_use() -> None:
    codes = currency_codes()
    assert {"usd", "eur", "jpy", "kwd", "bhd", "chf", "xof", "clf"} <= codes
    assert all(len(code) == 3 and code.islower() for code in codes)
    assert not {"xyz", "dem", "frf", "hrk"} & codes


# -- raw_amount ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "value"),
    [
        (D(100), "100"),
        (D("1E+2"), "100"),
        (D("12.50"), "12.5"),
        (D("87.957975"), "87.957975"),
        (D("0.0000001"), "0.0000001"),
        (D("0"), "0"),
        (D("0.00"), "0"),
        (D("-0"), "0"),
        (D("-12.30"), "-12.3"),
        (D("999999999999999.99"), "999999999999999.99"),
    ],
)
def test_raw_amount_is_medusas_bignumber_shape(amount: Decimal, value: str) -> None:
    assert raw_amount(amount) == {"value": value, "precision": 20}


@given(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=D("-1e14"), max_value=D("1e14"), places=10)
)
def test_raw_amount_value_is_plain_and_exact(amount: Decimal) -> None:
    raw = raw_amount(amount)
    assert raw["precision"] == 20
    text = raw["value"]
    assert isinstance(text, str)
    assert "E" not in text and "e" not in text
    assert D(text) == amount


def test_the_raw_amount_keeps_every_digit_of_a_35_digit_amount() -> None:
    amount = Decimal("999999999999999.12345678901234567890")
    assert raw_amount(amount) == {"value": "999999999999999.1234567890123456789", "precision": 20}
