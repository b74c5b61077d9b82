"""Webhooks through HTTP, on SQLite and PostgreSQL: `POST /hooks/payment/{provider}` verifies and stores,
the app's in-process worker (started by its lifespan, as `paymod serve` starts it) applies the event;
the admin routes list and replay stored events and manage the endpoints that receive paymod's events.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from e2e.support import ADMIN, TESTING_PROVIDER, WEBHOOK_SECRET, Api, json_of
from paymod import PaymentModule
from paymod.config import Settings, WorkerSettings
from paymod.http import create_app
from paymod.http.state import AppState
from paymod.persistence.tables import webhook_delivery, webhook_event
from paymod.providers.testing import SIGNATURE_HEADER, sign
from paymod.webhooks import verify_signature
from paymod.webhooks.inbox import retrieve_webhook_event
from paymod.webhooks.worker import Worker

STRIPE_SECRET = "whsec_e2e_stripe"
# Stripe's webhooks are verified locally (no API call for these events): the API is never reached.
STRIPE_PROVIDER = {
    "resolve": "paymod.providers.stripe",
    "id": "stripe",
    "options": {
        "api_key": "sk_test_e2e_unused",
        "webhook_secret": STRIPE_SECRET,
        "api_base": "http://127.0.0.1:9",
        "max_network_retries": 0,
    },
}
WAIT_SECONDS = 30.0


@dataclass
class Service:
    module: PaymentModule
    app: FastAPI
    client: httpx.AsyncClient
    api: Api


@asynccontextmanager
async def service(
    database_url: str, settings: Settings, *, retries: int = 3, worker: bool = True
) -> AsyncIterator[Service]:
    """The app running (lifespan included, so with its in-process worker) on its own module."""
    async with await PaymentModule.connect(
        database_url,
        providers=[TESTING_PROVIDER, STRIPE_PROVIDER],
        options={"webhook_delay": 0, "webhook_retries": retries},
        migrate=False,
    ) as module:
        app = create_app(
            settings.model_copy(update={"worker": WorkerSettings(enabled=worker, poll_interval=0.05)}),
            module=module,
        )
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://paymod.test") as c,
        ):
            yield Service(module, app, c, Api(c))


@pytest.fixture
async def served(database_url: str, settings: Settings) -> AsyncIterator[Service]:
    async with service(database_url, settings) as running:
        yield running


def signed(event: dict[str, Any], secret: str = WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    return body, {SIGNATURE_HEADER: sign(body, secret), "content-type": "application/json"}


async def deliver(client: httpx.AsyncClient, event: dict[str, Any], secret: str = WEBHOOK_SECRET) -> Any:
    body, headers = signed(event, secret)
    response = await client.post("/hooks/payment/testing_default", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return json_of(response)


async def settled(module: PaymentModule, id: str, status: str = "processed") -> dict[str, Any]:
    """The stored event once it reached `status` (bounded wait)."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            row = await retrieve_webhook_event(module, id)
            if row["status"] == status:
                return row
            await asyncio.sleep(0.02)


async def stored_events(module: PaymentModule) -> int:
    async with module.database.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(webhook_event))).scalar_one())


async def payments_of(client: httpx.AsyncClient, collection_id: str) -> list[dict[str, Any]]:
    response = await client.get(
        "/admin/payments", params={"payment_collection_id": collection_id}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    payments: list[dict[str, Any]] = json_of(response)["payments"]
    return payments


def stripe_signed(event: dict[str, Any], *, at: int | None = None) -> tuple[bytes, dict[str, str]]:
    """Signed like Stripe does: `Stripe-Signature: t=<unix>,v1=<HMAC-SHA256 of "t.body">`."""
    body = json.dumps(event).encode()
    moment = int(time.time()) if at is None else at
    digest = hmac.new(STRIPE_SECRET.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={moment},v1={digest}", "content-type": "application/json"}


def stripe_event(event_id: str, session_id: str, amount: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": "pi_e2e",
                "object": "payment_intent",
                "amount": amount,
                "amount_received": amount,
                "currency": "usd",
                "status": "succeeded",
                "metadata": {"session_id": session_id},
            }
        },
    }


