"""Amounts in request bodies are parsed by the domain's parser (`to_amount`), and the OpenAPI schema
says exactly which strings it takes: what the domain refuses is a 400 `invalid_data` naming the
field, never a 500, and nothing is written."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import httpx

from e2e.support import ADMIN, Api, amounts, json_of

# Raw JSON for the amount: numbers the domain refuses, and strings it does not read as a number.
REFUSED = [
    '"1_000"',
    '"\uff11\uff10"',  # full-width digits
    '"\u0661\u0660"',  # Arabic-Indic digits
    '"NaN"',
    '"Infinity"',
    '"-Infinity"',
    '"1e400"',
    '"0x10"',
    '" 10 "',  # decided: no spaces around the number (the schema's pattern says so)
    '"10 "',
    '"\\t10"',
    '"10\\n"',
    '""',
    '"."',
    '"1,5"',
    '"ten"',
    "true",
    "false",
    "[10]",
    '{"value": "10", "precision": 20}',
    "1e400",
    "1E+15",
    "1000000000000000",
    "0.000000000000000000001",  # 21 decimal places
    '"-5"',
    # Strings are plain decimal notation (the schema's pattern can say exactly which; with an
    # exponent no pattern can bound the value): numbers may use an exponent, strings may not.
    '"1e1"',
    '"2.5E0"',
    '"-0"',
]
# Refused by the JSON parser itself (not JSON numbers): still a 400 `invalid_data`.
NOT_JSON = ["NaN", "Infinity", "-Infinity", "0x10", "1_000", "+1"]
# Accepted, with what they are worth.
ACCEPTED = [
    ("10", Decimal(10)),
    ("10.5", Decimal("10.5")),
    ('"10.50"', Decimal("10.5")),
    ('"7"', Decimal(7)),
    ('"+3"', Decimal(3)),
    ('".5"', Decimal("0.5")),
    ('"4."', Decimal(4)),
    ("1E1", Decimal(10)),
    ("999999999999999", Decimal("999999999999999")),
    ('"0.10"', Decimal("0.1")),
]


def _post(client: httpx.AsyncClient, path: str, body: str) -> Any:
    return client.post(path, content=body.encode(), headers={**ADMIN, "content-type": "application/json"})


def _assert_refused(response: httpx.Response, body: str) -> None:
    assert response.status_code == 400, (body, response.text)
    error = json_of(response)
    assert error["type"] == "invalid_data", (body, error)
    assert error["message"].startswith(("amount: ", "body: invalid JSON")), (body, error)


def _assert_names_the_amount(response: httpx.Response, body: str) -> None:
    _assert_refused(response, body)
    assert json_of(response)["message"].startswith("amount: "), (body, json_of(response))


async def test_collection_create_refuses_what_the_domain_refuses(client: httpx.AsyncClient) -> None:
    for raw in REFUSED:
        body = f'{{"amount": {raw}, "currency_code": "usd"}}'
        _assert_names_the_amount(await _post(client, "/admin/payment-collections", body), body)
    for raw in NOT_JSON:
        body = f'{{"amount": {raw}, "currency_code": "usd"}}'
        _assert_refused(await _post(client, "/admin/payment-collections", body), body)
    for raw in ("-1", '"-0.01"'):
        body = f'{{"amount": {raw}, "currency_code": "usd"}}'
        response = await _post(client, "/admin/payment-collections", body)
        _assert_names_the_amount(response, body)
        assert "greater than or equal to 0" in json_of(response)["message"]

    listed = json_of(await client.get("/admin/payment-collections", headers=ADMIN))
    assert listed["count"] == 0


async def test_collection_create_and_update_take_numbers_and_decimal_strings(
    client: httpx.AsyncClient,
) -> None:
    for raw, worth in [*ACCEPTED, ("0", Decimal(0)), ("-0", Decimal(0))]:
        body = f'{{"amount": {raw}, "currency_code": "usd"}}'
        response = await _post(client, "/admin/payment-collections", body)
        assert response.status_code == 200, (body, response.text)
        assert json_of(response)["payment_collection"]["amount"] == worth, body

    collection = json_of(
        await _post(client, "/admin/payment-collections", '{"amount": 1, "currency_code": "usd"}')
    )
    path = f"/admin/payment-collections/{collection['payment_collection']['id']}"
    for raw in REFUSED:
        _assert_names_the_amount(await _post(client, path, f'{{"amount": {raw}}}'), raw)
    updated = await _post(client, path, '{"amount": "12.30"}')
    assert updated.status_code == 200, updated.text
    assert json_of(updated)["payment_collection"]["amount"] == Decimal("12.3")


async def test_capture_and_refund_refuse_what_the_domain_refuses(api: Api, client: httpx.AsyncClient) -> None:
    payment = await api.payment("100")
    capture = f"/admin/payments/{payment['id']}/capture"
    refund = f"/admin/payments/{payment['id']}/refund"

    for raw in [*REFUSED, "0", '"0"', '"-0"', "-1"]:
        _assert_names_the_amount(await _post(client, capture, f'{{"amount": {raw}}}'), raw)
    for raw in NOT_JSON:
        _assert_refused(await _post(client, capture, f'{{"amount": {raw}}}'), raw)
    untouched = json_of(await client.get(f"/admin/payments/{payment['id']}", headers=ADMIN))["payment"]
    assert untouched["captures"] == []

    assert (await _post(client, capture, '{"amount": "10.25"}')).status_code == 200
    assert (await _post(client, capture, '{"amount": 4.75}')).status_code == 200
    assert (await _post(client, capture, '{"amount": "10"}')).status_code == 200

    for raw in [*REFUSED, "0", '"0"', "-1"]:
        _assert_names_the_amount(await _post(client, refund, f'{{"amount": {raw}}}'), raw)
    assert (await _post(client, refund, '{"amount": "2.5"}')).status_code == 200
    assert (await _post(client, refund, '{"amount": 1}')).status_code == 200
    assert (await _post(client, refund, '{"amount": ".5"}')).status_code == 200

    done = json_of(await client.get(f"/admin/payments/{payment['id']}", headers=ADMIN))["payment"]
    assert sorted(amounts(done["captures"])) == [Decimal("4.75"), Decimal(10), Decimal("10.25")]
    assert sorted(amounts(done["refunds"])) == [Decimal("0.5"), Decimal(1), Decimal("2.5")]


async def test_the_schema_pattern_is_what_the_api_takes(client: httpx.AsyncClient) -> None:
    """Every decimal string the schema's pattern allows (within the documented bounds) is taken,
    and every string it does not allow is refused."""
    schema = json_of(await client.get("/openapi.json"))
    components = schema["components"]["schemas"]
    patterns: dict[str, str] = {}
    for model, field in (
        ("CreatePaymentCollection", "amount"),
        ("UpdatePaymentCollection", "amount"),
        ("CapturePayment", "amount"),
        ("RefundPayment", "amount"),
    ):
        described = components[model]["properties"][field]
        branches = described.get("anyOf", [])
        optional = any(b.get("type") == "null" for b in branches)
        # An optional field is anyOf [the amount's schema, null].
        inner = next(b for b in branches if b.get("type") != "null") if optional else described
        amount_branches = inner.get("anyOf", [inner])
        assert {b["type"] for b in amount_branches} == {"number", "string"}, (model, described)
        number = next(b for b in amount_branches if b["type"] == "number")
        assert number["exclusiveMaximum"] == 10**15
        patterns[model] = next(b["pattern"] for b in amount_branches if b["type"] == "string")
    # A collection may be for 0; a capture or a refund may not.
    pattern = patterns["CreatePaymentCollection"]
    assert patterns["UpdatePaymentCollection"] == pattern
    positive = patterns["CapturePayment"]
    assert patterns["RefundPayment"] == positive
    assert pattern.startswith("^") and pattern.endswith("$")

    strings = [
        "1_000",
        "\uff11\uff10",
        "NaN",
        "Infinity",
        "0x10",
        " 10 ",
        "10\n",
        "1e5",
        "2.50",
        ".5",
        "4.",
        "+3",
        "1,5",
        "",
        "0",
        "0.000",
        "-0",
        "-1",
        "0.00000000000000000001",
        "0.000000000000000000001",
        "1." + "0" * 25,
        "000999999999999999.5",
        "1000000000000000",
    ]
    for text in strings:
        worth = re.fullmatch(pattern[1:-1], text)
        assert bool(re.fullmatch(positive[1:-1], text)) == bool(worth and Decimal(text) > 0), text
        body = f'{{"amount": "{text!s}", "currency_code": "usd"}}'.replace("\n", "\\n")
        response = await _post(client, "/admin/payment-collections", body)
        # An anchored ECMA-262 pattern without flags matches the whole string (Python's `$` would
        # also match before a final newline, so compare with fullmatch of what is between anchors).
        assert (response.status_code == 200) == bool(re.fullmatch(pattern[1:-1], text)), (text, response.text)
