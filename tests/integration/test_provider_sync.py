"""The janitor (provider sync): sessions whose webhook never came are asked about with backoff, and
the answer is applied as the webhook would have been, once even when the late webhook races it.
The testing provider's `silent` scenario never sends its webhook; on both databases."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from test_webhooks import quick as quick  # the fixture: processed at once, retried once

from paymod import PaymentModule
from paymod.domain.errors import NotAllowedError
from paymod.persistence.dashboard_queries import collection_timeline
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import event_outbox, payment, payment_session
from paymod.providers.testing import SIGNATURE_HEADER, TestingPaymentProvider, sign
from paymod.webhooks.inbox import receive_webhook
from paymod.webhooks.provider_sync import sync_sessions
from paymod.webhooks.worker import Worker

NOW = timedelta(0)


async def silent_session(
    module: PaymentModule, settles_as: str = "authorized", settle_after: float = 0, amount: int = 100
) -> tuple[str, str]:
    """(collection, session) whose customer authorized and whose provider never reported."""
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": amount})
    session = await module.create_payment_session(
        collection.id,
        {
            "provider_id": "pp_testing_default",
            "amount": amount,
            "currency_code": "usd",
            "data": {"scenario": "silent", "settles_as": settles_as, "settle_after": settle_after},
        },
    )
    assert await module.authorize_payment_session(session.id) is None  # pending for now
    return collection.id, session.id


async def events(module: PaymentModule, name: str) -> list[dict[str, Any]]:
    async with module.database.read() as conn:
        found = await conn.execute(select(event_outbox.c.data).where(event_outbox.c.name == name))
        return [dict(r) for r in found.scalars()]


async def session_row(module: PaymentModule, session_id: str) -> dict[str, Any]:
    async with module.database.read() as conn:
        found = await conn.execute(select(payment_session).where(payment_session.c.id == session_id))
        return dict(found.mappings().one())


async def payments_of(module: PaymentModule, session_id: str) -> int:
    async with module.database.read() as conn:
        found = await conn.execute(
            select(func.count()).select_from(payment).where(payment.c.payment_session_id == session_id)
        )
        return int(found.scalar_one())


async def test_the_janitor_authorizes_a_session_whose_webhook_never_came(module: PaymentModule) -> None:
    collection_id, session_id = await silent_session(module)
    assert (await module.retrieve_payment_session(session_id)).status == "pending_authorization"
    [checked] = await sync_sessions(module, after=NOW)
    assert (checked.before, checked.provider_status, checked.outcome, checked.after) == (
        "pending_authorization",
        "authorized",
        "authorized",
        "authorized",
    )
    session = await module.retrieve_payment_session(session_id, {"relations": ["payment"]})
    assert session.payment is not None and session.payment.amount == Decimal(100)
    assert (await module.retrieve_payment_collection(collection_id)).status == "authorized"
    assert await events(module, "payment.payment-session.synced") == [
        {
            "id": session_id,
            "before": "pending_authorization",
            "after": "authorized",
            "source": "provider_sync",
            "provider_status": "authorized",
        }
    ]
    assert await sync_sessions(module, after=NOW) == []  # settled: nothing to ask any more
    timeline = await collection_timeline(module.database, collection_id)
    assert "Event payment.payment-session.synced" in [entry.title for entry in timeline]


async def test_the_janitor_books_a_capture_the_provider_made(module: PaymentModule) -> None:
    collection_id, session_id = await silent_session(module, settles_as="captured")
    [checked] = await sync_sessions(module, after=NOW)
    assert checked.outcome == "captured"
    session = await module.retrieve_payment_session(session_id, {"relations": ["payment"]})
    assert session.payment is not None
    found = await module.retrieve_payment(session.payment.id, {"relations": ["captures"]})
    assert [c.amount for c in found.captures or []] == [Decimal(100)]
    assert (await module.retrieve_payment_collection(collection_id)).status == "completed"


async def test_the_janitor_marks_canceled_and_failed_sessions(module: PaymentModule) -> None:
    _, canceled = await silent_session(module, settles_as="canceled")
    _, failed = await silent_session(module, settles_as="error")
    report = {entry.session_id: entry for entry in await sync_sessions(module, after=NOW)}
    assert (report[canceled].after, report[failed].after) == ("canceled", "error")
    assert (await module.retrieve_payment_session(canceled)).status == "canceled"
    assert (await module.retrieve_payment_session(failed)).status == "error"
    assert await payments_of(module, canceled) + await payments_of(module, failed) == 0
    assert len(await events(module, "payment.payment-session.synced")) == 2


async def test_the_janitor_leaves_sessions_waiting_for_the_customer(module: PaymentModule) -> None:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 10})
    three_ds = await module.create_payment_session(
        collection.id,
        {
            "provider_id": "pp_testing_default",
            "amount": 10,
            "currency_code": "usd",
            "data": {"scenario": "requires_more"},
        },
    )
    with pytest.raises(NotAllowedError):  # the customer has 3-D Secure to do
        await module.authorize_payment_session(three_ds.id)
    [checked] = await sync_sessions(module, after=NOW)
    assert (checked.before, checked.provider_status, checked.outcome) == (
        "requires_more",
        "requires_more",
        "unchanged",
    )
    assert (await module.retrieve_payment_session(three_ds.id)).status == "requires_more"
    assert await events(module, "payment.payment-session.synced") == []


async def test_the_janitor_asks_again_with_backoff_and_stops_after_the_max_age(
    module: PaymentModule, testing_provider: TestingPaymentProvider
) -> None:
    _, session_id = await silent_session(module, settle_after=3600)
    start = utc_now()
    [first] = await sync_sessions(module, after=NOW, now=start)
    assert first.outcome == "unchanged"
    row = await session_row(module, session_id)
    assert row["provider_check_attempts"] == 1
    assert row["next_provider_check_at"] - row["provider_checked_at"] == timedelta(minutes=1)
    # Not due yet: not asked.
    assert await sync_sessions(module, after=NOW, now=start + timedelta(seconds=30)) == []
    assert testing_provider.count("get_payment_status") == 1
    second = start + timedelta(minutes=1)
    assert len(await sync_sessions(module, after=NOW, now=second)) == 1
    row = await session_row(module, session_id)
    assert row["provider_check_attempts"] == 2
    assert row["next_provider_check_at"] - second == timedelta(minutes=2)
    assert await sync_sessions(module, after=NOW, now=second + timedelta(seconds=90)) == []
    # Past the max age: never asked again.
    late = start + timedelta(days=8)
    assert await sync_sessions(module, after=NOW, max_age=timedelta(days=7), now=late) == []
    assert testing_provider.count("get_payment_status") == 2


async def test_the_janitor_waits_for_session_sync_after(module: PaymentModule) -> None:
    await silent_session(module)
    assert await sync_sessions(module, after=timedelta(minutes=15)) == []
    later = utc_now() + timedelta(minutes=16)
    assert len(await sync_sessions(module, after=timedelta(minutes=15), now=later)) == 1


async def test_a_session_nobody_paid_stays_pending(module: PaymentModule) -> None:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 10})
    session = await module.create_payment_session(
        collection.id, {"provider_id": "pp_testing_default", "amount": 10, "currency_code": "usd"}
    )
    [checked] = await sync_sessions(module, after=NOW)
    assert (checked.provider_status, checked.outcome) == ("pending", "unchanged")
    assert (await module.retrieve_payment_session(session.id)).status == "pending"


async def test_the_janitor_racing_the_late_webhook_books_once(quick: PaymentModule) -> None:
    for round in range(5):
        _, session_id = await silent_session(quick)
        raw = json.dumps(
            {"id": f"evt_late_{round}", "action": "authorized", "session_id": session_id}
        ).encode()
        await receive_webhook(quick, "testing_default", raw, {SIGNATURE_HEADER: sign(raw, "whsec_testing")})
        worker = Worker(quick, sync_every=0, expiry_every=0)
        try:
            await asyncio.gather(sync_sessions(quick, after=NOW), worker.process_inbox())
        finally:
            await worker.close()
        assert await payments_of(quick, session_id) == 1
    created = await events(quick, "payment.payment.created")
    assert len(created) == 5


async def test_the_janitor_racing_the_customers_authorize_books_once(module: PaymentModule) -> None:
    _, session_id = await silent_session(module)
    results = await asyncio.gather(
        sync_sessions(module, after=NOW), module.authorize_payment_session(session_id), return_exceptions=True
    )
    assert not any(isinstance(r, BaseException) for r in results), results
    assert await payments_of(module, session_id) == 1
    assert len(await events(module, "payment.payment.created")) == 1


async def test_the_worker_runs_the_janitor_in_its_maintenance_lane(module: PaymentModule) -> None:
    _, session_id = await silent_session(module)
    worker = Worker(module, sync_after=NOW, expiry_every=0)
    try:
        await worker.maintain()
    finally:
        await worker.close()
    assert worker.handled["synced"] == 1
    assert await payments_of(module, session_id) == 1
