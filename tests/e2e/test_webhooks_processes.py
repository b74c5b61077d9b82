"""Webhooks with real processes: `paymod serve` and its in-process worker, the operator CLI
(`paymod webhooks ...`, `paymod webhook-endpoints ...`), and `paymod worker` processes sharing one
PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from e2e.support import (
    ADMIN,
    STORE,
    TESTING,
    TESTING_PROVIDER,
    WEBHOOK_SECRET,
    free_port,
    paymod_command,
    paymod_env,
    running_server,
    running_workers,
    stop_process,
)
from paymod import PaymentModule
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import event_outbox, payment, webhook_event
from paymod.providers.testing import SIGNATURE_HEADER, sign
from paymod.webhooks.inbox import receive_webhook

CLI_TIMEOUT_SECONDS = 60
WAIT_SECONDS = 60.0
# Generous for a loaded 2-core CI machine (it takes about 20 s on one).
ALL_PROCESSED_SECONDS = 240.0


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*paymod_command(), *args], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS
    )


def wait_until(check: Callable[[], Any], what: str) -> Any:
    """Polls `check` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def signed_event(event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    return body, {SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET), "content-type": "application/json"}


# The CLI's commands run the same module functions as the admin routes, which test_webhooks_http.py
# runs on both databases; a CLI process costs seconds to start, so this test runs on the embedded one.
@pytest.mark.parametrize("database", ["sqlite"])
def test_paymod_serve_processes_webhooks_and_the_cli_lists_replays_and_manages_endpoints(
    database: str, database_url: str, tmp_path: Path
) -> None:
    with (
        running_server(database_url, tmp_path) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):

        def session_for(amount: str, data: dict[str, Any] | None = None) -> tuple[str, str]:
            created = http.post(
                "/admin/payment-collections", json={"amount": amount, "currency_code": "usd"}, headers=ADMIN
            )
            collection = created.json()["payment_collection"]["id"]
            sessions = http.post(
                f"/store/payment-collections/{collection}/payment-sessions",
                json={"provider_id": TESTING, "data": data or {}},
                headers=STORE,
            )
            return collection, sessions.json()["payment_collection"]["payment_sessions"][0]["id"]

        def event_status(id: str) -> str | None:
            page = http.get("/admin/webhook-events", params={"limit": 100}, headers=ADMIN).json()
            return next((e["status"] for e in page["webhook_events"] if e["id"] == id), None)

        def deliver(event: dict[str, Any]) -> str:
            body, headers = signed_event(event)
            answer = http.post("/hooks/payment/testing_default", content=body, headers=headers)
            assert answer.status_code == 200, answer.text
            return str(answer.json()["id"])

        # The in-process worker of `paymod serve` applies a verified event.
        paid, session = session_for("20")
        ok = deliver({"id": "evt_serve_ok", "action": "authorized", "session_id": session, "amount": 20})
        wait_until(lambda: event_status(ok) == "processed", "the event to be processed")
        payments = http.get("/admin/payments", params={"payment_collection_id": paid}, headers=ADMIN).json()
        assert payments["count"] == 1

        # A capture reported before the (asynchronous) payment arrived fails; retries = 0 parks it.
        waiting, early = session_for("15", {"scenario": "pending_authorization"})
        failed = deliver({"id": "evt_serve_early", "action": "captured", "session_id": early, "amount": 15})
        wait_until(lambda: event_status(failed) == "failed", "the event to fail")

        listed = cli(server.env, "webhooks", "list", "--failed", "--json")
        assert listed.returncode == 0, listed.stderr
        [row] = json.loads(listed.stdout)["webhook_events"]
        assert (row["id"], row["status"], row["attempts"], row["event_id"]) == (
            failed,
            "failed",
            1,
            "evt_serve_early",
        )
        assert "not authorized yet" in row["last_error"] and "payload" not in row

        # The payment arrives at the provider; the operator replays the parked event from the CLI.
        async def payment_received() -> None:
            async with await PaymentModule.connect(
                database_url, providers=[TESTING_PROVIDER], migrate=False
            ) as module:
                await module.update_payment_session({"id": early, "data": {"payment_received": True}})

        asyncio.run(payment_received())
        replayed = cli(server.env, "webhooks", "replay", failed)
        assert replayed.returncode == 0, replayed.stderr
        wait_until(lambda: event_status(failed) == "processed", "the replayed event to be processed")
        [captured] = http.get(
            "/admin/payments", params={"payment_collection_id": waiting}, headers=ADMIN
        ).json()["payments"]
        assert [c["amount"] for c in captured["captures"]] == [15]

        # Endpoints: created with the secret shown once, listed without it, deleted.
        created = cli(
            server.env,
            "webhook-endpoints",
            "create",
            "https://shop.example/paymod",
            "--event",
            "payment.captured",
            "--event",
            "payment.refunded",
        )
        assert created.returncode == 0, created.stderr
        lines = dict(line.split(":", 1) for line in created.stdout.splitlines() if ":" in line)
        endpoint_id, secret = lines["id"].strip(), lines["secret"].strip()
        assert re.fullmatch(r"whsec_[0-9a-f]{48}", secret) and "shown only now" in created.stderr
        shown = cli(server.env, "webhook-endpoints", "list", "--json")
        assert secret not in shown.stdout
        assert [(e["id"], e["events"]) for e in json.loads(shown.stdout)["webhook_endpoints"]] == [
            (endpoint_id, ["payment.captured", "payment.refunded"])
        ]
        via_http = http.get("/admin/webhook-endpoints", headers=ADMIN).json()["webhook_endpoints"]
        assert [e["id"] for e in via_http] == [endpoint_id]
        deleted = cli(server.env, "webhook-endpoints", "delete", endpoint_id)
        assert deleted.returncode == 0, deleted.stderr
        assert http.get("/admin/webhook-endpoints", headers=ADMIN).json()["count"] == 0
        again = cli(server.env, "webhook-endpoints", "delete", endpoint_id)
        assert again.returncode == 1 and "not_found" in again.stderr

        log = server.log.read_text()
    assert "Traceback" not in log, log[-5000:]


