"""The worker's lanes, on SQLite and PostgreSQL: provider webhooks never wait behind deliveries, one
endpoint's failures never delay another's, a collection's events keep their order through a failure,
a failing endpoint backs off and is disabled in the end, claims read only what they claim (their plans
use the partial indexes), finished rows are pruned after the retention, and a stopping worker hands
back what it claimed.

Endpoints here are answered through httpx's `MockTransport` (the worker's own HTTP client, given to
it): a test decides per request whether it succeeds, fails, or hangs until released.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, update

from paymod import PaymentModule
from paymod.persistence.event_outbox import claim_events
from paymod.persistence.repository import utc_now
from paymod.persistence.retention import prune
from paymod.persistence.tables import (
    event_outbox,
    webhook_delivery,
    webhook_endpoint,
    webhook_event,
    workflow_run,
)
from paymod.persistence.webhook_endpoints import claim_deliveries
from paymod.providers.base import AuthorizePaymentOutput, ProviderInput
from paymod.providers.testing import SIGNATURE_HEADER, TestingPaymentProvider, sign
from paymod.webhooks.deliveries import BREAKER_THRESHOLD, LANE_CONCURRENCY
from paymod.webhooks.inbox import receive_webhook
from paymod.webhooks.outbox import create_webhook_endpoint
from paymod.webhooks.worker import Worker, stop_worker

SECRET = "whsec_lanes"
PROVIDER = "testing_default"
DEADLINE = 60.0  # a generous bound to detect a lane that never moves, not a speed goal

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


@pytest.fixture
async def quick(database_url: str) -> AsyncIterator[PaymentModule]:
    providers = [
        {"resolve": "paymod.providers.testing", "id": "default", "options": {"webhook_secret": SECRET}}
    ]
    async with await PaymentModule.connect(
        database_url, providers=providers, options={"webhook_delay": 0, "webhook_retries": 1}, migrate=False
    ) as module:
        yield module


def client_for(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def event_ids(module: PaymentModule) -> list[str]:
    async with module.database.read() as conn:
        found = await conn.execute(select(event_outbox.c.id).order_by(event_outbox.c.sequence))
        return list(found.scalars())


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(int(DEADLINE / 0.02)):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not reached in {DEADLINE} s")


async def test_a_hanging_endpoint_delays_neither_a_live_one_nor_provider_webhooks(
    quick: PaymentModule,
) -> None:
    release = asyncio.Event()
    hanging: list[str] = []
    live: list[str] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        event = json.loads(request.content)["id"]
        if request.url.host == "hangs.invalid":
            hanging.append(event)
            await release.wait()
            return httpx.Response(500)
        live.append(event)
        return httpx.Response(200)

    await create_webhook_endpoint(quick, "http://hangs.invalid/hook")
    await create_webhook_endpoint(quick, "http://live.invalid/hook")
    collection = await quick.create_payment_collections({"currency_code": "usd", "amount": 10})
    session = await quick.create_payment_session(
        collection.id, {"provider_id": "pp_testing_default", "amount": 10, "currency_code": "usd", "data": {}}
    )
    for n in range(30):
        await quick.create_payment_collections({"currency_code": "usd", "amount": n + 1})
    worker = Worker(quick, http_client=client_for(handle), poll_interval=0.02)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await until(lambda: _true(bool(hanging)))
        body = json.dumps({"id": "evt_lane", "action": "authorized", "session_id": session.id}).encode()
        await receive_webhook(quick, PROVIDER, body, {SIGNATURE_HEADER: sign(body, SECRET)})
        worker.wake()

        async def caught_up() -> bool:
            applied = await quick.list_payments({"payment_session_id": session.id})
            return bool(applied) and set(await event_ids(quick)) <= set(live)

        await until(caught_up)
        # all of that while the hanging endpoint still holds its first deliveries
        assert not release.is_set() and hanging
        assert len(live) == len(set(live))
    finally:
        release.set()
        await stop_worker(running, stop, 30)


async def test_a_collections_events_keep_their_order_through_a_failure(quick: PaymentModule) -> None:
    """The endpoint fails the first event of collection A once: A's later events wait for its retry,
    B's go on."""
    received: list[dict[str, Any]] = []
    failed_once: set[str] = set()

    async def handle(request: httpx.Request) -> httpx.Response:
        document = json.loads(request.content)
        first_of_a = document["payment_collection_id"] == a.id and document["type"].endswith("created")
        if first_of_a and document["id"] not in failed_once:
            failed_once.add(document["id"])
            return httpx.Response(503)
        received.append(document)
        return httpx.Response(200)

    await create_webhook_endpoint(quick, "http://live.invalid/hook")
    a = await quick.create_payment_collections({"currency_code": "usd", "amount": 10})
    b = await quick.create_payment_collections({"currency_code": "usd", "amount": 20})
    for collection in (a, b):
        for n in range(3):
            await quick.update_payment_collections(collection.id, {"metadata": {"n": n}})
    worker = Worker(quick, http_client=client_for(handle), delivery_retry_base=0.05, poll_interval=0.02)

    async def all_received() -> bool:
        await worker.run_once()
        return len(received) == 8

    await until(all_received)
    await worker.close()
    order = {c: [d["id"] for d in received if d["payment_collection_id"] == c] for c in (a.id, b.id)}
    async with quick.database.read() as conn:
        for collection_id, ids in order.items():
            expected = await conn.execute(
                select(event_outbox.c.id)
                .where(event_outbox.c.payment_collection_id == collection_id)
                .order_by(event_outbox.c.sequence)
            )
            assert ids == list(expected.scalars())
    # B did not wait for A's retry
    first_of_a = order[a.id][0]
    assert [d["id"] for d in received].index(first_of_a) > 0


