"""Store routes: providers for a region, a collection, sessions (replacing earlier ones), authorization."""

from __future__ import annotations

import httpx

from e2e.support import ADMIN, STORE, SYSTEM, TESTING, Api, json_of
from paymod import PaymentModule
from paymod.providers.testing import TestingPaymentProvider


async def test_store_lists_the_providers_of_a_region(
    client: httpx.AsyncClient, module: PaymentModule
) -> None:
    await module.add_region_payment_providers("reg_eu", [TESTING])
    await module.add_region_payment_providers("reg_us", [SYSTEM, TESTING])

    eu = json_of(await client.get("/store/payment-providers?region_id=reg_eu", headers=STORE))
    us = json_of(await client.get("/store/payment-providers?region_id=reg_us&limit=1", headers=STORE))
    nowhere = json_of(await client.get("/store/payment-providers?region_id=reg_none", headers=STORE))

    assert eu == {
        "payment_providers": [{"id": TESTING, "is_enabled": True}],
        "count": 1,
        "offset": 0,
        "limit": 20,
    }
    assert us["count"] == 2 and len(us["payment_providers"]) == 1
    assert nowhere["count"] == 0


async def test_store_providers_need_a_region_and_a_publishable_key(client: httpx.AsyncClient) -> None:
    no_region = await client.get("/store/payment-providers", headers=STORE)
    secret_key = await client.get("/store/payment-providers?region_id=reg_eu", headers=ADMIN)

    assert no_region.status_code == 400
    assert "region_id" in json_of(no_region)["message"]
    assert secret_key.status_code == 401


async def test_store_retrieves_a_collection_without_merchant_fields(
    api: Api, client: httpx.AsyncClient
) -> None:
    collection = await api.collection("42", metadata={"internal": "x"})
    await api.session(collection["id"])

    response = await client.get(f"/store/payment-collections/{collection['id']}", headers=STORE)

    body = json_of(response)["payment_collection"]
    assert set(body) == {"id", "amount", "raw_amount", "currency_code", "status", "payment_sessions"}
    assert set(body["payment_sessions"][0]) == {
        "id",
        "amount",
        "raw_amount",
        "currency_code",
        "provider_id",
        "data",
        "status",
    }
    merchant_only = await client.get(
        f"/store/payment-collections/{collection['id']}?fields=metadata", headers=STORE
    )
    assert merchant_only.status_code == 400
    missing = await client.get("/store/payment-collections/pay_col_missing", headers=STORE)
    assert missing.status_code == 404


async def test_should_create_a_session_when_the_customer_is_a_guest(
    api: Api, client: httpx.AsyncClient, testing_provider: TestingPaymentProvider
) -> None:
    collection = await api.collection("150")

    first = await api.session(collection["id"], SYSTEM)
    second = await api.session(collection["id"], SYSTEM)

    fetched = json_of(await client.get(f"/store/payment-collections/{collection['id']}", headers=STORE))
    [session] = fetched["payment_collection"]["payment_sessions"]
    assert session["id"] == second["id"] != first["id"]
    assert (session["currency_code"], session["provider_id"], session["status"], session["amount"]) == (
        "usd",
        SYSTEM,
        "pending",
        150,
    )


async def test_a_new_session_replaces_the_earlier_one_at_its_provider(
    api: Api, testing_provider: TestingPaymentProvider
) -> None:
    collection = await api.collection("150")

    await api.session(collection["id"], TESTING)
    await api.session(collection["id"], TESTING)

    assert testing_provider.count("initiate_payment") == 2
    assert testing_provider.count("delete_payment") == 1


async def test_no_new_session_once_a_payment_is_authorized(api: Api, client: httpx.AsyncClient) -> None:
    payment = await api.payment("10")

    response = await client.post(
        f"/store/payment-collections/{payment['payment_collection_id']}/payment-sessions",
        json={"provider_id": TESTING},
        headers=STORE,
    )

    assert response.status_code == 400
    assert json_of(response)["type"] == "not_allowed"


async def test_authorize_answers_the_payment_and_the_collection(api: Api) -> None:
    collection = await api.collection("64.99")
    session = await api.session(collection["id"])

    response = await api.authorize(collection["id"])

    assert response.status_code == 200, response.text
    body = json_of(response)
    assert body["action_required"] is False
    assert body["payment"]["payment_session_id"] == session["id"]
    assert body["payment"]["amount"] == body["payment_collection"]["amount"]
    assert body["payment_collection"]["status"] == "authorized"
    assert "payment_session" not in body


