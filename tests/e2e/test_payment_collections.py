"""Admin payment-collection routes, admin payment sessions and mark-as-paid (reference 9.3)."""

from __future__ import annotations

from decimal import Decimal

import httpx

from e2e.support import ADMIN, STORE, SYSTEM, TESTING, Api, json_of
from paymod.providers.testing import TestingPaymentProvider


async def test_create_a_payment_collection(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/admin/payment-collections",
        json={"amount": "87.957975", "currency_code": "USD", "metadata": {"order": "ord_1", "weight": 1.5}},
        headers=ADMIN,
    )

    assert response.status_code == 200, response.text
    collection = json_of(response)["payment_collection"]
    assert collection["id"].startswith("pay_col_")
    assert collection["amount"] == Decimal("87.957975")
    assert collection["raw_amount"] == {"value": "87.957975", "precision": 20}
    assert collection["currency_code"] == "usd"
    assert collection["status"] == "not_paid"
    assert collection["metadata"] == {"order": "ord_1", "weight": 1.5}
    assert collection["payment_sessions"] == [] and collection["payments"] == []
    # Amounts travel as JSON numbers, exactly.
    assert b'"amount":87.957975' in response.content


async def test_create_accepts_numbers_and_strings_for_the_amount(client: httpx.AsyncClient) -> None:
    for amount in (49.9, "49.90", 49.90):
        response = await client.post(
            "/admin/payment-collections", json={"amount": amount, "currency_code": "eur"}, headers=ADMIN
        )
        assert json_of(response)["payment_collection"]["amount"] == Decimal("49.9")


async def test_create_names_the_field_that_is_wrong(client: httpx.AsyncClient) -> None:
    cases = [
        ({"amount": 10}, "currency_code"),
        ({"currency_code": "usd"}, "amount"),
        ({"amount": -1, "currency_code": "usd"}, "amount"),
        ({"amount": "1e400", "currency_code": "usd"}, "amount"),
        ({"amount": 10, "currency_code": "dollars"}, "currency_code"),
        ({"amount": 10, "currency_code": "usd", "order_id": "x"}, "order_id"),
        ({"amount": 10, "currency_code": "usd", "metadata": "x"}, "metadata"),
    ]
    for body, field in cases:
        response = await client.post("/admin/payment-collections", json=body, headers=ADMIN)
        assert response.status_code == 400, body
        error = json_of(response)
        assert error["type"] == "invalid_data"
        assert field in error["message"], (body, error)


async def test_list_payment_collections_with_filters(api: Api, client: httpx.AsyncClient) -> None:
    usd = await api.collection("10", "usd")
    eur = await api.collection("20", "eur")
    paid = await api.collection("30", "usd")
    await api.session(paid["id"])
    await api.authorize(paid["id"])

    everything = json_of(await client.get("/admin/payment-collections", headers=ADMIN))
    in_usd = json_of(await client.get("/admin/payment-collections?currency_code=USD", headers=ADMIN))
    authorized = json_of(await client.get("/admin/payment-collections?status=authorized", headers=ADMIN))
    by_id = json_of(
        await client.get("/admin/payment-collections", params={"id": [usd["id"], eur["id"]]}, headers=ADMIN)
    )
    newest_first = json_of(
        await client.get("/admin/payment-collections?order=-created_at&limit=2", headers=ADMIN)
    )
    slim = json_of(await client.get("/admin/payment-collections?fields=amount,status", headers=ADMIN))

    assert everything["count"] == 3 and len(everything["payment_collections"]) == 3
    assert {c["id"] for c in in_usd["payment_collections"]} == {usd["id"], paid["id"]}
    assert [c["id"] for c in authorized["payment_collections"]] == [paid["id"]]
    assert by_id["count"] == 2
    assert [c["id"] for c in newest_first["payment_collections"]] == [paid["id"], eur["id"]]
    assert newest_first["count"] == 3 and newest_first["limit"] == 2
    assert slim["payment_collections"][0] == {"id": usd["id"], "amount": 10, "status": "not_paid"}


