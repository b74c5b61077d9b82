"""Region ↔ provider links, account holders (admin) and their saved payment methods (store, admin)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from e2e.support import (
    ADMIN,
    ADMIN_KEY,
    PUBLISHABLE_KEY,
    STORE,
    SYSTEM,
    TESTING,
    TESTING_PROVIDER,
    json_of,
)
from paymod import PaymentModule
from paymod.config import ProviderSettings, Settings, StoreSettings
from paymod.http import create_app
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


async def _holder(client: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    body = {"provider_id": TESTING, "customer": {"id": customer_id, "email": "grace@example.com"}}
    response = await client.post("/admin/account-holders", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    holder: dict[str, Any] = json_of(response)["account_holder"]
    return holder


async def _ephemeral_key(client: httpx.AsyncClient, holder_id: str, **body: Any) -> dict[str, Any]:
    response = await client.post(
        f"/admin/account-holders/{holder_id}/ephemeral-keys", json=body, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    key: dict[str, Any] = json_of(response)["ephemeral_key"]
    return key


async def test_saved_payment_methods_through_the_store_with_an_ephemeral_key_and_the_admin_routes(
    client: httpx.AsyncClient,
) -> None:
    holder = await _holder(client, "cus_pm")
    base = f"/account-holders/{holder['id']}/payment-methods"
    key = await _ephemeral_key(client, holder["id"])
    assert key["secret"].startswith("ek_") and key["account_holder_id"] == holder["id"]
    shopper = {**STORE, "Authorization": f"Bearer {key['secret']}"}

    saved = await client.post(f"/store{base}", json={"data": {"card": "visa_4242"}}, headers=shopper)
    assert saved.status_code == 200, saved.text
    method = json_of(saved)["payment_method"]
    assert method["provider_id"] == TESTING and method["data"]["card"] == "visa_4242"
    admin_saved = json_of(await client.post(f"/admin{base}", json={"data": {"card": "mc"}}, headers=ADMIN))

    listed = json_of(await client.get(f"/store{base}", headers=shopper))
    assert listed["count"] == 2
    assert {m["id"] for m in listed["payment_methods"]} == {method["id"], admin_saved["payment_method"]["id"]}

    removed = await client.delete(f"/store{base}/{method['id']}", headers=shopper)
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
    missing = await client.post("/admin/account-holders/acchld_missing/ephemeral-keys", headers=ADMIN)
    assert missing.status_code == 404


async def test_the_store_needs_the_holders_own_ephemeral_key_whatever_customer_id_it_claims(
    client: httpx.AsyncClient, module: PaymentModule
) -> None:
    """A storefront's `customer_id` is the shopper's word: without the server's `trust_customer_id`
    it is ignored, and only an ephemeral key made for this holder, unexpired, opens its methods."""
    holder = await _holder(client, "cus_mine")
    other = await _holder(client, "cus_theirs")
    base = f"/store/account-holders/{holder['id']}/payment-methods"
    others_key = await _ephemeral_key(client, other["id"])
    short_key = await _ephemeral_key(client, holder["id"], expires_in=60)

    attempts = [
        {},  # no key: the old way, customer id only
        {"Authorization": f"Bearer {others_key['secret']}"},  # another holder's key
        {"Authorization": "Bearer ek_forged"},
        {"Authorization": f"Bearer {ADMIN_KEY}"},  # a secret API key is not an ephemeral key
    ]
    for headers in attempts:
        response = await client.get(base, params={"customer_id": "cus_mine"}, headers={**STORE, **headers})
        assert (response.status_code, json_of(response)["type"]) == (401, "unauthorized"), headers
    saved = await client.post(base, json={"customer_id": "cus_mine", "data": {}}, headers=STORE)
    assert saved.status_code == 401
    # an ephemeral key without the publishable key is not a store request
    no_store_key = await client.get(base, headers={"Authorization": f"Bearer {short_key['secret']}"})
    assert no_store_key.status_code == 401
    assert (
        await client.get(base, headers={**STORE, "Authorization": f"Bearer {short_key['secret']}"})
    ).status_code == 200
    # an expired key opens nothing
    async with module.database.write() as conn:
        await conn.execute(text("UPDATE ephemeral_key SET expires_at = created_at"))
    expired = await client.get(base, headers={**STORE, "Authorization": f"Bearer {short_key['secret']}"})
    assert expired.status_code == 401
    for refused in (
        await client.post(
            f"/admin/account-holders/{holder['id']}/ephemeral-keys", json={"expires_in": 10}, headers=ADMIN
        ),
        await client.post(f"/admin/account-holders/{holder['id']}/ephemeral-keys", headers=STORE),
    ):
        assert refused.status_code in (400, 401)


async def test_trusting_the_customer_id_is_an_explicit_option(module: PaymentModule) -> None:
    """`[store] trust_customer_id = true` keeps the earlier behaviour for backends that check the
    shopper themselves: the holder must belong to the customer id given."""
    settings = Settings(
        config=None,
        admin_api_key=ADMIN_KEY,
        publishable_api_key=PUBLISHABLE_KEY,
        providers=[ProviderSettings(**TESTING_PROVIDER)],
        store=StoreSettings(trust_customer_id=True),
    )
    app = create_app(settings, module=module)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://paymod.test"
    ) as client:
        holder = await _holder(client, "cus_pm")
        base = f"/store/account-holders/{holder['id']}/payment-methods"
        saved = await client.post(
            base, json={"customer_id": "cus_pm", "data": {"card": "visa"}}, headers=STORE
        )
        assert saved.status_code == 200, saved.text
        listed = await client.get(base, params={"customer_id": "cus_pm"}, headers=STORE)
        assert json_of(listed)["count"] == 1
        other = await client.get(base, params={"customer_id": "cus_other"}, headers=STORE)
        assert (other.status_code, json_of(other)["type"]) == (404, "not_found")
        assert (await client.get(base, headers=STORE)).status_code == 400
        assert (await client.get(base, params={"customer_id": "cus_pm"})).status_code == 401


async def test_a_provider_without_saved_methods_answers_not_allowed(client: httpx.AsyncClient) -> None:
    body = {"provider_id": SYSTEM, "customer": {"id": "cus_sys"}}
    holder = json_of(await client.post("/admin/account-holders", json=body, headers=ADMIN))["account_holder"]
    base = f"/admin/account-holders/{holder['id']}/payment-methods"
    assert json_of(await client.get(base, headers=ADMIN))["payment_methods"] == []
    refused = await client.post(base, json={"data": {}}, headers=ADMIN)
    assert (refused.status_code, json_of(refused)["type"]) == (400, "not_allowed")
