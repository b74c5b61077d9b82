"""The API's JSON wire format (`paymod.exact_json.dumps`): amounts are exact numbers, text is UTF-8 with
JSON's escapes, dates are ISO 8601 strings, and the output is compact."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum

import pytest

from paymod.exact_json import dumps, loads


class Colour(Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("49.90"), b"49.9"),
        (Decimal("5000"), b"5000"),
        (Decimal("5E+3"), b"5000"),
        (Decimal("0.00"), b"0"),
        (Decimal("-0"), b"0"),
        (Decimal("0.000000000000000000001"), b"0.000000000000000000001"),
        (Decimal("999999999999999.1234567890"), b"999999999999999.123456789"),
        (12, b"12"),
        (1.5, b"1.5"),
        (True, b"true"),
        (None, b"null"),
        (Colour.RED, b'"red"'),
        ("caf\u00e9 \u2603", '"caf\u00e9 \u2603"'.encode()),
        (
            'quote " backslash \\ newline \n tab \t nul \x00',
            b'"quote \\" backslash \\\\ newline \\n tab \\t nul \\u0000"',
        ),
        (datetime(2026, 12, 7, 15, 38, 19, 358242, tzinfo=UTC), b'"2026-12-07T15:38:19.358242+00:00"'),
        (date(2026, 12, 7), b'"2026-12-07"'),
        (
            {"amount": Decimal("10.50"), "raw": {"value": "10.5", "precision": 20}, "\u00e9": [1, "a"]},
            '{"amount":10.5,"raw":{"value":"10.5","precision":20},"\u00e9":[1,"a"]}'.encode(),
        ),
        ((1, 2), b"[1,2]"),
    ],
)
def test_wire_format(value: object, expected: bytes) -> None:
    assert dumps(value) == expected


def test_text_matches_the_standard_library() -> None:
    """Strings and keys are escaped exactly as `json.dumps(..., ensure_ascii=False)` escapes them."""
    texts = ["", "plain", "\u2028\u2029", "\x7f\x1f", "emoji \U0001f600", "<script>&amp;</script>", "/"]
    for text in texts:
        document = {text: text}
        assert dumps(document) == json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def test_round_trip_keeps_amounts_exact() -> None:
    document = {"amount": Decimal("1234567890.1234567890123456")}
    assert loads(dumps(document)) == {"amount": Decimal("1234567890.1234567890123456")}


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), float("nan"), float("inf")])
def test_non_finite_numbers_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        dumps({"amount": value})


def test_an_amount_with_more_digits_than_decimals_default_precision_goes_out_whole() -> None:
    # 15 integer digits and 20 decimals are a valid amount: no digit may be lost on the wire.
    amount = Decimal("999999999999999.12345678901234567890")
    assert dumps({"amount": amount}) == b'{"amount":999999999999999.1234567890123456789}'
    assert Decimal(json.loads(dumps(amount), parse_float=Decimal)) == amount