async def test_list_rejects_an_unknown_status(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/payment-collections?status=paid", headers=ADMIN)

    assert response.status_code == 400
    assert "status" in json_of(response)["message"]


async def test_retrieve_a_payment_collection(api: Api, client: httpx.AsyncClient) -> None:
    created = await api.collection("15")

    found = await client.get(f"/admin/payment-collections/{created['id']}", headers=ADMIN)
    missing = await client.get("/admin/payment-collections/pay_col_missing", headers=ADMIN)

    assert json_of(found)["payment_collection"] == created
    assert missing.status_code == 404
    assert json_of(missing)["message"] == "PaymentCollection with id: pay_col_missing was not found"


async def test_update_metadata_and_amount_before_payment(api: Api, client: httpx.AsyncClient) -> None:
    collection = await api.collection("15")
    await api.session(collection["id"])

    response = await client.post(
        f"/admin/payment-collections/{collection['id']}",
        json={"amount": "25.5", "metadata": {"note": "cart changed"}},
        headers=ADMIN,
    )

    assert response.status_code == 200, response.text
    updated = json_of(response)["payment_collection"]
    assert updated["amount"] == Decimal("25.5")
    assert updated["metadata"] == {"note": "cart changed"}
    # Sessions were initiated for the old amount: they go, as in Medusa.
    assert updated["payment_sessions"] == []
    assert updated["status"] == "not_paid"


async def test_an_authorized_amount_can_grow_but_not_shrink_below_its_payment(
    api: Api, client: httpx.AsyncClient
) -> None:
    """Once authorized, the amount may only change while it still covers the payment (an order edit
    that adds an item: the rest is paid with another session); the currency not at all."""
    payment = await api.payment("15")
    path = f"/admin/payment-collections/{payment['payment_collection_id']}"

    shrunk = await client.post(path, json={"amount": 10}, headers=ADMIN)
    other_currency = await client.post(path, json={"currency_code": "eur"}, headers=ADMIN)
    grown = await client.post(path, json={"amount": 20}, headers=ADMIN)
    metadata = await client.post(path, json={"metadata": {"a": 1}}, headers=ADMIN)

    for refused in (shrunk, other_currency):
        assert refused.status_code == 400, refused.text
        assert json_of(refused)["type"] == "not_allowed"
    assert "its payments hold 15" in json_of(shrunk)["message"]
    assert grown.status_code == 200, grown.text
    document = json_of(grown)["payment_collection"]
    assert (document["amount"], document["status"]) == (20, "partially_authorized")
    # the authorized session and its payment stay
    assert [s["id"] for s in document["payment_sessions"]] == [payment["payment_session_id"]]
    assert metadata.status_code == 200
    assert json_of(metadata)["payment_collection"]["amount"] == 20


async def test_update_unknown_collection_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/admin/payment-collections/pay_col_missing", json={"metadata": {}}, headers=ADMIN
    )

    assert response.status_code == 404


async def test_delete_a_not_paid_collection(
    api: Api, client: httpx.AsyncClient, testing_provider: TestingPaymentProvider
) -> None:
    collection = await api.collection("15")
    await api.session(collection["id"])

    response = await client.delete(f"/admin/payment-collections/{collection['id']}", headers=ADMIN)

    assert response.status_code == 200
    assert json_of(response) == {"id": collection["id"], "object": "payment-collection", "deleted": True}
    assert (
        await client.get(f"/admin/payment-collections/{collection['id']}", headers=ADMIN)
    ).status_code == 404
    assert testing_provider.count("delete_payment") == 1


async def test_delete_refuses_a_collection_that_is_not_not_paid(api: Api, client: httpx.AsyncClient) -> None:
    payment = await api.payment("15")

    response = await client.delete(
        f"/admin/payment-collections/{payment['payment_collection_id']}", headers=ADMIN
    )

    assert response.status_code == 400
    assert json_of(response)["message"] == "Can only delete payment collections where status is not_paid"


async def test_should_create_a_payment_session_via_the_admin_endpoint(
    api: Api, client: httpx.AsyncClient
) -> None:
    collection = await api.collection("100")

    for _ in range(2):
        response = await client.post(
            f"/admin/payment-collections/{collection['id']}/payment-sessions",
            json={"provider_id": SYSTEM},
            headers=ADMIN,
        )
        assert response.status_code == 200, response.text

    [session] = json_of(response)["payment_collection"]["payment_sessions"]
    assert (session["provider_id"], session["status"], session["amount"]) == (SYSTEM, "pending", 100)


