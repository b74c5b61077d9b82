"""Admin payment routes: list, retrieve, capture, refund, cancel, providers (reference 9.3 and 9.4)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from e2e.support import ADMIN, STORE, SYSTEM, TESTING, Api, amounts, json_of
from paymod.domain.rules import CAPTURE_EXCEEDS
from paymod.providers.testing import TestingPaymentProvider


async def test_should_capture_an_authorized_payment(api: Api) -> None:
    payment = await api.payment("100")

    response = await api.capture(payment["id"])

    assert response.status_code == 200
    captured = json_of(response)["payment"]
    assert isinstance(captured["captured_at"], str)
    assert amounts(captured["captures"]) == [Decimal(100)]
    assert captured["refunds"] == []
    assert captured["amount"] == 100


async def test_should_throw_if_capture_amount_is_greater_than_authorized_amount(api: Api) -> None:
    payment = await api.payment("100")

    first = await api.capture(payment["id"], 75)
    second = await api.capture(payment["id"], 75)

    assert first.status_code == 200
    assert json_of(first)["payment"]["captured_at"] is None
    assert amounts(json_of(first)["payment"]["captures"]) == [Decimal(75)]
    assert second.status_code == 400
    # Medusa's message, typo included.
    assert CAPTURE_EXCEEDS.endswith("substracted by what is already captured.")
    assert json_of(second) == {
        "type": "invalid_data",
        "code": "invalid_data",
        "message": CAPTURE_EXCEEDS,
    }


async def test_should_return_payment_if_payment_is_already_fully_captured(
    api: Api, testing_provider: TestingPaymentProvider
) -> None:
    payment = await api.payment("100")

    first = await api.capture(payment["id"])
    second = await api.capture(payment["id"])

    assert first.status_code == second.status_code == 200
    assert amounts(json_of(second)["payment"]["captures"]) == [Decimal(100)]
    assert testing_provider.count("capture_payment") == 1


async def test_should_refund_a_captured_payment_with_a_reason_and_a_note(
    api: Api, client: httpx.AsyncClient
) -> None:
    payment = await api.payment("100")
    await api.capture(payment["id"])
    reason = json_of(
        await client.post("/admin/refund-reasons", json={"label": "test", "code": "test"}, headers=ADMIN)
    )["refund_reason"]

    response = await api.refund(
        payment["id"], amount=50, refund_reason_id=reason["id"], note="Do not like it"
    )

    assert response.status_code == 200, response.text
    refunded = json_of(response)["payment"]
    assert amounts(refunded["captures"]) == [Decimal(100)]
    [refund] = refunded["refunds"]
    assert refund["amount"] == 50
    assert refund["note"] == "Do not like it"
    assert refund["refund_reason_id"] == reason["id"]
    assert refund["refund_reason"]["label"] == "test"
    assert refund["refund_reason"]["code"] == "test"


async def test_should_reject_a_refund_with_an_amount_of_0(api: Api) -> None:
    payment = await api.payment("100")
    await api.capture(payment["id"])

    response = await api.refund(payment["id"], amount=0)

    assert response.status_code == 400
    assert json_of(response)["type"] == "invalid_data"
    assert "amount" in json_of(response)["message"]


async def test_should_reject_a_refund_with_a_negative_amount(api: Api) -> None:
    payment = await api.payment("100")
    await api.capture(payment["id"])

    response = await api.refund(payment["id"], amount=-10)

    assert response.status_code == 400
    assert "amount" in json_of(response)["message"]


async def test_should_issue_multiple_refunds(api: Api, client: httpx.AsyncClient) -> None:
    payment = await api.payment("100")
    await api.capture(payment["id"])

    for _ in range(2):
        assert (await api.refund(payment["id"], amount=25, note="Do not like it")).status_code == 200

    fetched = json_of(await client.get(f"/admin/payments/{payment['id']}", headers=ADMIN))["payment"]
    assert fetched["currency_code"] == "usd"
    assert fetched["amount"] == 100
    assert amounts(fetched["captures"]) == [Decimal(100)]
    assert amounts(fetched["refunds"]) == [Decimal(25), Decimal(25)]
    assert {r["note"] for r in fetched["refunds"]} == {"Do not like it"}


async def test_should_throw_if_the_refund_amount_exceeds_the_captured_amount(api: Api) -> None:
    payment = await api.payment("100")
    await api.capture(payment["id"])
    await api.refund(payment["id"], amount=50)

    response = await api.refund(payment["id"], amount=5000)

    assert response.status_code == 400
    assert json_of(response)["message"] == "You cannot refund more than what is captured on the payment."


async def test_should_allow_refund_slightly_exceeding_captured_amount_within_currency_epsilon(
    api: Api,
) -> None:
    payment = await api.payment("87.957975")
    await api.capture(payment["id"])

    response = await api.refund(payment["id"], amount=87.96)

    assert response.status_code == 200, response.text
    assert amounts(json_of(response)["payment"]["refunds"]) == [Decimal("87.96")]


async def test_rejects_refund_exceeding_captured_amount_beyond_currency_epsilon(api: Api) -> None:
    payment = await api.payment("87.957975")
    await api.capture(payment["id"])

    response = await api.refund(payment["id"], amount=87.98)

    assert response.status_code == 400
    assert "refund more than" in json_of(response)["message"]


async def test_a_refund_without_amount_refunds_what_remains(api: Api) -> None:
    payment = await api.payment("40")
    await api.capture(payment["id"])
    await api.refund(payment["id"], amount="15.5")

    response = await api.refund(payment["id"])

    assert amounts(json_of(response)["payment"]["refunds"]) == [Decimal("15.5"), Decimal("24.5")]


async def test_refund_with_unknown_reason_is_404(api: Api) -> None:
    payment = await api.payment("10")
    await api.capture(payment["id"])

    response = await api.refund(payment["id"], amount=1, refund_reason_id="refr_missing")

    assert response.status_code == 404
    assert json_of(response)["type"] == "not_found"


async def test_capture_amounts_are_exact_decimals_in_and_out(api: Api) -> None:
    payment = await api.payment("1234567890.12", currency_code="kwd")

    response = await api.capture(payment["id"], "0.001")

    assert response.status_code == 200, response.text
    assert b'"amount":0.001' in response.content
    assert b'"amount":1234567890.12' in response.content


async def test_a_collection_may_keep_more_digits_than_its_payment(
    api: Api, client: httpx.AsyncClient
) -> None:
    """Tax math leaves a collection (and its session) at 12.3456 USD; the payment holds 12.35."""
    payment = await api.payment("12.3456")

    assert payment["amount"] == Decimal("12.35")
    collection = json_of(
        await client.get(f"/admin/payment-collections/{payment['payment_collection_id']}", headers=ADMIN)
    )["payment_collection"]
    assert collection["amount"] == Decimal("12.3456")
    captured = await api.capture(payment["id"])
    assert amounts(json_of(captured)["payment"]["captures"]) == [Decimal("12.35")]


@pytest.mark.parametrize(
    ("currency", "amount", "digits"), [("jpy", "1000.4", "0 decimal places"), ("usd", "0.994", "2 decimal")]
)
async def test_captures_and_refunds_finer_than_the_currency_are_refused(
    api: Api, currency: str, amount: str, digits: str
) -> None:
    payment = await api.payment("2000", currency_code=currency)

    refused = await api.capture(payment["id"], amount)

    assert refused.status_code == 400
    body = json_of(refused)
    assert (body["type"], body["code"]) == ("invalid_data", "invalid_amount")
    assert currency.upper() in body["message"] and digits in body["message"]
    assert (await api.capture(payment["id"], "1")).status_code == 200
    refused = await api.refund(payment["id"], amount="0.4" if currency == "jpy" else "0.001")
    assert refused.status_code == 400
    assert json_of(refused)["code"] == "invalid_amount"


async def test_cancel_voids_an_authorized_payment_and_updates_the_collection(
    api: Api, client: httpx.AsyncClient
) -> None:
    payment = await api.payment("100")

    response = await client.post(f"/admin/payments/{payment['id']}/cancel", headers=ADMIN)

    assert response.status_code == 200
    assert json_of(response)["payment"]["canceled_at"] is not None
    collection = json_of(
        await client.get(f"/admin/payment-collections/{payment['payment_collection_id']}", headers=ADMIN)
    )["payment_collection"]
    assert collection["status"] == "canceled"
    refused = await api.capture(payment["id"])
    assert refused.status_code == 400
    assert json_of(refused)["message"] == f"The payment: {payment['id']} has been canceled."


async def test_a_captured_payment_cannot_be_canceled(api: Api, client: httpx.AsyncClient) -> None:
    payment = await api.payment("100")
    await api.capture(payment["id"])

    response = await client.post(f"/admin/payments/{payment['id']}/cancel", headers=ADMIN)

    assert response.status_code == 400
    assert json_of(response)["type"] == "not_allowed"


async def test_a_provider_failure_on_capture_is_502_and_books_nothing(api: Api) -> None:
    payment = await api.payment("100", data={"scenario": "capture_error"})

    response = await api.capture(payment["id"])

    assert response.status_code == 502
    assert json_of(response)["type"] == "provider_error"
    fetched = json_of(await api.client.get(f"/admin/payments/{payment['id']}", headers=ADMIN))["payment"]
    assert fetched["captures"] == []


async def test_unknown_payment_is_404_on_every_payment_route(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/admin/payments/pay_missing"),
        ("POST", "/admin/payments/pay_missing/capture"),
        ("POST", "/admin/payments/pay_missing/refund"),
        ("POST", "/admin/payments/pay_missing/cancel"),
    ]:
        response = await client.request(method, path, headers=ADMIN)
        assert response.status_code == 404, (method, path)
        assert json_of(response) == {
            "type": "not_found",
            "code": "not_found",
            "message": "Payment with id: pay_missing was not found",
        }


async def test_capture_rejects_unknown_fields_and_non_numbers(api: Api) -> None:
    payment = await api.payment("100")

    unknown = await api.client.post(
        f"/admin/payments/{payment['id']}/capture", json={"amount": 1, "is_captured": True}, headers=ADMIN
    )
    not_a_number = await api.capture(payment["id"], "ten")

    assert unknown.status_code == 400
    assert "is_captured" in json_of(unknown)["message"]
    assert not_a_number.status_code == 400
    assert json_of(not_a_number)["message"].startswith("amount")


async def test_list_payments_with_filters_paging_order_and_fields(
    api: Api, client: httpx.AsyncClient
) -> None:
    first = await api.payment("10")
    second = await api.payment("20")
    third = await api.payment("30")

    everything = json_of(await client.get("/admin/payments", headers=ADMIN))
    page = json_of(await client.get("/admin/payments?limit=1&offset=1&order=-created_at", headers=ADMIN))
    by_collection = json_of(
        await client.get(
            "/admin/payments",
            params={
                "payment_collection_id": [first["payment_collection_id"], third["payment_collection_id"]]
            },
            headers=ADMIN,
        )
    )
    slim = json_of(await client.get("/admin/payments?fields=id,amount", headers=ADMIN))

    assert everything["count"] == 3
    assert [p["id"] for p in everything["payments"]] == [first["id"], second["id"], third["id"]]
    assert (everything["offset"], everything["limit"]) == (0, 20)
    assert page["count"] == 3
    assert [p["id"] for p in page["payments"]] == [second["id"]]
    assert (page["offset"], page["limit"]) == (1, 1)
    assert {p["id"] for p in by_collection["payments"]} == {first["id"], third["id"]}
    assert slim["payments"][0] == {"id": first["id"], "amount": 10}


async def test_list_payments_rejects_bad_query_parameters(client: httpx.AsyncClient) -> None:
    for query, field in [
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("order=nope", "nope"),
        ("fields=nope", "nope"),
        ("created_at[$gte]=yesterday", "created_at"),
    ]:
        response = await client.get(f"/admin/payments?{query}", headers=ADMIN)
        assert response.status_code == 400, query
        assert field in json_of(response)["message"], query


async def test_retrieve_payment_with_a_relation_through_fields(api: Api, client: httpx.AsyncClient) -> None:
    payment = await api.payment("10")

    response = await client.get(f"/admin/payments/{payment['id']}?fields=id,*payment_session", headers=ADMIN)

    body = json_of(response)["payment"]
    assert set(body) == {"id", "payment_session"}
    assert body["payment_session"]["status"] == "authorized"


async def test_should_list_payment_providers(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/payments/payment-providers", headers=ADMIN)

    assert response.status_code == 200
    body = json_of(response)
    assert body["count"] == 2
    assert {(p["id"], p["is_enabled"]) for p in body["payment_providers"]} == {
        (SYSTEM, True),
        (TESTING, True),
    }
    filtered = json_of(
        await client.get("/admin/payments/payment-providers", params={"id": TESTING}, headers=ADMIN)
    )
    assert [p["id"] for p in filtered["payment_providers"]] == [TESTING]


async def test_payment_routes_need_the_secret_key(api: Api, client: httpx.AsyncClient) -> None:
    payment = await api.payment("10")

    for method, path in [
        ("GET", "/admin/payments"),
        ("GET", f"/admin/payments/{payment['id']}"),
        ("POST", f"/admin/payments/{payment['id']}/capture"),
        ("POST", f"/admin/payments/{payment['id']}/refund"),
        ("POST", f"/admin/payments/{payment['id']}/cancel"),
        ("GET", "/admin/payments/payment-providers"),
    ]:
        response = await client.request(method, path, headers=STORE)
        assert response.status_code == 401, (method, path)
    fetched = json_of(await client.get(f"/admin/payments/{payment['id']}", headers=ADMIN))["payment"]
    assert fetched["captures"] == [] and fetched["canceled_at"] is None
