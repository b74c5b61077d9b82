"""Idempotency-Key on POST, with Stripe's rules (stripe-rules.md E1)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from starlette.datastructures import Headers

from e2e.support import ADMIN, STORE, TESTING_PROVIDER, Api, json_of
from paymod import PaymentModule
from paymod.config import Settings
from paymod.http import create_app
from paymod.http.idempotency import fingerprint, request_scope
from paymod.persistence.api_keys import ApiKeyStore, ApiKeyType
from paymod.persistence.database import AUTOCOMMIT_OPTION
from paymod.persistence.idempotency import IdempotencyStore, Outcome, RequestIdentity
from paymod.persistence.repository import utc_now
from paymod.providers.testing import TestingPaymentProvider


def keyed(key: str, headers: dict[str, str] = ADMIN) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def test_a_retry_replays_the_first_response(api: Api, client: httpx.AsyncClient) -> None:
    first = await client.post(
        "/admin/payment-collections", json={"amount": 10, "currency_code": "usd"}, headers=keyed("create-1")
    )
    retry = await client.post(
        "/admin/payment-collections", json={"currency_code": "usd", "amount": 10}, headers=keyed("create-1")
    )

    assert first.status_code == retry.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content
    listed = json_of(await client.get("/admin/payment-collections", headers=ADMIN))
    assert listed["count"] == 1


async def test_the_same_key_with_other_parameters_is_an_idempotency_error(client: httpx.AsyncClient) -> None:
    await client.post(
        "/admin/payment-collections", json={"amount": 10, "currency_code": "usd"}, headers=keyed("create-2")
    )

    other_body = await client.post(
        "/admin/payment-collections", json={"amount": 11, "currency_code": "usd"}, headers=keyed("create-2")
    )
    other_path = await client.post(
        "/admin/refund-reasons", json={"label": "a", "code": "a"}, headers=keyed("create-2")
    )

    for response in (other_body, other_path):
        assert response.status_code == 400
        assert json_of(response)["type"] == "idempotency_error"
    assert json_of(await client.get("/admin/payment-collections", headers=ADMIN))["count"] == 1
    reasons = json_of(await client.get("/admin/refund-reasons?limit=100", headers=ADMIN))["refund_reasons"]
    assert "a" not in {r["code"] for r in reasons}


async def test_an_error_response_is_stored_and_replayed(api: Api, client: httpx.AsyncClient) -> None:
    payment = await api.payment("10")
    path = f"/admin/payments/{payment['id']}/capture"

    first = await client.post(path, json={"amount": 50}, headers=keyed("capture-too-much"))
    retry = await client.post(path, json={"amount": 50}, headers=keyed("capture-too-much"))

    assert first.status_code == retry.status_code == 400
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()


async def test_a_request_that_failed_validation_is_not_stored(api: Api, client: httpx.AsyncClient) -> None:
    payment = await api.payment("10")
    path = f"/admin/payments/{payment['id']}/capture"

    invalid = await client.post(path, json={"amount": "ten"}, headers=keyed("capture-fixed"))
    fixed = await client.post(path, json={"amount": 4}, headers=keyed("capture-fixed"))

    assert invalid.status_code == 400
    assert fixed.status_code == 200 and "idempotent-replayed" not in fixed.headers
    assert json_of(fixed)["payment"]["captures"][0]["amount"] == 4


async def test_a_request_with_a_wrong_api_key_is_not_stored(client: httpx.AsyncClient) -> None:
    body = {"amount": 10, "currency_code": "usd"}

    refused = await client.post(
        "/admin/payment-collections", json=body, headers=keyed("k", {"Authorization": "Bearer sk_nope"})
    )
    accepted = await client.post("/admin/payment-collections", json=body, headers=keyed("k"))

    assert refused.status_code == 401
    assert accepted.status_code == 200 and "idempotent-replayed" not in accepted.headers


async def test_keys_are_scoped_per_api_key(client: httpx.AsyncClient, module: PaymentModule) -> None:
    other = await ApiKeyStore(module.database).create(ApiKeyType.SECRET, "second admin")
    other_admin = {"Authorization": f"Bearer {other.token}"}

    mine = await client.post(
        "/admin/payment-collections", json={"amount": 1, "currency_code": "usd"}, headers=keyed("shared")
    )
    theirs = await client.post(
        "/admin/payment-collections",
        json={"amount": 2, "currency_code": "usd"},
        headers=keyed("shared", other_admin),
    )

    assert mine.status_code == theirs.status_code == 200
    assert "idempotent-replayed" not in theirs.headers
    assert json_of(theirs)["payment_collection"]["amount"] == 2


async def test_a_key_in_flight_gets_409(api: Api, client: httpx.AsyncClient, module: PaymentModule) -> None:
    collection = await api.collection("10")
    path = f"/store/payment-collections/{collection['id']}/authorize"
    body = b"{}"
    store = IdempotencyStore(module.database)
    identity = RequestIdentity(
        scope=request_scope(path, Headers(STORE)),
        key="checkout",
        method="POST",
        path=path,
        fingerprint=fingerprint(body, b""),
    )
    assert (await store.claim(identity)).outcome is Outcome.CLAIMED

    busy = await client.post(
        path, content=body, headers={**keyed("checkout", STORE), "content-type": "application/json"}
    )

    assert busy.status_code == 409
    assert json_of(busy)["type"] == "conflict"
    assert json_of(busy)["code"] == "idempotency_key_in_use"
    assert busy.headers["retry-after"] == "1"
    await store.release(identity)


async def test_a_retryable_provider_failure_is_not_stored(
    api: Api, testing_provider: TestingPaymentProvider
) -> None:
    collection = await api.collection("10")
    await api.session(collection["id"], data={"scenario": "timeout"})

    first = await api.authorize(collection["id"], {"Idempotency-Key": "timeout-1"})
    retry = await api.authorize(collection["id"], {"Idempotency-Key": "timeout-1"})

    assert first.status_code == retry.status_code == 503
    assert "idempotent-replayed" not in retry.headers
    assert testing_provider.count("authorize_payment") == 2


async def test_ten_concurrent_authorizations_with_one_key_authorize_once(
    api: Api, client: httpx.AsyncClient, testing_provider: TestingPaymentProvider
) -> None:
    collection = await api.collection("99.99")
    session = await api.session(collection["id"])

    responses = await asyncio.gather(
        *(api.authorize(collection["id"], {"Idempotency-Key": "checkout-race"}) for _ in range(10))
    )

    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}, statuses
    executed = [r for r in responses if r.status_code == 200 and "idempotent-replayed" not in r.headers]
    assert len(executed) == 1
    payment_ids = {json_of(r)["payment"]["id"] for r in responses if r.status_code == 200}
    assert len(payment_ids) == 1
    assert testing_provider.calls[("authorize_payment", session["id"])] == 1
    assert testing_provider.count("authorize_payment") == 1
    payments = json_of(await client.get("/admin/payments", headers=ADMIN))
    assert payments["count"] == 1
    # Once the first finished, every retry replays it.
    late = await api.authorize(collection["id"], {"Idempotency-Key": "checkout-race"})
    assert late.status_code == 200 and late.headers["idempotent-replayed"] == "true"


async def test_keys_hold_across_app_instances(
    api: Api, client: httpx.AsyncClient, database_url: str, settings: Settings
) -> None:
    first = await client.post(
        "/admin/payment-collections", json={"amount": 3, "currency_code": "usd"}, headers=keyed("across")
    )
    async with await PaymentModule.connect(
        database_url, providers=[TESTING_PROVIDER], migrate=False
    ) as other:
        other_app: FastAPI = create_app(settings, module=other)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other_app), base_url="http://b") as c:
            retry = await c.post(
                "/admin/payment-collections",
                json={"amount": 3, "currency_code": "usd"},
                headers=keyed("across"),
            )

    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content


async def test_keys_are_kept_24_hours_then_pruned(client: httpx.AsyncClient, module: PaymentModule) -> None:
    await client.post(
        "/admin/payment-collections", json={"amount": 3, "currency_code": "usd"}, headers=keyed("old")
    )
    store = IdempotencyStore(module.database)

    assert await store.prune(now=utc_now() + timedelta(hours=23)) == 0
    assert await store.prune(now=utc_now() + timedelta(hours=24, seconds=1)) == 1
    again = await client.post(
        "/admin/payment-collections", json={"amount": 3, "currency_code": "usd"}, headers=keyed("old")
    )
    assert "idempotent-replayed" not in again.headers
    assert json_of(await client.get("/admin/payment-collections", headers=ADMIN))["count"] == 2


async def test_an_expired_key_is_a_new_key(module: PaymentModule) -> None:
    store = IdempotencyStore(module.database)
    identity = RequestIdentity(scope="s", key="k", method="POST", path="/admin/x", fingerprint="f")
    await store.claim(identity, now=utc_now() - timedelta(hours=25))
    await store.complete(identity, 200, "{}")

    assert (await store.claim(identity)).outcome is Outcome.CLAIMED
    assert (await store.claim(identity)).outcome is Outcome.IN_FLIGHT


@pytest.mark.parametrize("owner", [None, "proc_idempotency"])
async def test_a_new_keys_claim_and_its_response_are_one_statement_each(
    module: PaymentModule, owner: str | None
) -> None:
    """On PostgreSQL a new key's claim and the stored response are single statements, sent without
    BEGIN and COMMIT (each is atomic by itself); SQLite runs each in its write transaction."""
    store = IdempotencyStore(module.database, owner=lambda: owner)
    identity = RequestIdentity(scope="s", key=f"one-{owner}", method="POST", path="/admin/x", fingerprint="f")
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement.split()[0].upper())

    def begin(conn: Any) -> None:
        if not conn.get_execution_options().get(AUTOCOMMIT_OPTION):  # an autocommit read sends none
            sent.append("BEGIN")

    engine = module.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine, "begin", begin)
    try:
        assert (await store.claim(identity)).outcome is Outcome.CLAIMED
        await store.complete(identity, 201, '{"ok":true}')
    finally:
        event.remove(engine, "before_cursor_execute", record)
        event.remove(engine, "begin", begin)
    if module.database.is_postgresql:
        assert sent == ["INSERT", "UPDATE"]
    else:
        assert [s for s in sent if s != "BEGIN"] == ["INSERT", "UPDATE"]
    replay = await store.claim(identity)
    assert (replay.outcome, replay.status, replay.body) == (Outcome.REPLAY, 201, '{"ok":true}')


@pytest.mark.parametrize("length", [0, 256])
async def test_a_key_must_be_1_to_255_characters(client: httpx.AsyncClient, length: int) -> None:
    response = await client.post(
        "/admin/payment-collections", json={"amount": 3, "currency_code": "usd"}, headers=keyed("k" * length)
    )

    assert response.status_code == 400
    assert "Idempotency-Key" in json_of(response)["message"]


async def test_gets_ignore_the_key(api: Api, client: httpx.AsyncClient) -> None:
    await client.get("/admin/payment-collections", headers=keyed("list"))
    await api.collection("1")

    second = await client.get("/admin/payment-collections", headers=keyed("list"))

    assert "idempotent-replayed" not in second.headers
    assert json_of(second)["count"] == 1