async def test_admin_payment_session_errors(api: Api, client: httpx.AsyncClient) -> None:
    collection = await api.collection("100")
    path = f"/admin/payment-collections/{collection['id']}/payment-sessions"

    unknown_provider = await client.post(path, json={"provider_id": "pp_nope"}, headers=ADMIN)
    missing_provider = await client.post(path, json={}, headers=ADMIN)
    unknown_collection = await client.post(
        "/admin/payment-collections/pay_col_missing/payment-sessions",
        json={"provider_id": SYSTEM},
        headers=ADMIN,
    )
    provider_failure = await client.post(
        path, json={"provider_id": TESTING, "data": {"scenario": "initiate_error"}}, headers=ADMIN
    )

    assert unknown_provider.status_code == 404
    assert missing_provider.status_code == 400 and "provider_id" in json_of(missing_provider)["message"]
    assert unknown_collection.status_code == 404
    assert provider_failure.status_code == 502
    after = json_of(await client.get(f"/admin/payment-collections/{collection['id']}", headers=ADMIN))
    assert after["payment_collection"]["payment_sessions"] == []


async def test_records_the_captured_payment_under_the_system_provider_by_default(
    api: Api, client: httpx.AsyncClient
) -> None:
    collection = await api.collection("100")

    response = await client.post(f"/admin/payment-collections/{collection['id']}/mark-as-paid", headers=ADMIN)

    assert response.status_code == 200, response.text
    paid = json_of(response)["payment_collection"]
    assert paid["status"] == "completed"
    [payment] = paid["payments"]
    assert (payment["provider_id"], payment["amount"]) == (SYSTEM, 100)
    assert payment["captured_at"] is not None


async def test_records_the_captured_payment_under_the_provider_passed_in_provider_id(
    api: Api, client: httpx.AsyncClient
) -> None:
    collection = await api.collection("100")

    response = await client.post(
        f"/admin/payment-collections/{collection['id']}/mark-as-paid",
        json={"provider_id": TESTING},
        headers=ADMIN,
    )

    paid = json_of(response)["payment_collection"]
    assert paid["status"] == "completed"
    [payment] = paid["payments"]
    assert payment["provider_id"] == TESTING and payment["captured_at"] is not None
    captures = json_of(await client.get(f"/admin/payments/{payment['id']}", headers=ADMIN))["payment"][
        "captures"
    ]
    assert captures[0]["created_by"] == "env"


async def test_mark_as_paid_only_for_not_paid_collections(api: Api, client: httpx.AsyncClient) -> None:
    payment = await api.payment("100")
    empty = await api.collection("0")

    paid_already = await client.post(
        f"/admin/payment-collections/{payment['payment_collection_id']}/mark-as-paid", headers=ADMIN
    )
    nothing_to_pay = await client.post(
        f"/admin/payment-collections/{empty['id']}/mark-as-paid", headers=ADMIN
    )
    missing = await client.post("/admin/payment-collections/pay_col_missing/mark-as-paid", headers=ADMIN)

    assert paid_already.status_code == 400
    assert json_of(paid_already)["message"] == "Can only mark 'not_paid' payment collection as paid"
    assert nothing_to_pay.status_code == 400
    assert json_of(nothing_to_pay)["message"] == "Capture amount must be greater than 0."
    assert missing.status_code == 404


async def test_collection_routes_need_the_secret_key(api: Api, client: httpx.AsyncClient) -> None:
    collection = await api.collection("10")

    for method, path in [
        ("POST", "/admin/payment-collections"),
        ("GET", "/admin/payment-collections"),
        ("GET", f"/admin/payment-collections/{collection['id']}"),
        ("POST", f"/admin/payment-collections/{collection['id']}"),
        ("DELETE", f"/admin/payment-collections/{collection['id']}"),
        ("POST", f"/admin/payment-collections/{collection['id']}/payment-sessions"),
        ("POST", f"/admin/payment-collections/{collection['id']}/mark-as-paid"),
    ]:
        for headers in ({}, STORE, {"Authorization": "Bearer sk_wrong"}, {"Authorization": "Basic x"}):
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert json_of(response) == {
                "type": "unauthorized",
                "code": "unauthorized",
                "message": "Unauthorized",
            }
    assert (
        await client.get(f"/admin/payment-collections/{collection['id']}", headers=ADMIN)
    ).status_code == 200