async def test_a_failing_endpoint_backs_off_as_a_whole_and_is_disabled_in_the_end(
    quick: PaymentModule,
) -> None:
    calls: list[str] = []

    async def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content)["id"])
        raise httpx.ConnectError("connection refused", request=request)

    endpoint = await create_webhook_endpoint(quick, "http://dead.invalid/hook")
    for n in range(40):
        await quick.create_payment_collections({"currency_code": "usd", "amount": n + 1})
    worker = Worker(
        quick,
        http_client=client_for(refuse),
        delivery_retry_base=3600,
        endpoint_disable_after=timedelta(hours=1),
    )
    for _ in range(5):
        await worker.run_once()
    # one batch stopped after the breaker's threshold; then the endpoint waits for its retry
    # what was already in flight when the breaker tripped
    assert len(calls) <= BREAKER_THRESHOLD + LANE_CONCURRENCY
    async with quick.database.read() as conn:
        row = (
            (await conn.execute(select(webhook_endpoint).where(webhook_endpoint.c.id == endpoint["id"])))
            .mappings()
            .one()
        )
    assert row["retry_at"] is not None and row["retry_at"] > utc_now() and row["enabled"]
    assert row["consecutive_failures"] >= BREAKER_THRESHOLD

    # failing for longer than `endpoint_disable_after`: the probe that fails again disables it
    async with quick.database.write() as conn:
        await conn.execute(
            update(webhook_endpoint)
            .where(webhook_endpoint.c.id == endpoint["id"])
            .values(failing_since=utc_now() - timedelta(hours=2), retry_at=utc_now() - timedelta(seconds=1))
        )
    await worker.run_once()
    await worker.close()
    async with quick.database.read() as conn:
        row = (
            (await conn.execute(select(webhook_endpoint).where(webhook_endpoint.c.id == endpoint["id"])))
            .mappings()
            .one()
        )
        waiting = (
            await conn.execute(
                select(func.count()).where(
                    webhook_delivery.c.endpoint_id == endpoint["id"], webhook_delivery.c.status == "pending"
                )
            )
        ).scalar_one()
        disabled = (
            (
                await conn.execute(
                    select(event_outbox.c.data).where(event_outbox.c.name == "webhook_endpoint.disabled")
                )
            )
            .scalars()
            .all()
        )
    assert (row["enabled"], row["disabled_at"] is not None) == (False, True)
    assert "failing since" in row["disabled_reason"]
    assert waiting == 0
    assert [d["id"] for d in disabled] == [endpoint["id"]]