# -- several workers on one PostgreSQL database ---------------------------------------------------
EVENTS = 500


async def _sessions(module: PaymentModule, count: int) -> list[str]:
    async def one() -> str:
        collection = await module.create_payment_collections({"currency_code": "usd", "amount": 10})
        session = await module.create_payment_session(
            collection.id, {"provider_id": TESTING, "amount": 10, "currency_code": "usd", "data": {}}
        )
        return session.id

    ids: list[str] = []
    while len(ids) < count:
        ids.extend(await asyncio.gather(*(one() for _ in range(min(20, count - len(ids))))))
    return ids


async def _store(module: PaymentModule, sessions: list[str]) -> None:
    for start in range(0, len(sessions), 20):
        received = await asyncio.gather(
            *(
                receive_webhook(
                    module,
                    "testing_default",
                    *signed_event(
                        {"id": f"evt_w_{n}", "action": "authorized", "session_id": s, "amount": 10}
                    ),
                )
                for n, s in enumerate(sessions[start : start + 20], start)
            )
        )
        assert not any(r.duplicate for r in received)


async def _counts(module: PaymentModule) -> dict[str, int]:
    async with module.database.read() as conn:

        async def scalar(stmt: Any) -> int:
            return int((await conn.execute(stmt)).scalar_one())

        return {
            "processed": await scalar(
                select(func.count()).select_from(webhook_event).where(webhook_event.c.status == "processed")
            ),
            "once": await scalar(
                select(func.count())
                .select_from(webhook_event)
                .where(webhook_event.c.status == "processed", webhook_event.c.attempts == 1)
            ),
            "events": await scalar(select(func.count()).select_from(webhook_event)),
            "payments": await scalar(select(func.count()).select_from(payment)),
            "paid_sessions": await scalar(select(func.count(func.distinct(payment.c.payment_session_id)))),
        }


@pytest.mark.parametrize("database", ["postgresql"])
async def test_two_worker_processes_process_500_events_each_exactly_once(
    database: str, database_url: str, tmp_path: Path
) -> None:
    """500 sessions each get one `authorized` event; two `paymod worker` processes share the inbox.

    The testing provider's call counts live in each process, so the proof is in the database: 500
    payments for 500 sessions, every event processed at its first attempt, and the two processes'
    own counts of the events they handled add up to 500.
    """
    env = paymod_env(database_url, tmp_path)
    async with await PaymentModule.connect(
        database_url, providers=[TESTING_PROVIDER], options={"webhook_delay": 0}, migrate=False
    ) as module:
        with running_workers(env, tmp_path, 2) as workers:
            # The sessions are made while the workers start; the events are stored once both run.
            sessions = await _sessions(module, EVENTS)
            for worker in workers:
                await asyncio.to_thread(worker.wait_ready)
            await _store(module, sessions)
            async with asyncio.timeout(ALL_PROCESSED_SECONDS):
                while True:
                    counts = await _counts(module)
                    if counts["processed"] == EVENTS:
                        break
                    await asyncio.sleep(0.25)
            statuses = [stop_process(w.process) for w in workers]
            outputs = [w.output() for w in workers]

    assert statuses == [0, 0], outputs
    assert counts == {
        "processed": EVENTS,
        "once": EVENTS,
        "events": EVENTS,
        "payments": EVENTS,
        "paid_sessions": EVENTS,
    }
    handled = []
    for out in outputs:
        summary = re.search(r"stopped: (\d+) webhook events", out)
        assert summary is not None, out
        handled.append(int(summary.group(1)))
    # Each event was claimed by exactly one of the two processes.
    assert sum(handled) == EVENTS, outputs
    assert all("Traceback" not in out for out in outputs), outputs
    print(f"\nevents handled per worker process: {handled}")


