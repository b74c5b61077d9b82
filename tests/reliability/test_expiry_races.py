"""Two servers' maintenance on one database: authorizations about to lapse are warned about once, and
lapsed ones expired once, however the two passes interleave; two janitors asking about the same silent
sessions book each payment once and report each correction once. Two modules with their own pools, as
two `paymod worker` processes would be."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from paymod import PaymentModule
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import event_outbox, payment
from paymod.webhooks.provider_sync import sync_sessions
from reliability.provider_webhooks import two_modules

PAYMENTS = 12


@pytest.fixture
async def servers(database_url: str) -> AsyncIterator[tuple[PaymentModule, PaymentModule]]:
    async with two_modules(database_url) as modules:
        yield modules


async def authorized(module: PaymentModule, data: dict[str, object]) -> str:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 10})
    session = await module.create_payment_session(
        collection.id,
        {"provider_id": "pp_testing_default", "amount": 10, "currency_code": "usd", "data": data},
    )
    found = await module.authorize_payment_session(session.id)
    return session.id if found is None else found.id


async def event_counts(module: PaymentModule, name: str) -> Counter[str]:
    async with module.database.read() as conn:
        found = await conn.execute(select(event_outbox.c.data).where(event_outbox.c.name == name))
        return Counter(str(data["id"]) for data in found.scalars())


async def test_two_workers_warn_about_and_expire_each_authorization_once(
    servers: tuple[PaymentModule, PaymentModule],
) -> None:
    one, two = servers
    ids = [await authorized(one, {"authorization_ttl": 3600}) for _ in range(PAYMENTS)]
    warning = timedelta(days=1)
    reports = await asyncio.gather(
        one.maintain_authorization_expiry(warning=warning), two.maintain_authorization_expiry(warning=warning)
    )
    assert sorted(reports[0].warned + reports[1].warned) == sorted(ids)
    assert await event_counts(one, "payment.authorization_expiring") == Counter(ids)
    later = utc_now() + timedelta(hours=2)
    reports = await asyncio.gather(
        one.maintain_authorization_expiry(now=later), two.maintain_authorization_expiry(now=later)
    )
    assert sorted(reports[0].expired + reports[1].expired) == sorted(ids)
    assert await event_counts(one, "payment.authorization_expired") == Counter(ids)
    async with one.database.read() as conn:
        statuses = (await conn.execute(select(payment.c.status).where(payment.c.id.in_(ids)))).scalars()
        assert set(statuses) == {"canceled"}


async def test_two_janitors_book_each_silent_session_once(
    servers: tuple[PaymentModule, PaymentModule],
) -> None:
    one, two = servers
    sessions = [await authorized(one, {"scenario": "silent"}) for _ in range(PAYMENTS)]
    await asyncio.gather(sync_sessions(one, after=timedelta(0)), sync_sessions(two, after=timedelta(0)))
    async with one.database.read() as conn:
        found = await conn.execute(
            select(payment.c.payment_session_id, func.count())
            .where(payment.c.payment_session_id.in_(sessions))
            .group_by(payment.c.payment_session_id)
        )
        assert {row[0]: row[1] for row in found} == dict.fromkeys(sessions, 1)
    assert await event_counts(one, "payment.payment-session.synced") == Counter(sessions)
