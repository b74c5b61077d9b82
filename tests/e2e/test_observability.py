"""Logs, request ids, metrics and readiness, driven through the HTTP API on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import structlog
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from conftest import ADMIN_URL
from e2e.support import ADMIN, ADMIN_KEY, PUBLISHABLE_KEY, STORE, TESTING, WEBHOOK_SECRET, Api, json_of
from paymod import PaymentModule
from paymod.config import ProviderSettings, RegionSettings, Settings
from paymod.http import create_app
from paymod.observability.logs import configure_logging
from paymod.persistence.database import Database
from paymod.persistence.tables import event_outbox
from paymod.providers.registry import load_providers
from paymod.providers.testing import SIGNATURE_HEADER, sign
from paymod.services.payment_module import ModuleOptions
from paymod.webhooks.outbox import event_document
from paymod.webhooks.worker import Worker

CARD_NUMBER = "4242424242424242"
CARD = {"number": CARD_NUMBER, "cvc": "314", "exp_month": 12, "exp_year": 2031}


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """The process's log lines, configured as `paymod serve` does (JSON, info), captured."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("info", json=True, stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


@pytest.fixture
async def quick(database_url: str) -> AsyncIterator[PaymentModule]:
    """A module whose provider webhooks are due at once."""
    providers = [
        {
            "resolve": "paymod.providers.testing",
            "id": "default",
            "options": {"webhook_secret": WEBHOOK_SECRET},
        }
    ]
    async with await PaymentModule.connect(
        database_url, providers=providers, options={"webhook_delay": 0}, migrate=False
    ) as module:
        yield module


@pytest.fixture
async def quick_client(quick: PaymentModule, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, module=quick)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://paymod.test") as c:
        yield c


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def request_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [line for line in log_lines(stream) if line["logger"] == "paymod.http.requests"]


def metrics_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return metrics_of(response.text)


def value(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


# -- request ids --------------------------------------------------------------------------------
async def test_a_sane_request_id_is_returned_and_an_insane_one_replaced(client: httpx.AsyncClient) -> None:
    given = await client.get("/admin/payments", headers={**ADMIN, "X-Request-Id": "lb-7f3a:42"})
    minted = await client.get("/admin/payments", headers=ADMIN)
    hostile = await client.get("/admin/payments", headers={**ADMIN, "X-Request-Id": "x" * 500})
    spaced = await client.get("/admin/payments", headers={**ADMIN, "X-Request-Id": "a b"})

    assert given.headers["x-request-id"] == "lb-7f3a:42"
    assert minted.headers["x-request-id"].startswith("req_")
    assert hostile.headers["x-request-id"].startswith("req_")
    assert spaced.headers["x-request-id"].startswith("req_")
    assert len({minted.headers["x-request-id"], hostile.headers["x-request-id"]}) == 2


# -- logs -------------------------------------------------------------------------------------------
async def test_each_request_logs_one_line_and_its_money_flow_and_events_carry_its_id(
    api: Api, client: httpx.AsyncClient, module: PaymentModule, logs: io.StringIO
) -> None:
    payment = await api.payment("40")
    response = await client.post(
        f"/admin/payments/{payment['id']}/capture",
        json={"amount": 15},
        headers={**ADMIN, "X-Request-Id": "capture-req-1", "Idempotency-Key": "cap-1"},
    )
    assert response.status_code == 200

    requests = request_lines(logs)
    assert [(r["method"], r["route"], r["status"]) for r in requests] == [
        ("POST", "/admin/payment-collections", 200),
        ("POST", "/store/payment-collections/{id}/payment-sessions", 200),
        ("POST", "/store/payment-collections/{id}/authorize", 200),
        ("POST", "/admin/payments/{id}/capture", 200),
    ]
    capture = requests[-1]
    assert capture["request_id"] == "capture-req-1" and capture["duration_ms"] > 0
    assert capture["path"] == f"/admin/payments/{payment['id']}/capture"
    flows = [line for line in log_lines(logs) if line["logger"] == "paymod.money"]
    assert [(f["flow"], f["outcome"]) for f in flows] == [
        ("authorize", "succeeded"),
        ("capture", "succeeded"),
    ]
    assert flows[0]["request_id"] == requests[2]["request_id"]
    assert flows[1]["request_id"] == "capture-req-1"
    async with module.database.read() as conn:
        rows = [dict(r) for r in (await conn.execute(select(event_outbox))).mappings()]
    by_request = {(row["name"], row["request_id"]) for row in rows}
    assert ("payment.captured", "capture-req-1") in by_request
    assert ("payment.payment-collection.created", requests[0]["request_id"]) in by_request
    captured = next(row for row in rows if row["name"] == "payment.captured")
    assert event_document(captured)["request"] == {"id": "capture-req-1"}
    assert event_document(captured)["data"] == {"id": payment["id"]}


async def test_no_key_secret_signature_or_card_field_reaches_a_log_line(
    api: Api, client: httpx.AsyncClient, logs: io.StringIO
) -> None:
    collection = await api.collection("25")
    card_data = {"payment_method_data": {"type": "card", "card": CARD}, "scenario": "provider_error"}
    await api.session(collection["id"], data=card_data)
    declined = await api.authorize(collection["id"])  # the provider fails: a failed money flow
    basic = base64.b64encode(f"{ADMIN_KEY}:".encode()).decode()
    await client.get("/admin/payments", headers={"Authorization": f"Basic {basic}"})
    await client.get("/admin/payments", headers={"Authorization": "Bearer sk_wrong_key_0123456789"})
    await client.post(  # an unknown route, a card number in the body
        "/admin/nowhere", json={"card": CARD}, headers={**ADMIN, "Idempotency-Key": "nowhere"}
    )
    body = json.dumps(
        {"id": "evt_log", "action": "authorized", "session_id": "payses_x", "card": CARD}
    ).encode()
    signature = sign(body, WEBHOOK_SECRET)
    hooked = await client.post(
        "/hooks/payment/testing_default",
        content=body,
        headers={SIGNATURE_HEADER: signature, "content-type": "application/json"},
    )
    forged = await client.post(
        "/hooks/payment/testing_default",
        content=body,
        headers={SIGNATURE_HEADER: sign(body, "whsec_forged_secret"), "content-type": "application/json"},
    )

    assert declined.status_code == 402 and hooked.status_code == 200 and forged.status_code == 400
    output = logs.getvalue()
    assert len(request_lines(logs)) == 8
    flows = [line for line in log_lines(logs) if line["logger"] == "paymod.money"]
    assert [(f["flow"], f["outcome"]) for f in flows] == [("authorize", "provider_error")]
    for secret in (
        ADMIN_KEY,
        PUBLISHABLE_KEY,
        basic,
        "sk_wrong_key_0123456789",
        WEBHOOK_SECRET,
        signature,
        CARD_NUMBER,
        '"cvc"',
    ):
        assert secret not in output, secret


# -- metrics ----------------------------------------------------------------------------------------
async def test_metrics_need_the_secret_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers=STORE)).status_code == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer sk_nope"})).status_code == 401