# -- inbound ------------------------------------------------------------------------------------
async def test_a_signed_event_is_stored_answered_and_applied_by_the_in_process_worker(
    served: Service,
) -> None:
    collection = await served.api.collection("30")
    session = await served.api.session(collection["id"])

    answer = await deliver(
        served.client, {"id": "evt_ok", "action": "authorized", "session_id": session["id"], "amount": 30}
    )

    assert answer["received"] is True and answer["action"] == "authorized"
    assert answer["duplicate"] is False and answer["id"].startswith("whev_")
    event = await settled(served.module, answer["id"])
    assert (event["event_id"], event["attempts"], event["last_error"]) == ("evt_ok", 1, None)
    [payment] = await payments_of(served.client, collection["id"])
    assert payment["payment_session_id"] == session["id"]


@pytest.mark.parametrize("forgery", ["tampered", "wrong-secret", "unsigned"])
async def test_an_event_that_does_not_verify_is_400_and_not_stored(served: Service, forgery: str) -> None:
    collection = await served.api.collection("30")
    session = await served.api.session(collection["id"])
    body, headers = signed(
        {"id": "evt_bad", "action": "captured", "session_id": session["id"], "amount": 3},
        "not the secret" if forgery == "wrong-secret" else WEBHOOK_SECRET,
    )
    if forgery == "tampered":
        body = body.replace(b'"amount": 3', b'"amount": 30')
    if forgery == "unsigned":
        del headers[SIGNATURE_HEADER]

    response = await served.client.post("/hooks/payment/testing_default", content=body, headers=headers)

    assert response.status_code == 400
    assert json_of(response)["type"] == "invalid_data"
    assert json_of(response)["code"] == "invalid_signature"
    assert await stored_events(served.module) == 0
    assert await payments_of(served.client, collection["id"]) == []


async def test_a_stale_stripe_signature_is_400_and_a_fresh_one_is_stored(served: Service) -> None:
    """The testing provider's signature has no timestamp; Stripe's has one, checked with 300 s tolerance.

    (The event names a session paymod does not know, so once stored it is processed as `ignored`:
    creating a real Stripe session would need Stripe; tests/stripe does that against localstripe.)
    """
    event = stripe_event("evt_stripe_1", "payses_not_here", 1234)

    stale_body, stale_headers = stripe_signed(event, at=int(time.time()) - 301)
    stale = await served.client.post(
        "/hooks/payment/stripe_stripe", content=stale_body, headers=stale_headers
    )
    assert stale.status_code == 400
    assert json_of(stale)["code"] == "invalid_signature"
    assert await stored_events(served.module) == 0

    fresh_body, fresh_headers = stripe_signed(event)
    fresh = await served.client.post(
        "/hooks/payment/pp_stripe_stripe", content=fresh_body, headers=fresh_headers
    )
    assert fresh.status_code == 200, fresh.text
    assert json_of(fresh)["action"] == "captured"
    row = await settled(served.module, json_of(fresh)["id"], "ignored")
    assert (row["provider_id"], row["event_id"], row["session_id"], row["amount"]) == (
        "pp_stripe_stripe",
        "evt_stripe_1",
        "payses_not_here",
        Decimal("12.34"),
    )


async def test_ten_concurrent_deliveries_of_one_event_are_stored_and_applied_once(served: Service) -> None:
    collection = await served.api.collection("100")
    session = await served.api.session(collection["id"])
    event = {"id": "evt_dup", "action": "captured", "session_id": session["id"], "amount": 100}

    answers = await asyncio.gather(*(deliver(served.client, event) for _ in range(10)))

    assert sorted(a["duplicate"] for a in answers) == [False] + [True] * 9
    assert len({a["id"] for a in answers}) == 1
    row = await settled(served.module, answers[0]["id"])
    assert row["attempts"] == 1
    assert await stored_events(served.module) == 1
    [payment] = await payments_of(served.client, collection["id"])
    assert [c["amount"] for c in payment["captures"]] == [100]


