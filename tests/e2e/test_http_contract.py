"""The HTTP contract's edges: ISO 4217 currency codes, the secret key in Medusa's Basic form, the
405's Allow header, and a refund reason named by its code."""

from __future__ import annotations

import base64

import httpx
import pytest

from e2e.support import ADMIN, ADMIN_KEY, STORE, Api, json_of
from paymod import PaymentModule
from paymod.domain.errors import InvalidDataError


def basic(user: str, password: str = "") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# -- currency codes -------------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["xyz", "XYZ", "dem", "abc"])
async def test_a_currency_code_that_is_not_iso_4217_is_refused_naming_the_field(
    client: httpx.AsyncClient, api: Api, code: str
) -> None:
    created = await client.post(
        "/admin/payment-collections", json={"amount": 10, "currency_code": code}, headers=ADMIN
    )
    assert created.status_code == 400, created.text
    error = json_of(created)
    assert error["type"] == "invalid_data"
    assert error["message"].startswith("currency_code: ") and "ISO 4217" in error["message"], error

    collection = await api.collection("10", "usd")
    updated = await client.post(
        f"/admin/payment-collections/{collection['id']}", json={"currency_code": code}, headers=ADMIN
    )
    assert updated.status_code == 400, updated.text
    assert json_of(updated)["message"].startswith("currency_code: ")

    listed = await client.get("/admin/payment-collections", params={"currency_code": code}, headers=ADMIN)
    assert listed.status_code == 400, listed.text
    assert "currency_code" in json_of(listed)["message"]
    assert json_of(await client.get("/admin/payment-collections", headers=ADMIN))["count"] == 1


@pytest.mark.parametrize(("code", "stored"), [("usd", "usd"), ("EUR", "eur"), ("kwd", "kwd"), ("XOF", "xof")])
async def test_lower_and_upper_case_iso_codes_are_accepted_and_stored_lower_case(
    client: httpx.AsyncClient, code: str, stored: str
) -> None:
    created = await client.post(
        "/admin/payment-collections", json={"amount": 10, "currency_code": code}, headers=ADMIN
    )
    assert created.status_code == 200, created.text
    assert json_of(created)["payment_collection"]["currency_code"] == stored
    listed = await client.get("/admin/payment-collections", params={"currency_code": code}, headers=ADMIN)
    assert json_of(listed)["count"] == 1


async def test_the_service_api_refuses_a_code_that_is_not_iso_4217(module: PaymentModule) -> None:
    with pytest.raises(InvalidDataError, match="ISO 4217") as refused:
        await module.create_payment_collections({"amount": "10", "currency_code": "xyz"})
    assert refused.value.code == "invalid_currency_code"
    collection = await module.create_payment_collections({"amount": "10", "currency_code": "usd"})
    with pytest.raises(InvalidDataError, match="ISO 4217"):
        await module.create_payment_session(
            collection.id,
            {"provider_id": "pp_system_default", "amount": "10", "currency_code": "zzz", "data": {}},
        )


async def test_the_openapi_document_lists_the_codes(client: httpx.AsyncClient) -> None:
    schema = json_of(await client.get("/openapi.json"))
    described = schema["components"]["schemas"]["CreatePaymentCollection"]["properties"]["currency_code"]
    assert {"usd", "USD", "jpy", "JPY"} <= set(described["enum"])
    assert "xyz" not in described["enum"] and "Usd" not in described["enum"]


# -- the secret key as Medusa's JS SDK sends it ----------------------------------------------------
async def test_the_secret_key_is_accepted_in_basic_form(client: httpx.AsyncClient, api: Api) -> None:
    await api.collection("10")
    for headers in (basic(ADMIN_KEY), basic(ADMIN_KEY, "ignored"), ADMIN):
        listed = await client.get("/admin/payment-collections", headers=headers)
        assert listed.status_code == 200, (headers, listed.text)
        assert json_of(listed)["count"] == 1
    created = await client.post(
        "/admin/refund-reasons", json={"label": "Basic", "code": "basic"}, headers=basic(ADMIN_KEY)
    )
    assert created.status_code == 200, created.text


