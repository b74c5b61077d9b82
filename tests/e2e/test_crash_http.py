"""A real `paymod serve` killed in the middle of a capture, restarted, and the request retried
with the same Idempotency-Key: the capture happens once, at the provider and in our tables."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.support import ADMIN, TESTING, json_of, running_server
from paymod import PaymentModule


def capture_keys(calls_file: Path) -> Counter[str]:
    if not calls_file.exists():
        return Counter()
    calls = [json.loads(line) for line in calls_file.read_text().splitlines()]
    return Counter(c["key"] for c in calls if c["method"] == "capture_payment")


def crash_then_retry(
    database_url: str, directory: Path, env: dict[str, str], fault: str, request: dict[str, Any]
) -> None:
    with running_server(database_url, directory, {**env, "PAYMOD_FAULT": fault}, ["--no-worker"]) as server:
        with httpx.Client(base_url=server.base_url, timeout=30) as http, pytest.raises(httpx.TransportError):
            http.post(**request)
        assert server.process.wait(timeout=30) == 137  # the fault point killed the server

    with (
        running_server(database_url, directory, env, ["--no-worker"]) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        retried = http.post(**request)
        assert retried.status_code == 200, retried.text
        assert [Decimal(str(c["amount"])) for c in retried.json()["payment"]["captures"]] == [Decimal(60)]
        replayed = http.post(**request)
        assert replayed.headers.get("idempotent-replayed") == "true"


@pytest.mark.parametrize(
    "fault", ["before-provider-capture", "after-provider-capture", "before-finish-capture"]
)
async def test_a_capture_interrupted_by_a_crash_completes_once_on_retry(
    database_url: str, tmp_path: Path, fault: str
) -> None:
    calls_file = tmp_path / "calls.jsonl"
    async with await PaymentModule.connect(
        database_url, providers=[{"resolve": "paymod.providers.testing", "id": "default"}], migrate=False
    ) as module:
        collection = await module.create_payment_collections({"currency_code": "usd", "amount": 100})
        session = await module.create_payment_session(
            collection.id, {"provider_id": TESTING, "amount": 100, "currency_code": "usd", "data": {}}
        )
        payment = await module.authorize_payment_session(session.id)
        assert payment is not None

    env = {
        "PAYMOD_PROVIDERS__DEFAULT__CALLS_FILE": str(calls_file),
        "PAYMOD_WORKFLOW_LEASE": "0",
        "PAYMOD_IDEMPOTENCY_LEASE": "0",
    }
    request = {
        "url": f"/admin/payments/{payment.id}/capture",
        "json": {"amount": 60},
        "headers": {**ADMIN, "Idempotency-Key": f"capture-{uuid.uuid4()}"},
    }
    await asyncio.to_thread(crash_then_retry, database_url, tmp_path, env, fault, request)

    keys = capture_keys(calls_file)
    assert len(keys) == 1, keys  # one logical capture: one key at the provider, however many attempts
    async with await PaymentModule.connect(database_url, migrate=False, sync_providers=False) as module:
        stored = await module.retrieve_payment(payment.id, {"relations": ["captures"]})
        assert [c.amount for c in stored.captures or []] == [Decimal(60)]
        assert (await module.retrieve_payment_collection(collection.id)).captured_amount == Decimal(60)


RETRY_WITHIN_SECONDS = 15.0


def crash_restart_and_retry_until_answered(
    database_url: str, directory: Path, env: dict[str, str], request: dict[str, Any]
) -> tuple[httpx.Response, list[int]]:
    """The server dies right after the provider captured; a new one starts; the client retries with
    the same key (as a client does after a dropped connection) until it gets a final answer."""
    with running_server(
        database_url, directory, {**env, "PAYMOD_FAULT": "after-provider-capture"}, ["--no-worker"]
    ) as server:
        with httpx.Client(base_url=server.base_url, timeout=30) as http, pytest.raises(httpx.TransportError):
            http.post(**request)
        assert server.process.wait(timeout=30) == 137
    with (
        running_server(database_url, directory, env, ["--no-worker"]) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        statuses: list[int] = []
        deadline = time.monotonic() + RETRY_WITHIN_SECONDS
        while True:
            retried = http.post(**request)
            statuses.append(retried.status_code)
            if retried.status_code != 409 or time.monotonic() > deadline:
                return retried, statuses
            assert json_of(retried)["code"] == "idempotency_key_in_use", retried.text
            time.sleep(0.25)


async def test_a_retry_after_a_crash_is_answered_within_seconds_with_the_default_leases(
    database_url: str, tmp_path: Path
) -> None:
    """The dead server's claims (the Idempotency-Key and the capture's run) belong to a process whose
    heartbeat stopped: the retry takes them over within seconds, not after the 300 s lease."""
    calls_file = tmp_path / "calls.jsonl"
    async with await PaymentModule.connect(
        database_url, providers=[{"resolve": "paymod.providers.testing", "id": "default"}], migrate=False
    ) as module:
        collection = await module.create_payment_collections({"currency_code": "usd", "amount": 100})
        session = await module.create_payment_session(
            collection.id, {"provider_id": TESTING, "amount": 100, "currency_code": "usd", "data": {}}
        )
        payment = await module.authorize_payment_session(session.id)
        assert payment is not None
    env = {"PAYMOD_PROVIDERS__DEFAULT__CALLS_FILE": str(calls_file)}  # leases as configured by default
    request = {
        "url": f"/admin/payments/{payment.id}/capture",
        "json": {"amount": 60},
        "headers": {**ADMIN, "Idempotency-Key": f"capture-{uuid.uuid4()}"},
    }

    answer, statuses = await asyncio.to_thread(
        crash_restart_and_retry_until_answered, database_url, tmp_path, env, request
    )

    assert answer.status_code == 200, (statuses, answer.text)
    assert [Decimal(str(c["amount"])) for c in json_of(answer)["payment"]["captures"]] == [Decimal(60)]
    keys = capture_keys(calls_file)
    assert len(keys) == 1, keys  # the provider was asked with one key: it captured once
    async with await PaymentModule.connect(database_url, migrate=False, sync_providers=False) as module:
        stored = await module.retrieve_payment(payment.id, {"relations": ["captures"]})
        assert [c.amount for c in stored.captures or []] == [Decimal(60)]
