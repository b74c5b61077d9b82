"""`POST /hooks/payment/{provider}`: verified before it is acknowledged, then applied."""

from __future__ import annotations

import json
from typing import Any

import httpx

from e2e.support import ADMIN, SYSTEM, WEBHOOK_SECRET, Api, json_of
from paymod.providers.testing import SIGNATURE_HEADER, sign


async def send(
    client: httpx.AsyncClient, event: dict[str, Any], *, secret: str = WEBHOOK_SECRET
) -> httpx.Response:
    body = json.dumps(event).encode()
    return await client.post(
        "/hooks/payment/testing_default",
        content=body,
        headers={SIGNATURE_HEADER: sign(body, secret), "content-type": "application/json"},
    )


async def test_an_authorized_event_authorizes_the_session(api: Api, client: httpx.AsyncClient) -> None:
    collection = await api.collection("30")
    session = await api.session(collection["id"])

    response = await send(
        client, {"id": "evt_1", "action": "authorized", "session_id": session["id"], "amount": 30}
    )

    assert response.status_code == 200
    assert json_of(response) == {"received": True, "action": "authorized"}
    payments = json_of(await client.get("/admin/payments", headers=ADMIN))["payments"]
    assert [p["payment_session_id"] for p in payments] == [session["id"]]


async def test_a_captured_event_books_the_capture_once(api: Api, client: httpx.AsyncClient) -> None:
    collection = await api.collection("30")
    session = await api.session(collection["id"])
    event = {"id": "evt_2", "action": "captured", "session_id": session["id"], "amount": 30}

    first = await send(client, event)
    again = await send(client, event)

    assert first.status_code == again.status_code == 200
    [payment] = json_of(await client.get("/admin/payments", headers=ADMIN))["payments"]
    assert [c["amount"] for c in payment["captures"]] == [30]
    fetched = json_of(await client.get(f"/admin/payment-collections/{collection['id']}", headers=ADMIN))
    assert fetched["payment_collection"]["status"] == "completed"


async def test_an_event_that_fails_verification_is_400_and_changes_nothing(
    api: Api, client: httpx.AsyncClient
) -> None:
    collection = await api.collection("30")
    session = await api.session(collection["id"])

    forged = await send(
        client, {"id": "evt_3", "action": "captured", "session_id": session["id"]}, secret="not the secret"
    )

    assert forged.status_code == 400
    assert json_of(forged)["type"] == "invalid_data"
    assert json_of(await client.get("/admin/payments", headers=ADMIN))["count"] == 0


async def test_providers_without_webhooks_and_unknown_providers(client: httpx.AsyncClient) -> None:
    system = await client.post(f"/hooks/payment/{SYSTEM}", json={"anything": 1})
    unknown = await client.post("/hooks/payment/nope_nope", json={})

    assert system.status_code == 200
    assert json_of(system) == {"received": True, "action": "not_supported"}
    assert unknown.status_code == 404


async def test_an_event_for_an_unknown_session_is_acknowledged(client: httpx.AsyncClient) -> None:
    response = await send(client, {"id": "evt_4", "action": "authorized", "session_id": "payses_missing"})

    assert response.status_code == 200