async def test_authorize_with_3ds_returns_the_session_and_what_to_do(api: Api, module: PaymentModule) -> None:
    collection = await api.collection("20")
    session = await api.session(collection["id"], data={"scenario": "requires_more"})

    response = await api.authorize(collection["id"])

    assert response.status_code == 200
    body = json_of(response)
    assert body["action_required"] is True
    assert "payment" not in body
    assert body["payment_session"]["id"] == session["id"]
    assert body["payment_session"]["status"] == "requires_more"
    assert body["payment_session"]["data"]["next_action"]["type"] == "redirect_to_url"
    # The customer completes 3-D Secure; authorizing again now succeeds.
    await module.update_payment_session({"id": session["id"], "data": {"action_completed": True}})
    again = await api.authorize(collection["id"])
    assert again.status_code == 200 and json_of(again)["payment"]["payment_session_id"] == session["id"]


async def test_authorize_pending_authorization_is_not_an_error(api: Api) -> None:
    collection = await api.collection("20")
    await api.session(collection["id"], data={"scenario": "pending_authorization"})

    response = await api.authorize(collection["id"])

    body = json_of(response)
    assert response.status_code == 200
    assert body["action_required"] is False
    assert body["payment_session"]["status"] == "pending_authorization"
    assert body["payment_collection"]["status"] == "awaiting"


async def test_a_declined_authorization_is_402(api: Api, client: httpx.AsyncClient) -> None:
    collection = await api.collection("20")
    await api.session(collection["id"], data={"scenario": "decline"})

    response = await api.authorize(collection["id"])

    assert response.status_code == 402
    assert json_of(response) == {
        "type": "payment_authorization_error",
        "code": "card_declined",
        "message": "Payment authorization failed",
    }
    payments = json_of(await client.get("/admin/payments", headers=ADMIN))
    assert payments["count"] == 0


async def test_a_provider_refusal_is_402_and_an_unreachable_provider_503(api: Api) -> None:
    refused = await api.collection("20")
    await api.session(refused["id"], data={"scenario": "provider_error"})
    unreachable = await api.collection("20")
    await api.session(unreachable["id"], data={"scenario": "timeout"})

    refusal = await api.authorize(refused["id"])
    timeout = await api.authorize(unreachable["id"])

    assert refusal.status_code == 402
    assert json_of(refusal)["type"] == "payment_authorization_error"
    assert timeout.status_code == 503
    assert json_of(timeout)["type"] == "provider_unavailable"
    assert timeout.headers["retry-after"] == "1"


async def test_authorize_a_named_session_and_the_errors_around_it(
    api: Api, client: httpx.AsyncClient
) -> None:
    collection = await api.collection("20")
    other = await api.collection("20")
    session = await api.session(collection["id"])
    foreign = await api.session(other["id"])
    path = f"/store/payment-collections/{collection['id']}/authorize"

    wrong_session = await client.post(path, json={"session_id": foreign["id"]}, headers=STORE)
    right_session = await client.post(path, json={"session_id": session["id"]}, headers=STORE)
    no_sessions = await api.authorize((await api.collection("5"))["id"])
    unknown = await api.authorize("pay_col_missing")
    bad_body = await client.post(path, json={"session": "x"}, headers=STORE)

    assert wrong_session.status_code == 404
    assert right_session.status_code == 200
    assert no_sessions.status_code == 400
    assert unknown.status_code == 404
    assert bad_body.status_code == 400 and "session" in json_of(bad_body)["message"]


async def test_authorizing_twice_returns_the_same_payment(
    api: Api, testing_provider: TestingPaymentProvider
) -> None:
    collection = await api.collection("20")
    await api.session(collection["id"])

    first = json_of(await api.authorize(collection["id"]))["payment"]
    second = json_of(await api.authorize(collection["id"]))["payment"]

    assert first["id"] == second["id"]
    assert testing_provider.count("authorize_payment") == 1


async def test_store_routes_need_the_publishable_key(api: Api, client: httpx.AsyncClient) -> None:
    collection = await api.collection("20")

    for method, path in [
        ("GET", "/store/payment-providers?region_id=reg_eu"),
        ("GET", f"/store/payment-collections/{collection['id']}"),
        ("POST", f"/store/payment-collections/{collection['id']}/payment-sessions"),
        ("POST", f"/store/payment-collections/{collection['id']}/authorize"),
    ]:
        for headers in ({}, ADMIN, {"x-publishable-api-key": "pk_wrong"}):
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert json_of(response)["type"] == "unauthorized"
