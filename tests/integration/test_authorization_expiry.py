"""Authorizations that lapse at the provider: warned about once before their deadline, canceled (or
closed after a partial capture) once after it, and never captured since. The testing provider's
`authorization_ttl` sets the deadline; the job is run with an explicit `now`, on both databases."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from paymod import PaymentModule
from paymod.domain.errors import NotAllowedError
from paymod.persistence.dashboard_queries import collection_timeline
from paymod.persistence.tables import event_outbox, payment
from paymod.providers.testing import TestingPaymentProvider
from paymod.webhooks.worker import Worker

DAY = timedelta(days=1)


async def authorized(module: PaymentModule, ttl: float, amount: int = 100) -> tuple[str, str]:
    """(collection, payment) authorized with a deadline `ttl` seconds away."""
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": amount})
    session = await module.create_payment_session(
        collection.id,
        {
            "provider_id": "pp_testing_default",
            "amount": amount,
            "currency_code": "usd",
            "data": {"authorization_ttl": ttl},
        },
    )
    found = await module.authorize_payment_session(session.id)
    assert found is not None
    return collection.id, found.id


async def events(module: PaymentModule, name: str) -> list[dict[str, Any]]:
    async with module.database.read() as conn:
        found = await conn.execute(select(event_outbox.c.data).where(event_outbox.c.name == name))
        return [dict(r) for r in found.scalars()]


async def stored(module: PaymentModule, payment_id: str) -> dict[str, Any]:
    async with module.database.read() as conn:
        found = await conn.execute(select(payment).where(payment.c.id == payment_id))
        return dict(found.mappings().one())


async def test_the_authorization_keeps_the_providers_deadline(module: PaymentModule) -> None:
    _, payment_id = await authorized(module, ttl=7 * 24 * 3600)
    row = await stored(module, payment_id)
    found = await module.retrieve_payment(payment_id)
    assert found.authorization_expires_at == row["authorization_expires_at"]
    assert row["authorization_expires_at"] - row["created_at"] > 6 * DAY
    assert (row["expiring_notified_at"], row["expired_at"]) == (None, None)


async def test_an_authorization_about_to_lapse_is_warned_about_once(module: PaymentModule) -> None:
    _, far = await authorized(module, ttl=3 * 24 * 3600)
    _, near = await authorized(module, ttl=3600)
    first = await module.maintain_authorization_expiry(warning=DAY)
    assert (first.warned, first.expired) == ([near], [])
    again = await module.maintain_authorization_expiry(warning=DAY)
    assert (again.warned, again.expired) == ([], [])
    expires_at = (await stored(module, near))["authorization_expires_at"]
    assert await events(module, "payment.authorization_expiring") == [
        {"id": near, "expires_at": expires_at.isoformat()}
    ]
    assert (await stored(module, near))["expiring_notified_at"] is not None
    assert (await stored(module, far))["expiring_notified_at"] is None
    # Nothing else changed: the payment is still authorized and capturable.
    await module.capture_payment({"payment_id": near, "amount": 10})


async def test_a_lapsed_authorization_is_canceled_once(module: PaymentModule) -> None:
    collection_id, payment_id = await authorized(module, ttl=3600)
    expires_at = (await stored(module, payment_id))["authorization_expires_at"]
    later = expires_at + timedelta(seconds=1)
    report = await module.maintain_authorization_expiry(warning=DAY, now=later)
    assert (report.warned, report.expired) == ([], [payment_id])
    assert await module.maintain_authorization_expiry(warning=DAY, now=later + DAY) == type(report)()
    row = await stored(module, payment_id)
    assert (row["status"], row["expired_at"]) == ("canceled", later)
    assert row["canceled_at"] is not None
    assert row["released_amount"] is None
    collection = await module.retrieve_payment_collection(collection_id)
    assert (collection.status, collection.authorized_amount) == ("canceled", Decimal(0))
    assert await events(module, "payment.authorization_expired") == [
        {"id": payment_id, "reason": "expired", "expires_at": expires_at.isoformat()}
    ]
    timeline = await collection_timeline(module.database, collection_id)
    assert ("expired", "Authorization expired") in [(entry.kind, entry.title) for entry in timeline]


async def test_a_lapsed_authorization_after_a_partial_capture_is_closed(module: PaymentModule) -> None:
    collection_id, payment_id = await authorized(module, ttl=3600)
    await module.capture_payment({"payment_id": payment_id, "amount": 30})
    expires_at = (await stored(module, payment_id))["authorization_expires_at"]
    report = await module.maintain_authorization_expiry(now=expires_at + timedelta(minutes=5))
    assert report.expired == [payment_id]
    found = await module.retrieve_payment(payment_id, {"relations": ["captures"]})
    assert found.released_amount == Decimal(70) and found.expired_at is not None
    assert [c.amount for c in found.captures or []] == [Decimal(30)]
    collection = await module.retrieve_payment_collection(collection_id)
    assert (collection.status, collection.captured_amount) == ("partially_captured", Decimal(30))
    await module.refund_payment({"payment_id": payment_id, "amount": 30})  # what was captured stays


async def test_captured_or_canceled_authorizations_never_expire(module: PaymentModule) -> None:
    _, captured = await authorized(module, ttl=3600)
    await module.capture_payment({"payment_id": captured})
    _, canceled = await authorized(module, ttl=3600)
    await module.cancel_payment(canceled)
    report = await module.maintain_authorization_expiry(
        warning=DAY, now=(await stored(module, captured))["authorization_expires_at"] + DAY
    )
    assert (report.warned, report.expired) == ([], [])
    assert await events(module, "payment.authorization_expired") == []


async def test_a_capture_of_an_expired_authorization_is_refused_before_the_provider(
    module: PaymentModule, testing_provider: TestingPaymentProvider
) -> None:
    _, payment_id = await authorized(module, ttl=3600)
    expires_at = (await stored(module, payment_id))["authorization_expires_at"]
    await module.maintain_authorization_expiry(now=expires_at + timedelta(seconds=1))
    with pytest.raises(NotAllowedError, match="expired") as refused:
        await module.capture_payment({"payment_id": payment_id})
    assert refused.value.code == "authorization_expired"
    assert testing_provider.count("capture_payment") == 0


async def test_a_capture_past_the_deadline_is_refused_before_the_job_ran(
    module: PaymentModule, testing_provider: TestingPaymentProvider
) -> None:
    """The deadline alone decides: the provider would refuse the capture (or charge the card anew)."""
    _, payment_id = await authorized(module, ttl=-1)
    with pytest.raises(NotAllowedError, match="can no longer be captured"):
        await module.capture_payment({"payment_id": payment_id, "amount": 10})
    assert testing_provider.count("capture_payment") == 0
    assert (await module.retrieve_payment(payment_id, {"relations": ["captures"]})).captures == []


async def test_the_worker_warns_and_expires_in_its_maintenance_lane(module: PaymentModule) -> None:
    _, soon = await authorized(module, ttl=3600)
    _, gone = await authorized(module, ttl=-1)
    worker = Worker(module, expiry_warning=DAY, sync_every=0)
    try:
        await worker.maintain()
    finally:
        await worker.close()
    assert (worker.handled["expiring"], worker.handled["expired"]) == (1, 1)
    assert [e["id"] for e in await events(module, "payment.authorization_expiring")] == [soon]
    assert [e["id"] for e in await events(module, "payment.authorization_expired")] == [gone]
