"""Region ↔ provider links and account holders (admin)."""

from __future__ import annotations

import httpx

from e2e.support import ADMIN, STORE, SYSTEM, TESTING, json_of
from paymod.providers.testing import TestingPaymentProvider


async def test_link_and_unlink_providers_in_a_region(client: httpx.AsyncClient) -> None:
    path = "/admin/regions/reg_eu/payment-providers"

    added = await client.post(path, json={"add": [SYSTEM, TESTING]}, headers=ADMIN)
    removed = await client.post(path, json={"remove": [SYSTEM]}, headers=ADMIN)
    listed = await client.get(path, headers=ADMIN)
    store_view = await client.get("/store/payment-providers?region_id=reg_eu", headers=STORE)

    assert json_of(added) == {
        "region_id": "reg_eu",
        "payment_providers": [{"id": SYSTEM, "is_enabled": True}, {"id": TESTING, "is_enabled": True}],
    }
    assert [p["id"] for p in json_of(removed)["payment_providers"]] == [TESTING]
    assert json_of(listed) == {
        "payment_providers": [{"id": TESTING, "is_enabled": True}],
        "count": 1,
        "offset": 0,
        "limit": 20,
    }
    assert json_of(store_view)["payment_providers"] == [{"id": TESTING, "is_enabled": True}]


async def test_region_link_errors(client: httpx.AsyncClient) -> None:
    path = "/admin/regions/reg_eu/payment-providers"

    unknown = await client.post(path, json={"add": ["pp_nope"]}, headers=ADMIN)
    both = await client.post(path, json={"add": [SYSTEM], "remove": [SYSTEM]}, headers=ADMIN)
    not_a_list = await client.post(path, json={"add": SYSTEM}, headers=ADMIN)
    wrong_key = await client.post(path, json={"add": [SYSTEM]}, headers=STORE)

    assert unknown.status_code == 404
    assert both.status_code == 400
    assert not_a_list.status_code == 400 and "add" in json_of(not_a_list)["message"]
    assert wrong_key.status_code == 401
    assert json_of(await client.get(path, headers=ADMIN))["count"] == 0


async def test_account_holder_lifecycle(
    client: httpx.AsyncClient, testing_provider: TestingPaymentProvider
) -> None:
    body = {"provider_id": TESTING, "customer": {"id": "cus_1", "email": "ada@example.com"}}

    created = await client.post("/admin/account-holders", json=body, headers=ADMIN)
    again = await client.post("/admin/account-holders", json=body, headers=ADMIN)

    assert created.status_code == 200, created.text
    holder = json_of(created)["account_holder"]
    assert (holder["provider_id"], holder["external_id"], holder["customer_id"], holder["email"]) == (
        TESTING,
        "tcus_cus_1",
        "cus_1",
        "ada@example.com",
    )
    # Idempotent per (provider, customer): the same holder, one provider call.
    assert json_of(again)["account_holder"]["id"] == holder["id"]
    assert testing_provider.count("create_account_holder") == 1

    listed = json_of(await client.get("/admin/account-holders?customer_id=cus_1", headers=ADMIN))
    fetched = await client.get(f"/admin/account-holders/{holder['id']}", headers=ADMIN)
    updated = await client.post(
        f"/admin/account-holders/{holder['id']}", json={"metadata": {"tier": "gold"}}, headers=ADMIN
    )
    deleted = await client.delete(f"/admin/account-holders/{holder['id']}", headers=ADMIN)

    assert listed["count"] == 1 and listed["account_holders"][0]["id"] == holder["id"]
    assert json_of(fetched)["account_holder"] == holder
    assert json_of(updated)["account_holder"]["metadata"] == {"tier": "gold"}
    assert json_of(deleted) == {"id": holder["id"], "object": "account_holder", "deleted": True}
    assert (await client.get(f"/admin/account-holders/{holder['id']}", headers=ADMIN)).status_code == 404
    assert testing_provider.count("delete_account_holder") == 1