async def test_captured_before_authorized_ends_captured_once(served: Service) -> None:
    collection = await served.api.collection("40")
    session = await served.api.session(collection["id"])

    captured = await deliver(
        served.client, {"id": "evt_cap", "action": "captured", "session_id": session["id"], "amount": 40}
    )
    await settled(served.module, captured["id"])
    authorized = await deliver(
        served.client, {"id": "evt_auth", "action": "authorized", "session_id": session["id"], "amount": 40}
    )
    await settled(served.module, authorized["id"])

    [payment] = await payments_of(served.client, collection["id"])
    assert [c["amount"] for c in payment["captures"]] == [40]
    assert payment["captured_at"] is not None
    fetched = json_of(
        await served.client.get(f"/admin/payment-collections/{collection['id']}", headers=ADMIN)
    )
    assert fetched["payment_collection"]["status"] == "completed"
    assert fetched["payment_collection"]["captured_amount"] == 40


async def test_a_webhook_racing_a_checkout_and_an_admin_capture_pays_once(
    served: Service, database: str
) -> None:
    """The provider reports the capture while the storefront authorizes and the merchant captures."""
    rounds = 10 if database == "postgresql" else 4
    for round_ in range(rounds):
        collection = await served.api.collection("100")
        session = await served.api.session(collection["id"])
        event = {"id": f"evt_race_{round_}", "action": "captured", "session_id": session["id"], "amount": 100}
        key = {"Idempotency-Key": f"checkout-{round_}-{collection['id']}"}

        # The rounds interleave differently: the webhook or the checkout gets a growing head start.
        webhook_wait, checkout_wait = (0.025 * round_, 0.0) if round_ % 2 == 0 else (0.0, 0.01 * round_)

        async def webhook(event: dict[str, Any] = event, wait: float = webhook_wait) -> Any:
            await asyncio.sleep(wait)
            return await deliver(served.client, event)

        async def checkout(
            collection_id: str = collection["id"], key: dict[str, str] = key, wait: float = checkout_wait
        ) -> None:
            await asyncio.sleep(wait)
            async with asyncio.timeout(WAIT_SECONDS):
                while True:
                    authorized = await served.api.authorize(collection_id, key)
                    if authorized.status_code != 409:  # a concurrent completion: retry with the same key
                        break
                    await asyncio.sleep(0.02)
            assert authorized.status_code == 200, authorized.text
            captured = await served.api.capture(json_of(authorized)["payment"]["id"])
            assert captured.status_code == 200, captured.text

        received, _ = await asyncio.gather(webhook(), checkout())
        await settled(served.module, received["id"])

        [payment] = await payments_of(served.client, collection["id"])
        captured_total = sum(Decimal(str(c["amount"])) for c in payment["captures"])
        assert captured_total == Decimal(100) <= Decimal(str(payment["amount"]))
        fetched = await served.client.get(f"/admin/payment-collections/{collection['id']}", headers=ADMIN)
        document = json_of(fetched)["payment_collection"]
        assert document["captured_amount"] == document["authorized_amount"] == 100
        assert document["status"] == "completed"