async def test_metrics_move_with_requests_money_flows_provider_calls_and_replays(
    api: Api, client: httpx.AsyncClient
) -> None:
    before = await scrape(client)
    payment = await api.payment("40")
    first = await client.post(
        f"/admin/payments/{payment['id']}/capture",
        json={"amount": 10},
        headers={**ADMIN, "Idempotency-Key": "m1"},
    )
    replay = await client.post(
        f"/admin/payments/{payment['id']}/capture",
        json={"amount": 10},
        headers={**ADMIN, "Idempotency-Key": "m1"},
    )
    mismatch = await client.post(
        f"/admin/payments/{payment['id']}/capture",
        json={"amount": 11},
        headers={**ADMIN, "Idempotency-Key": "m1"},
    )
    refund = await api.refund(payment["id"], amount=4)
    failing = await api.payment("20", data={"scenario": "capture_error"})
    refused = await api.capture(failing["id"])
    after = await scrape(client)

    statuses = (first.status_code, replay.status_code, mismatch.status_code, refund.status_code)
    assert statuses == (200, 200, 400, 200)
    assert refused.status_code == 502
    assert replay.headers["idempotent-replayed"] == "true"

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    capture_route = {"method": "POST", "route": "/admin/payments/{id}/capture"}
    assert moved("paymod_http_request_duration_seconds_count", **capture_route, status="200") == 2
    assert moved("paymod_http_request_duration_seconds_count", **capture_route, status="400") == 1
    assert (
        moved("paymod_http_request_duration_seconds_count", method="GET", route="/metrics", status="200") == 1
    )
    assert moved("paymod_money_flows_total", kind="authorize", outcome="succeeded") == 2
    assert moved("paymod_money_flows_total", kind="capture", outcome="succeeded") == 1
    assert moved("paymod_money_flows_total", kind="capture", outcome="provider_error") == 1
    assert moved("paymod_money_flows_total", kind="refund", outcome="succeeded") == 1
    provider = {"provider": TESTING, "outcome": "ok"}
    assert moved("paymod_provider_call_duration_seconds_count", **provider, method="initiate_payment") == 2
    assert moved("paymod_provider_call_duration_seconds_count", **provider, method="authorize_payment") == 2
    assert moved("paymod_provider_call_duration_seconds_count", **provider, method="capture_payment") == 1
    assert moved("paymod_provider_call_duration_seconds_count", **provider, method="refund_payment") == 1
    failed_call = {"provider": TESTING, "method": "capture_payment", "outcome": "provider_error"}
    assert moved("paymod_provider_call_duration_seconds_count", **failed_call) == 1
    assert moved("paymod_idempotency_requests_total", outcome="replayed") == 1
    assert moved("paymod_idempotency_requests_total", outcome="mismatch") == 1
    assert value(after, "paymod_database_up") == 1
    # Nothing delivers events here (no worker runs): the outbox holds what the flow wrote.
    assert value(after, "paymod_event_outbox_pending") >= 5
    assert value(after, "paymod_event_outbox_oldest_seconds") > 0
    assert value(after, "paymod_webhook_inbox_pending") == 0