async def test_account_holder_errors(client: httpx.AsyncClient) -> None:
    unknown_provider = await client.post(
        "/admin/account-holders", json={"provider_id": "pp_nope", "customer": {"id": "c"}}, headers=ADMIN
    )
    no_customer = await client.post("/admin/account-holders", json={"provider_id": TESTING}, headers=ADMIN)
    missing = await client.get("/admin/account-holders/acchld_missing", headers=ADMIN)
    update_missing = await client.post("/admin/account-holders/acchld_missing", json={}, headers=ADMIN)
    delete_missing = await client.delete("/admin/account-holders/acchld_missing", headers=ADMIN)
    store_key = await client.get("/admin/account-holders", headers=STORE)

    assert unknown_provider.status_code == 404
    assert no_customer.status_code == 400 and "customer" in json_of(no_customer)["message"]
    assert missing.status_code == update_missing.status_code == delete_missing.status_code == 404
    assert store_key.status_code == 401


async def test_saved_payment_methods_through_the_store_and_admin_routes(client: httpx.AsyncClient) -> None:
    body = {"provider_id": TESTING, "customer": {"id": "cus_pm", "email": "grace@example.com"}}
    holder = json_of(await client.post("/admin/account-holders", json=body, headers=ADMIN))["account_holder"]
    base = f"/account-holders/{holder['id']}/payment-methods"

    saved = await client.post(
        f"/store{base}", json={"customer_id": "cus_pm", "data": {"card": "visa_4242"}}, headers=STORE
    )
    assert saved.status_code == 200, saved.text
    method = json_of(saved)["payment_method"]
    assert method["provider_id"] == TESTING and method["data"]["card"] == "visa_4242"
    admin_saved = json_of(await client.post(f"/admin{base}", json={"data": {"card": "mc"}}, headers=ADMIN))

    listed = json_of(await client.get(f"/store{base}", params={"customer_id": "cus_pm"}, headers=STORE))
    assert listed["count"] == 2
    assert {m["id"] for m in listed["payment_methods"]} == {method["id"], admin_saved["payment_method"]["id"]}

    # Another customer's id, a missing customer id, or no key: the holder is not revealed.
    other = await client.get(f"/store{base}", params={"customer_id": "cus_other"}, headers=STORE)
    assert (other.status_code, json_of(other)["type"]) == (404, "not_found")
    assert (await client.get(f"/store{base}", headers=STORE)).status_code == 400
    assert (await client.get(f"/store{base}", params={"customer_id": "cus_pm"})).status_code == 401
    assert (
        await client.get(f"/store{base}", params={"customer_id": "cus_pm"}, headers=ADMIN)
    ).status_code == 401

    removed = await client.delete(
        f"/store{base}/{method['id']}", params={"customer_id": "cus_pm"}, headers=STORE
    )
    assert json_of(removed) == {"id": method["id"], "object": "payment_method", "deleted": True}
    left = json_of(await client.get(f"/admin{base}", headers=ADMIN))
    assert [m["id"] for m in left["payment_methods"]] == [admin_saved["payment_method"]["id"]]
    assert (
        await client.delete(f"/admin{base}/{admin_saved['payment_method']['id']}", headers=ADMIN)
    ).status_code == 200
    assert json_of(await client.get(f"/admin{base}", headers=ADMIN))["count"] == 0
    assert (
        await client.get("/admin/account-holders/acchld_missing/payment-methods", headers=ADMIN)
    ).status_code == 404


async def test_a_provider_without_saved_methods_answers_not_allowed(client: httpx.AsyncClient) -> None:
    body = {"provider_id": SYSTEM, "customer": {"id": "cus_sys"}}
    holder = json_of(await client.post("/admin/account-holders", json=body, headers=ADMIN))["account_holder"]
    base = f"/admin/account-holders/{holder['id']}/payment-methods"
    assert json_of(await client.get(base, headers=ADMIN))["payment_methods"] == []
    refused = await client.post(base, json={"data": {}}, headers=ADMIN)
    assert (refused.status_code, json_of(refused)["type"]) == (400, "not_allowed")