async def test_a_refused_batch_rests_the_endpoint_for_seconds_not_for_an_hour(quick: PaymentModule) -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    endpoint = await create_webhook_endpoint(quick, "http://dead.invalid/hook")
    for n in range(40):
        await quick.create_payment_collections({"currency_code": "usd", "amount": n + 1})
    worker = Worker(quick, http_client=client_for(refuse), delivery_retry_base=1)
    await worker.run_once()
    await worker.close()
    async with quick.database.read() as conn:
        row = (
            (await conn.execute(select(webhook_endpoint).where(webhook_endpoint.c.id == endpoint["id"])))
            .mappings()
            .one()
        )
    # a whole batch failed at once (up to LANE_CONCURRENCY deliveries): the endpoint rests for about
    # the retry base, as after a single failure, so a blip during a deploy costs seconds
    assert row["consecutive_failures"] >= BREAKER_THRESHOLD
    assert row["retry_at"] is not None
    assert row["retry_at"] - row["failing_since"] <= timedelta(seconds=5)


async def _plans(module: PaymentModule, run: Callable[[Any], Awaitable[Any]], marker: str) -> list[str]:
    """The plan of each statement `run` sends that mentions `marker`, as the database would run it."""
    sent: list[tuple[str, Any]] = []
    async with module.database.write() as conn:

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
            if marker in statement and not statement.lstrip().upper().startswith(("UPDATE", "EXPLAIN")):
                sent.append((statement, parameters))

        event.listen(conn.sync_connection, "before_cursor_execute", record)
        try:
            await run(conn)
        finally:
            event.remove(conn.sync_connection, "before_cursor_execute", record)
        assert sent, f"no statement on {marker} was sent"
        plans = []
        for statement, parameters in sent:
            if module.database.is_postgresql:
                await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
                found = await conn.exec_driver_sql("EXPLAIN " + statement, parameters)
            else:
                found = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            plans.append("\n".join(str(row[-1]) for row in found.all()))
        return plans


async def test_claims_read_the_pending_rows_through_the_partial_indexes(quick: PaymentModule) -> None:
    """The outbox claim and a lane's claim start from the partial indexes on pending rows, so what they
    cost follows what they claim, not the backlog (docs/operations.md shows the plans)."""
    now = utc_now()
    endpoint = await create_webhook_endpoint(quick, "http://live.invalid/hook")
    async with quick.database.write() as conn:
        await conn.execute(
            event_outbox.insert(),
            [
                {
                    "id": f"evt_backlog_{n}",
                    "name": "payment.test",
                    "data": {},
                    "payment_collection_id": f"pay_col_{n % 500}",
                    "status": "dispatched" if n % 3 else "pending",
                    "attempts": 0,
                    "available_at": now,
                    "created_at": now,
                }
                for n in range(6000)
            ],
        )
        sequences = (await conn.execute(select(event_outbox.c.sequence, event_outbox.c.id))).all()
        await conn.execute(
            webhook_delivery.insert(),
            [
                {
                    "id": f"whdl_{n}",
                    "endpoint_id": endpoint["id"],
                    "event_id": event_id,
                    "event_sequence": sequence,
                    "payment_collection_id": f"pay_col_{n % 500}",
                    "status": "pending" if n % 4 == 0 else "delivered",
                    "attempts": 0,
                    "available_at": now,
                    "created_at": now,
                }
                for n, (sequence, event_id) in enumerate(sequences)
            ],
        )
        if quick.database.is_postgresql:
            await conn.exec_driver_sql("ANALYZE event_outbox")
            await conn.exec_driver_sql("ANALYZE webhook_delivery")

    outbox_plans = await _plans(quick, lambda conn: claim_events(conn, 10), "event_outbox")
    lane_plans = await _plans(
        quick,
        lambda conn: claim_deliveries(conn, {"id": endpoint["id"]}, probe=False, limit=10),
        "webhook_delivery",
    )

    for plan in outbox_plans:
        assert "IDX_event_outbox_pending" in plan, plan
        assert "Seq Scan on event_outbox" not in plan and "SCAN event_outbox\n" not in plan + "\n", plan
    for plan in lane_plans:
        assert "IDX_webhook_delivery_pending" in plan, plan
        assert "Seq Scan on webhook_delivery" not in plan, plan


