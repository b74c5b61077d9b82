"""`POST /hooks/payment/{provider}` on its own (no worker runs here): verified, stored, acknowledged.

What the worker then does with a stored event is in test_webhooks_http.py.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from e2e.support import ADMIN, SYSTEM, WEBHOOK_SECRET, Api, json_of
from paymod import PaymentModule
from paymod.providers.testing import SIGNATURE_HEADER, sign
from paymod.webhooks.inbox import list_webhook_events, process_webhook_event


async def send(
    client: httpx.AsyncClient, event: dict[str, Any], *, secret: str = WEBHOOK_SECRET
) -> httpx.Response:
    body = json.dumps(event).encode()
    return await client.post(
        "/hooks/payment/testing_default",
        content=body,
        headers={SIGNATURE_HEADER: sign(body, secret), "content-type": "application/json"},
    )


async def test_a_verified_event_is_stored_for_the_worker_and_acknowledged(
    api: Api, client: httpx.AsyncClient, module: PaymentModule
) -> None:
    collection = await api.collection("30")
    session = await api.session(collection["id"])

    response = await send(
        client, {"id": "evt_1", "action": "authorized", "session_id": session["id"], "amount": 30}
    )

    assert response.status_code == 200
    answer = json_of(response)
    assert answer == {"received": True, "action": "authorized", "id": answer["id"], "duplicate": False}
    [stored] = await list_webhook_events(module)
    assert (stored["id"], stored["event_id"], stored["status"], stored["session_id"]) == (
        answer["id"],
        "evt_1",
        "pending",
        session["id"],
    )
    # Applying it is the worker's job, not the request's.
    assert json_of(await client.get("/admin/payments", headers=ADMIN))["count"] == 0


async def test_a_duplicate_delivery_is_acknowledged_and_not_stored_again(
    api: Api, client: httpx.AsyncClient, module: PaymentModule
) -> None:
    collection = await api.collection("30")
    session = await api.session(collection["id"])
    event = {"id": "evt_2", "action": "captured", "session_id": session["id"], "amount": 30}

    first = json_of(await send(client, event))
    again = json_of(await send(client, event))

    assert (first["duplicate"], again["duplicate"], again["id"]) == (False, True, first["id"])
    assert len(await list_webhook_events(module)) == 1


async def test_an_event_that_fails_verification_is_400_and_not_stored(
    api: Api, client: httpx.AsyncClient, module: PaymentModule
) -> None:
    collection = await api.collection("30")
    session = await api.session(collection["id"])

    forged = await send(
        client, {"id": "evt_3", "action": "captured", "session_id": session["id"]}, secret="not the secret"
    )

    assert forged.status_code == 400
    assert json_of(forged)["type"] == "invalid_data"
    assert await list_webhook_events(module) == []


async def test_providers_without_webhooks_and_unknown_providers(
    client: httpx.AsyncClient, module: PaymentModule
) -> None:
    system = await client.post(f"/hooks/payment/{SYSTEM}", json={"anything": 1})
    unknown = await client.post("/hooks/payment/nope_nope", json={})

    assert system.status_code == 200
    assert (json_of(system)["action"], json_of(system)["id"]) == ("not_supported", "")
    # The system provider verifies nothing and names no event: such a call is not stored.
    assert await list_webhook_events(module) == []
    assert unknown.status_code == 404


async def test_an_event_for_an_unknown_session_is_acknowledged_stored_and_then_ignored(
    client: httpx.AsyncClient, module: PaymentModule
) -> None:
    response = await send(client, {"id": "evt_4", "action": "authorized", "session_id": "payses_missing"})

    assert response.status_code == 200
    assert (json_of(response)["action"], json_of(response)["duplicate"]) == ("authorized", False)
    # Verified, so stored for the worker like any other event, with what the provider said...
    [stored] = await list_webhook_events(module)
    assert (stored["id"], stored["event_id"], stored["session_id"]) == (
        json_of(response)["id"],
        "evt_4",
        "payses_missing",
    )
    assert (stored["action"], stored["status"], stored["attempts"]) == ("authorized", "pending", 0)
    # ...and applying it changes nothing: like Medusa, a report about a session that is not ours is ignored.
    assert await process_webhook_event(module, stored) == "ignored"
    assert await module.list_payment_sessions() == []


async def _send_raw(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post(
        "/hooks/payment/testing_default",
        content=body,
        headers={SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET), "content-type": "application/json"},
    )


async def test_signed_but_malformed_events_are_refused_and_stored_nowhere(
    api: Api, client: httpx.AsyncClient, module: PaymentModule
) -> None:
    """A valid signature says who sent an event, not that it is sane: each of these used to be a 500."""
    collection = await api.collection("30")
    session = await api.session(collection["id"])
    event = {"id": "evt_bad", "action": "captured", "session_id": session["id"], "amount": 30}
    bodies = [
        # JSON has no NaN or Infinity, but Python's json module writes them
        json.dumps({**event, "amount": float("nan")}).encode(),
        json.dumps({**event, "amount": "NaN"}).encode(),
        json.dumps({**event, "amount": "Infinity"}).encode(),
        json.dumps({**event, "amount": "-inf"}).encode(),
        json.dumps({**event, "amount": "1e400"}).encode(),
        json.dumps({**event, "amount": {"value": 1}}).encode(),
        json.dumps({**event, "amount": True}).encode(),
        json.dumps({**event, "id": 12345}).encode(),
        json.dumps({**event, "id": {"nested": "object"}}).encode(),
        json.dumps({**event, "session_id": ["payses_x"]}).encode(),
        json.dumps({**event, "session_id": 7}).encode(),
        json.dumps({**event, "id": "evt_" + "x" * 3000}).encode(),
        json.dumps({**event, "session_id": "payses_" + "y" * 3000}).encode(),
        json.dumps({**event, "id": "evt\u0000nul"}).encode(),
        json.dumps([event]).encode(),
    ]

    for body in bodies:
        response = await _send_raw(client, body)
        assert response.status_code == 400, (body[:80], response.text)
        answer = json_of(response)
        assert answer["type"] == "invalid_data", answer
        assert answer["code"] == "invalid_webhook", answer

    assert await list_webhook_events(module) == []
    # a sane event with the same signature scheme still goes through
    assert (await _send_raw(client, json.dumps(event).encode())).status_code == 200
