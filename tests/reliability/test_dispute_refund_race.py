"""A lost dispute reported by the provider's webhook racing an admin refund on the same payment: two
modules on one database, as two servers would be, each round a fresh payment of 100 captured, the
admin refunding 60 through one while the worker of the other records a dispute of 60, lost.

Both run under the payment's lock, so they are serial: the refund either came first (booked, and the
dispute recorded after it) or saw the lost dispute and was refused, as only 40 stayed refundable.
A refund booked after the dispute, past captured less lost, is the race this guards against. Which
came first is read from the rows' `created_at`, stamped under the lock by the one holding it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import select

from paymod import PaymentModule
from paymod.domain.errors import InvalidDataError
from paymod.domain.rules import LOST_DISPUTES
from paymod.persistence.tables import dispute
from paymod.webhooks.inbox import list_webhook_events
from reliability.provider_webhooks import authorized_payment, race_the_worker, report, two_modules

# The worker's head start in each round, in seconds: both orders happen, and the moments in between.
HEAD_STARTS = (0, 0.001, 0.002, 0.003, 0.004, 0.006, 0.008, 0.012, 0, 0.005)
ROUNDS = len(HEAD_STARTS)


@pytest.fixture
async def servers(database_url: str) -> AsyncIterator[tuple[PaymentModule, PaymentModule]]:
    async with two_modules(database_url) as modules:
        yield modules


async def test_a_lost_dispute_racing_an_admin_refund_never_refunds_more_than_captured_less_lost(
    servers: tuple[PaymentModule, PaymentModule],
) -> None:
    admin, hooks = servers
    outcomes: list[bool] = []
    for round in range(ROUNDS):
        session, payment = await authorized_payment(admin)
        await admin.capture_payment({"payment_id": payment.id})
        body = {
            "id": f"evt_race_{round}",
            "action": "disputed",
            "session_id": session.id,
            "dispute_id": f"dp_race_{round}",
            "amount": 60,
            "status": "lost",
        }
        await report(hooks, body)

        async def refund(head_start: float, payment_id: str = payment.id) -> object:
            await asyncio.sleep(head_start)
            return await admin.refund_payment({"payment_id": payment_id, "amount": 60})

        admin_result = await race_the_worker(hooks, refund(HEAD_STARTS[round]))
        [event] = [e for e in await list_webhook_events(hooks) if e["event_id"] == f"evt_race_{round}"]
        assert event["status"] == "processed", event
        async with admin.database.read() as conn:
            [lost] = (
                await conn.execute(select(dispute).where(dispute.c.payment_id == payment.id))
            ).mappings()
        assert (lost["status"], lost["amount"]) == ("lost", Decimal(60))
        refunds = await admin.list_refunds({"payment_id": payment.id})
        admin_booked = not isinstance(admin_result, BaseException)
        if admin_booked:
            [refund] = refunds
            # Booked past captured less lost: only legal when the dispute was not recorded yet.
            assert refund.created_at is not None and refund.created_at < lost["created_at"], (refund, lost)
        else:
            assert isinstance(admin_result, InvalidDataError), admin_result
            assert LOST_DISPUTES in admin_result.message
            assert refunds == []
        outcomes.append(admin_booked)
    assert len(outcomes) == ROUNDS