async def test_a_failed_event_is_listed_and_replayed_through_the_admin_api(
    database_url: str, settings: Settings
) -> None:
    async with service(database_url, settings, retries=0) as served:
        collection = await served.api.collection("25")
        session = await served.api.session(collection["id"], data={"scenario": "pending_authorization"})
        answer = await deliver(
            served.client,
            {"id": "evt_early", "action": "captured", "session_id": session["id"], "amount": 25},
        )
        await settled(served.module, answer["id"], "failed")

        listed = await served.client.get("/admin/webhook-events", params={"status": "failed"}, headers=ADMIN)
        assert listed.status_code == 200
        page = json_of(listed)
        assert (page["count"], page["offset"], page["limit"]) == (1, 0, 20)
        [event] = page["webhook_events"]
        assert (event["id"], event["status"], event["attempts"], event["action"]) == (
            answer["id"],
            "failed",
            1,
            "captured",
        )
        assert "not authorized yet" in event["last_error"]
        assert "payload" not in event  # the raw body and headers only on request
        with_payload = json_of(
            await served.client.get("/admin/webhook-events", params={"fields": "+payload"}, headers=ADMIN)
        )
        assert json.loads(with_payload["webhook_events"][0]["payload"]["body"])["id"] == "evt_early"
        processed = json_of(
            await served.client.get("/admin/webhook-events", params={"status": "processed"}, headers=ADMIN)
        )
        assert processed["count"] == 0 and processed["webhook_events"] == []

        # The customer's payment arrives at the provider; the operator replays the parked event.
        await served.module.update_payment_session({"id": session["id"], "data": {"payment_received": True}})
        replayed = await served.client.post(f"/admin/webhook-events/{answer['id']}/replay", headers=ADMIN)
        assert replayed.status_code == 200, replayed.text
        assert json_of(replayed)["webhook_event"]["status"] in ("pending", "processed")
        await settled(served.module, answer["id"])
        [payment] = await payments_of(served.client, collection["id"])
        assert [c["amount"] for c in payment["captures"]] == [25]

        missing = await served.client.post("/admin/webhook-events/whev_missing/replay", headers=ADMIN)
        assert missing.status_code == 404 and json_of(missing)["type"] == "not_found"
        assert (await served.client.get("/admin/webhook-events")).status_code == 401
        assert (
            await served.client.get("/admin/webhook-events", params={"status": "lost"}, headers=ADMIN)
        ).status_code == 400


async def test_without_the_in_process_worker_events_wait_for_a_worker(
    database_url: str, settings: Settings
) -> None:
    """`paymod serve --no-worker`: the replica stores and answers; a separate worker applies."""
    async with service(database_url, settings, worker=False) as served:
        state: AppState = served.app.state.paymod
        assert state.worker is None
        collection = await served.api.collection("10")
        session = await served.api.session(collection["id"])
        answer = await deliver(
            served.client, {"id": "evt_later", "action": "authorized", "session_id": session["id"]}
        )
        assert (await retrieve_webhook_event(served.module, answer["id"]))["status"] == "pending"

        worker = Worker(served.module)
        try:
            assert await worker.run_once() > 0
        finally:
            await worker.close()
        assert (await retrieve_webhook_event(served.module, answer["id"]))["status"] == "processed"
        assert len(await payments_of(served.client, collection["id"])) == 1


# -- outbound endpoints -------------------------------------------------------------------------
@asynccontextmanager
async def receiver() -> AsyncIterator[tuple[str, asyncio.Queue[tuple[dict[str, str], bytes]]]]:
    """A loopback HTTP receiver (plain asyncio) that answers 200 and queues what it got."""
    got: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        got.put_nowait((headers, body))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/paymod", got
    finally:
        server.close()
        await server.wait_closed()


