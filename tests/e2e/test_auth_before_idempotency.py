"""The Idempotency-Key middleware verifies the API key before it claims the key: a request with a
wrong or missing key gets its 401 without a database write, and a verified request is verified
once (the route reuses the middleware's verification)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event, func, select

from e2e.support import ADMIN, STORE, TESTING, Api, json_of
from paymod import PaymentModule
from paymod.persistence import tables as t
from paymod.persistence.api_keys import ApiKeyStore, ApiKeyType

WRITES = ("INSERT", "UPDATE", "DELETE", "BEGIN IMMEDIATE")


@contextmanager
def statements(module: PaymentModule) -> Iterator[list[str]]:
    """The SQL statements the module's engine sends while the block runs."""
    sent: list[str] = []
    engine = module.database.engine.sync_engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def writes(sent: list[str]) -> list[str]:
    return [s for s in sent if s.upper().startswith(WRITES) or "FOR UPDATE" in s.upper()]


async def idempotency_rows(module: PaymentModule) -> int:
    async with module.database.read() as conn:
        count = (await conn.execute(select(func.count()).select_from(t.idempotency_key))).scalar_one()
    return int(count)


def keyed(key: str, headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def test_an_unauthenticated_keyed_post_gets_401_without_a_write(
    api: Api, client: httpx.AsyncClient, module: PaymentModule
) -> None:
    collection = await api.collection("10")
    body = {"amount": 10, "currency_code": "usd"}
    authorize = f"/store/payment-collections/{collection['id']}/authorize"
    refused_requests = [
        ("/admin/payment-collections", {}),
        ("/admin/payment-collections", {"Authorization": "Bearer sk_wrong"}),
        ("/admin/payment-collections", {"Authorization": "Basic c2tfZTJlOng="}),
        ("/admin/payment-collections", STORE),  # a publishable key is not a secret key
        ("/admin/payments/pay_unknown/capture", {"Authorization": "Bearer"}),
        (authorize, {}),
        (authorize, {"x-publishable-api-key": "pk_wrong"}),
        (authorize, ADMIN),  # a secret key is not a publishable key
    ]

    with statements(module) as sent:
        for n, (path, headers) in enumerate(refused_requests):
            response = await client.post(path, json=body, headers=keyed(f"refused-{n}", headers))
            assert response.status_code == 401, (path, headers, response.text)
            assert json_of(response) == {
                "type": "unauthorized",
                "code": "unauthorized",
                "message": "Unauthorized",
            }

    assert writes(sent) == []
    assert not any("idempotency_key" in s for s in sent)
    assert await idempotency_rows(module) == 0


async def test_the_same_key_works_once_authenticated(
    api: Api, client: httpx.AsyncClient, module: PaymentModule
) -> None:
    body = {"amount": 10, "currency_code": "usd"}

    refused = await client.post(
        "/admin/payment-collections", json=body, headers=keyed("k1", {"Authorization": "Bearer sk_no"})
    )
    first = await client.post("/admin/payment-collections", json=body, headers=keyed("k1", ADMIN))
    retry = await client.post("/admin/payment-collections", json=body, headers=keyed("k1", ADMIN))

    assert refused.status_code == 401
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    assert retry.headers["idempotent-replayed"] == "true" and retry.content == first.content
    assert await idempotency_rows(module) == 1
    assert json_of(await client.get("/admin/payment-collections", headers=ADMIN))["count"] == 1


async def test_a_stored_key_is_verified_once_per_request(
    client: httpx.AsyncClient, module: PaymentModule
) -> None:
    created = await ApiKeyStore(module.database).create(ApiKeyType.SECRET, "a stored admin key")
    admin = {"Authorization": f"Bearer {created.token}"}
    body = {"amount": 10, "currency_code": "usd"}

    with statements(module) as sent:
        response = await client.post("/admin/payment-collections", json=body, headers=keyed("once", admin))
    with statements(module) as unkeyed:
        plain = await client.post("/admin/payment-collections", json=body, headers=admin)

    assert response.status_code == plain.status_code == 200
    assert len([s for s in sent if "FROM api_key" in s]) == 1, sent
    assert len([s for s in unkeyed if "FROM api_key" in s]) == 1, unkeyed


async def test_store_and_hook_posts_keep_their_idempotency(
    api: Api, client: httpx.AsyncClient, module: PaymentModule
) -> None:
    collection = await api.collection("10")
    await api.session(collection["id"], provider_id=TESTING)

    first = await api.authorize(collection["id"], {"Idempotency-Key": "checkout"})
    retry = await api.authorize(collection["id"], {"Idempotency-Key": "checkout"})
    assert first.status_code == 200, first.text
    assert retry.headers["idempotent-replayed"] == "true" and retry.content == first.content

    # Hooks need no API key (the provider's signature is their authentication): not a 401.
    hook = await client.post(
        f"/hooks/payment/{TESTING}", json={"type": "x"}, headers={"Idempotency-Key": "hook-1"}
    )
    assert hook.status_code == 400, hook.text
    assert json_of(hook)["type"] == "invalid_data"


async def test_a_keyed_post_outside_the_api_writes_nothing(
    client: httpx.AsyncClient, module: PaymentModule
) -> None:
    with statements(module) as sent:
        response = await client.post("/nowhere", json={}, headers={"Idempotency-Key": "lost"})
        health = await client.post("/health", json={}, headers={"Idempotency-Key": "lost"})

    assert response.status_code == 404
    assert health.status_code == 405
    assert sent == []
    assert await idempotency_rows(module) == 0