async def test_the_inbox_backlog_is_read_at_scrape_time_and_the_worker_carries_the_request_id(
    quick: PaymentModule, quick_client: httpx.AsyncClient
) -> None:
    api = Api(quick_client)
    collection = await api.collection("30")
    session = await api.session(collection["id"])
    body = json.dumps(
        {"id": "evt_m", "action": "captured", "session_id": session["id"], "amount": 30}
    ).encode()
    hooked = await quick_client.post(
        "/hooks/payment/testing_default",
        content=body,
        headers={
            SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET),
            "content-type": "application/json",
            "X-Request-Id": "hook-req-1",
        },
    )
    assert hooked.status_code == 200
    waiting = await scrape(quick_client)

    worker = Worker(quick)
    try:
        assert await worker.process_inbox() == 1
    finally:
        await worker.close()
    done = await scrape(quick_client)

    assert value(waiting, "paymod_webhook_inbox_pending") == 1
    assert value(done, "paymod_webhook_inbox_pending") == 0
    assert (
        value(done, "paymod_webhook_events_total", outcome="processed")
        - value(waiting, "paymod_webhook_events_total", outcome="processed")
        == 1
    )
    assert (
        value(done, "paymod_money_flows_total", kind="capture", outcome="succeeded")
        - value(waiting, "paymod_money_flows_total", kind="capture", outcome="succeeded")
        == 1
    )
    async with quick.database.read() as conn:
        rows = (await conn.execute(select(event_outbox.c.name, event_outbox.c.request_id))).all()
    names = {name for name, request_id in rows if request_id == "hook-req-1"}
    assert {"payment.webhook_received", "payment.captured"} <= names


# -- health -----------------------------------------------------------------------------------------
async def test_health_is_alive_and_ready_on_a_migrated_database(client: httpx.AsyncClient) -> None:
    alive = await client.get("/health")
    ready = await client.get("/health/ready")

    assert (alive.status_code, json_of(alive)) == (200, {"status": "ok"})
    assert ready.status_code == 200
    document = json_of(ready)
    assert document["status"] == "ready"
    checks = document["checks"]
    assert checks["database"] == {"status": "ok"}
    assert checks["migrations"]["status"] == "ok"
    assert checks["migrations"]["database"] == checks["migrations"]["head"] != []
    assert checks["providers"] == {"status": "ok", "ids": ["pp_system_default", TESTING]}


@pytest.fixture
async def unmigrated_url(database: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database nobody migrated."""
    if database == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"paymod_unmigrated_{tmp_path.name[-20:]}".replace("-", "_").lower()
    admin = await asyncpg.connect(ADMIN_URL, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def ready_answer(module: PaymentModule, settings: Settings) -> tuple[int, dict[str, Any]]:
    app: FastAPI = create_app(settings, module=module)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
        alive = await client.get("/health")
        assert alive.status_code == 200  # liveness never asks the database
        response = await client.get("/health/ready")
    return response.status_code, json_of(response)


async def test_an_unmigrated_database_is_not_ready(unmigrated_url: str) -> None:
    # What `paymod serve --no-migrate` runs on before anyone ran `paymod migrate`.
    module = PaymentModule(Database(unmigrated_url), load_providers([]), ModuleOptions())
    try:
        status, document = await ready_answer(module, Settings(config=None))
    finally:
        await module.close()

    assert status == 503
    assert document["status"] == "unavailable"
    assert document["checks"]["database"] == {"status": "ok"}
    migrations = document["checks"]["migrations"]
    assert migrations["status"] == "failing" and migrations["database"] == []
    assert "paymod migrate" in migrations["message"]


@pytest.mark.parametrize(
    "unreachable", ["sqlite:////nonexistent/directory/paymod.db", "postgresql://postgres@127.0.0.1:1/paymod"]
)
async def test_an_unreachable_database_is_not_ready_but_the_process_is_alive(unreachable: str) -> None:
    module = PaymentModule(Database(unreachable), load_providers([]), ModuleOptions())
    try:
        status, document = await ready_answer(module, Settings(config=None))
    finally:
        await module.close()

    assert status == 503
    assert document["checks"]["database"] == {"status": "failing", "message": "the database is unreachable"}
    assert "1/paymod" not in json.dumps(document) and "nonexistent" not in json.dumps(document)


async def test_a_region_naming_a_provider_that_is_not_configured_is_not_ready(module: PaymentModule) -> None:
    settings = Settings(
        config=None,
        admin_api_key=ADMIN_KEY,
        providers=[ProviderSettings(resolve="paymod.providers.testing", id="default")],
        regions=[RegionSettings(id="reg_eu", providers=[TESTING, "pp_stripe_stripe"])],
    )

    status, document = await ready_answer(module, settings)

    assert status == 503
    providers = document["checks"]["providers"]
    assert providers["status"] == "failing"
    assert (
        providers["message"]
        == "regions name providers that are not configured: pp_stripe_stripe (region reg_eu)"
    )