async def test_webhook_endpoints_are_created_listed_deleted_and_receive_signed_events(
    served: Service,
) -> None:
    async with receiver() as (url, got):
        created = await served.client.post(
            "/admin/webhook-endpoints",
            json={"url": url, "events": ["payment.payment-collection.created"], "description": "e2e"},
            headers=ADMIN,
        )
        assert created.status_code == 200, created.text
        endpoint = json_of(created)["webhook_endpoint"]
        assert endpoint["id"].startswith("we_") and endpoint["secret"].startswith("whsec_")
        assert (endpoint["url"], endpoint["events"], endpoint["enabled"]) == (
            url,
            ["payment.payment-collection.created"],
            True,
        )

        listed = json_of(await served.client.get("/admin/webhook-endpoints", headers=ADMIN))
        assert (listed["count"], [e["id"] for e in listed["webhook_endpoints"]]) == (1, [endpoint["id"]])
        assert "secret" not in listed["webhook_endpoints"][0]  # returned only on create

        # The in-process worker delivers the event, signed with the secret returned on create.
        collection = await served.api.collection("5")
        async with asyncio.timeout(WAIT_SECONDS):
            headers, body = await got.get()
        verify_signature(body, headers["paymod-signature"], endpoint["secret"])
        delivered = json.loads(body)
        assert (delivered["type"], delivered["data"]) == (
            "payment.payment-collection.created",
            {"id": collection["id"]},
        )
        assert headers["paymod-event-id"] == delivered["id"]

        deleted = await served.client.delete(f"/admin/webhook-endpoints/{endpoint['id']}", headers=ADMIN)
        assert json_of(deleted) == {"id": endpoint["id"], "object": "webhook_endpoint", "deleted": True}
        assert json_of(await served.client.get("/admin/webhook-endpoints", headers=ADMIN))["count"] == 0
        again = await served.client.delete(f"/admin/webhook-endpoints/{endpoint['id']}", headers=ADMIN)
        assert again.status_code == 404

    for invalid in (
        {"url": "ftp://shop.example/hook"},
        {"url": "https://shop.example/hook", "events": []},
        {"url": "https://shop.example/hook", "events": ["Not An Event"]},
        {"url": "https://shop.example/hook", "secret": "mine"},
    ):
        refused = await served.client.post("/admin/webhook-endpoints", json=invalid, headers=ADMIN)
        assert refused.status_code == 400, invalid
        assert json_of(refused)["type"] == "invalid_data"
    everything = await served.client.post(
        "/admin/webhook-endpoints", json={"url": "https://shop.example/hook"}, headers=ADMIN
    )
    assert json_of(everything)["webhook_endpoint"]["events"] == ["*"]


async def test_deleting_an_endpoint_drops_its_queued_deliveries(
    database_url: str, settings: Settings
) -> None:
    async with service(database_url, settings, worker=False) as served:
        created = await served.client.post(
            "/admin/webhook-endpoints", json={"url": "http://127.0.0.1:9/nobody-listens"}, headers=ADMIN
        )
        endpoint = json_of(created)["webhook_endpoint"]
        await served.api.collection("5")
        worker = Worker(served.module)
        try:
            await worker.run_once()  # queues the deliveries and tries them: refused, to be retried later
        finally:
            await worker.close()
        assert {d["status"] for d in await deliveries(served.module)} == {"pending"}

        deleted = await served.client.delete(f"/admin/webhook-endpoints/{endpoint['id']}", headers=ADMIN)

        assert deleted.status_code == 200
        assert {(d["status"], d["last_error"]) for d in await deliveries(served.module)} == {
            ("failed", "endpoint deleted")
        }


async def deliveries(module: PaymentModule) -> list[dict[str, Any]]:
    async with module.database.read() as conn:
        return [dict(r) for r in (await conn.execute(select(webhook_delivery))).mappings()]


# -- one event after another, and a burst -----------------------------------------------------------
EVENTS = 20


async def test_events_one_after_another_and_in_a_burst_are_each_applied_at_the_first_attempt(
    served: Service,
) -> None:
    """`authorized` events for fresh sessions through the route, with webhook_delay 0: first one at a
    time (each waits until the previous one is processed), then a burst of as many at once. How long
    they wait is measured by `python -m benchmarks.webhook_latency`."""
    sessions = []
    for _ in range(2 * EVENTS):
        collection = await served.api.collection("10")
        sessions.append((await served.api.session(collection["id"]))["id"])
    one_at_a_time = []
    for n, session_id in enumerate(sessions[:EVENTS]):
        event = {"id": f"evt_seq_{n}", "action": "authorized", "session_id": session_id}
        one_at_a_time.append(await settled(served.module, (await deliver(served.client, event))["id"]))
    answers = await asyncio.gather(
        *(
            deliver(served.client, {"id": f"evt_burst_{n}", "action": "authorized", "session_id": session_id})
            for n, session_id in enumerate(sessions[EVENTS:])
        )
    )
    burst = [await settled(served.module, a["id"]) for a in answers]
    assert all(r["attempts"] == 1 for r in one_at_a_time + burst)