async def test_finished_rows_older_than_the_retention_are_pruned_and_nothing_else(
    quick: PaymentModule,
) -> None:
    old = utc_now() - timedelta(days=31)
    recent = utc_now() - timedelta(days=29)
    async with quick.database.write() as conn:
        await conn.execute(
            event_outbox.insert(),
            [
                {
                    "id": f"evt_{age}_{status}",
                    "name": "payment.x",
                    "data": {},
                    "status": status,
                    "attempts": 0,
                    "available_at": when,
                    "created_at": when,
                }
                for age, when in (("old", old), ("new", recent))
                for status in ("dispatched", "failed", "pending")
            ],
        )
        await conn.execute(
            webhook_event.insert(),
            [
                {
                    "id": f"whev_{age}_{status}",
                    "provider_id": "pp_testing_default",
                    "event_id": f"e_{age}_{status}",
                    "action": "captured",
                    "payload": {},
                    "status": status,
                    "attempts": 0,
                    "available_at": when,
                    "created_at": when,
                    "updated_at": when,
                }
                for age, when in (("old", old), ("new", recent))
                for status in ("processed", "ignored", "failed", "pending")
            ],
        )
        await conn.execute(
            workflow_run.insert(),
            [
                {
                    "id": f"wfr_{age}_{status}",
                    "name": "capture-payment",
                    "idempotency_key": f"k_{age}_{status}",
                    "fingerprint": "f",
                    "input": {},
                    "status": status,
                    "steps": {},
                    "created_at": when,
                    "updated_at": when,
                    "completed_at": when if status in ("succeeded", "failed") else None,
                }
                for age, when in (("old", old), ("new", recent))
                for status in ("succeeded", "failed", "running", "suspended")
            ],
        )
    pruned = await prune(quick.database, retention=timedelta(days=30))

    assert pruned["event_outbox"] == 2 and pruned["webhook_event"] == 3 and pruned["workflow_run"] == 2
    async with quick.database.read() as conn:
        outbox_left = set((await conn.execute(select(event_outbox.c.id))).scalars())
        events_left = set((await conn.execute(select(webhook_event.c.id))).scalars())
        runs_left = set((await conn.execute(select(workflow_run.c.id))).scalars())
    assert outbox_left == {"evt_old_pending", "evt_new_dispatched", "evt_new_failed", "evt_new_pending"}
    assert events_left == {
        "whev_old_pending",
        *(f"whev_new_{s}" for s in ("processed", "ignored", "failed", "pending")),
    }
    assert runs_left == {
        "wfr_old_running",
        "wfr_old_suspended",
        *(f"wfr_new_{s}" for s in ("succeeded", "failed", "running", "suspended")),
    }


async def _true(value: bool) -> bool:
    return value


async def test_a_stopping_worker_hands_back_the_provider_events_it_could_not_finish(
    database_url: str,
) -> None:
    gate = asyncio.Event()

    class Slow(TestingPaymentProvider):
        identifier = "slow"

        async def authorize_payment(self, input: ProviderInput) -> AuthorizePaymentOutput:
            await gate.wait()
            return await super().authorize_payment(input)

    providers = [{"resolve": Slow, "id": "default", "options": {"webhook_secret": SECRET}}]
    async with await PaymentModule.connect(
        database_url, providers=providers, options={"webhook_delay": 0}, migrate=False
    ) as module:
        collection = await module.create_payment_collections({"currency_code": "usd", "amount": 10})
        session = await module.create_payment_session(
            collection.id,
            {"provider_id": "pp_slow_default", "amount": 10, "currency_code": "usd", "data": {}},
        )
        body = json.dumps({"id": "evt_slow", "action": "authorized", "session_id": session.id}).encode()
        await receive_webhook(module, "slow_default", body, {SIGNATURE_HEADER: sign(body, SECRET)})
        worker = Worker(module, poll_interval=0.02)
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))

        async def claimed() -> bool:
            async with module.database.read() as conn:
                row = (await conn.execute(select(webhook_event.c.locked_until))).scalar_one()
            return row is not None

        await until(claimed)
        await stop_worker(running, stop, 0.2)  # the authorization cannot finish in time

        async with module.database.read() as conn:
            row = (await conn.execute(select(webhook_event))).mappings().one()
        # handed back: no lease left to wait out, the attempt not counted, still to be applied
        assert (row["status"], row["locked_until"], row["attempts"]) == ("pending", None, 0)
        gate.set()