async def test_a_worker_stopped_in_the_middle_of_a_backlog_exits_cleanly_and_loses_nothing(
    database_url: str, tmp_path: Path
) -> None:
    """SIGTERM while the lanes are busy: the worker finishes or hands back what it holds, exits 0
    without an error in its log, and a second worker takes what is left from there (nothing waits out
    a lease)."""
    env = paymod_env(database_url, tmp_path)
    async with await PaymentModule.connect(database_url, migrate=False) as module:
        now = utc_now()
        async with module.database.write() as conn:
            await conn.execute(
                event_outbox.insert(),
                [
                    {
                        "id": f"evt_backlog_{n}",
                        "name": "payment.test",
                        "data": {"n": n},
                        "payment_collection_id": f"pay_col_{n % 1000}",
                        "status": "pending",
                        "attempts": 0,
                        "available_at": now,
                        "created_at": now,
                    }
                    for n in range(5_000)
                ],
            )
        with running_workers(env, tmp_path, 1) as [worker]:
            await asyncio.to_thread(worker.wait_ready)

            async with asyncio.timeout(WAIT_SECONDS):
                while True:
                    if await _outbox_count(module, "dispatched"):
                        break
                    await asyncio.sleep(0.02)
            status = await asyncio.to_thread(stop_process, worker.process)
            log = worker.output()
        assert status == 0, log
        for bad in ("Traceback", "Error", "CancelledError"):
            assert bad not in log, log[-5000:]
        async with module.database.read() as conn:
            leased = (
                await conn.execute(
                    select(func.count()).where(
                        event_outbox.c.status == "pending", event_outbox.c.locked_until.is_not(None)
                    )
                )
            ).scalar_one()
        assert leased == 0  # handed back, not left for the lease
        assert await _outbox_count(module, "pending") > 0  # it was stopped in the middle of the backlog
        (tmp_path / "second").mkdir()
        with running_workers(env, tmp_path / "second", 1) as [second]:
            await asyncio.to_thread(second.wait_ready)
            async with asyncio.timeout(ALL_PROCESSED_SECONDS):
                while True:
                    if not await _outbox_count(module, "pending"):
                        break
                    await asyncio.sleep(0.1)
            stop_process(second.process)


async def _outbox_count(module: PaymentModule, status: str) -> int:
    async with module.database.read() as conn:
        found = await conn.execute(select(func.count()).where(event_outbox.c.status == status))
        return int(found.scalar_one())


async def test_a_worker_serves_its_own_metrics_on_the_port_it_is_given(
    database: str, database_url: str, tmp_path: Path
) -> None:
    """`paymod worker --metrics-port` exposes the counters of what this worker applied."""
    env = paymod_env(database_url, tmp_path)
    port = free_port()
    async with await PaymentModule.connect(
        database_url, providers=[TESTING_PROVIDER], options={"webhook_delay": 0}, migrate=False
    ) as module:
        with running_workers(env, tmp_path, 1, "--metrics-port", str(port)) as [worker]:
            sessions = await _sessions(module, 3)
            await asyncio.to_thread(worker.wait_ready)
            await _store(module, sessions)
            async with asyncio.timeout(ALL_PROCESSED_SECONDS):
                while True:
                    if (await _counts(module))["processed"] == 3:
                        break
                    await asyncio.sleep(0.1)
            async with httpx.AsyncClient() as client:
                scraped = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            assert stop_process(worker.process) == 0, worker.output()

    applied = re.search(r'^paymod_webhook_events_total\{outcome="processed"\} (\S+)$', scraped, re.M)
    assert applied is not None, scraped
    assert float(applied.group(1)) == 3