@pytest.mark.parametrize(
    "headers",
    [
        basic("sk_wrong"),
        basic(""),
        basic("", ADMIN_KEY),  # the key is the user name, not the password
        {"Authorization": "Basic !!not-base64!!"},
        {"Authorization": "Basic"},
        {"Authorization": f"Digest {ADMIN_KEY}"},
        {"Authorization": base64.b64encode(f"{ADMIN_KEY}:".encode()).decode()},
    ],
)
async def test_a_wrong_key_in_basic_form_is_a_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get("/admin/payment-collections", headers=headers)
    assert response.status_code == 401, response.text
    assert json_of(response) == {"type": "unauthorized", "code": "unauthorized", "message": "Unauthorized"}
    posted = await client.post(
        "/admin/refund-reasons",
        json={"label": "x", "code": "x"},
        headers={**headers, "Idempotency-Key": "basic-401"},
    )
    assert posted.status_code == 401
    # A publishable key never opens an admin route, in either form.
    assert (
        await client.get("/admin/payments", headers=basic(STORE["x-publishable-api-key"]))
    ).status_code == 401


async def test_the_openapi_document_offers_both_forms(client: httpx.AsyncClient) -> None:
    schema = json_of(await client.get("/openapi.json"))
    security = schema["paths"]["/admin/payments"]["get"]["security"]
    assert {"secret_api_key": []} in security and {"secret_api_key_basic": []} in security
    assert schema["components"]["securitySchemes"]["secret_api_key_basic"]["scheme"] == "basic"


# -- 405 ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/admin/refund-reasons", "GET, POST"),
        ("/admin/refund-reasons/refr_x", "DELETE, GET, POST"),
        ("/admin/payment-collections/pay_col_x", "DELETE, GET, POST"),
        ("/admin/account-holders/acchld_x/payment-methods", "GET, POST"),
        ("/admin/payments/pay_x/capture", "POST"),
    ],
)
async def test_a_405_lists_every_method_of_the_path(
    client: httpx.AsyncClient, path: str, allowed: str
) -> None:
    response = await client.request("PATCH", path, headers=ADMIN)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert json_of(response)["code"] == "method_not_allowed"


# -- a refund reason by id or by code -------------------------------------------------------------
async def test_a_refund_takes_a_reason_by_id_or_by_code(client: httpx.AsyncClient, api: Api) -> None:
    payment = await api.payment("30")
    assert (await api.capture(payment["id"])).status_code == 200
    reason = json_of(
        await client.post(
            "/admin/refund-reasons", json={"label": "Damaged", "code": "damaged_box"}, headers=ADMIN
        )
    )["refund_reason"]

    by_code = await api.refund(payment["id"], amount="5", refund_reason_id="damaged_box")
    assert by_code.status_code == 200, by_code.text
    by_id = await api.refund(payment["id"], amount="5", refund_reason_id=reason["id"])
    assert by_id.status_code == 200, by_id.text
    refunds = json_of(by_id)["payment"]["refunds"]
    assert [r["refund_reason_id"] for r in refunds] == [reason["id"], reason["id"]]
    assert {r["refund_reason"]["code"] for r in refunds} == {"damaged_box"}

    unknown = await api.refund(payment["id"], amount="5", refund_reason_id="no_such_code")
    assert unknown.status_code == 404, unknown.text
    assert "no_such_code" in json_of(unknown)["message"]

    # A code two live reasons share names no reason: refused, with their ids; nothing refunded.
    other = json_of(
        await client.post(
            "/admin/refund-reasons", json={"label": "Also damaged", "code": "damaged_box"}, headers=ADMIN
        )
    )["refund_reason"]
    ambiguous = await api.refund(payment["id"], amount="5", refund_reason_id="damaged_box")
    assert ambiguous.status_code == 400, ambiguous.text
    message = json_of(ambiguous)["message"]
    assert message.startswith("refund_reason_id: ") and reason["id"] in message and other["id"] in message
    # Deleted reasons do not count.
    assert (await client.delete(f"/admin/refund-reasons/{other['id']}", headers=ADMIN)).status_code == 200
    again = await api.refund(payment["id"], amount="5", refund_reason_id="damaged_box")
    assert again.status_code == 200, again.text
    done = json_of(await client.get(f"/admin/payments/{payment['id']}", headers=ADMIN))["payment"]
    assert len(done["refunds"]) == 3
