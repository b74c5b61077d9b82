"""An external refund reported by the provider's webhook racing an admin refund on the same payment
(issue 17): two modules on one database, as two servers would be, each round a fresh payment of 100
captured, the admin refunding 60 through one while the worker of the other books the provider's 60.
Both are guarded under the payment's lock, so one of them is booked and the other refused: never more
refunded than captured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from paymod import PaymentModule
from paymod.domain.errors import InvalidDataError
from paymod.domain.rules import REFUND_EXCEEDS
from paymod.webhooks.inbox import list_webhook_events
from reliability.provider_webhooks import authorized_payment, race_the_worker, report, two_modules

ROUNDS = 8


@pytest.fixture
async def servers(database_url: str) -> AsyncIterator[tuple[PaymentModule, PaymentModule]]:
    async with two_modules(database_url) as modules:
        yield modules


async def test_an_external_refund_racing_an_admin_refund_never_refunds_more_than_captured(
    servers: tuple[PaymentModule, PaymentModule],
) -> None:
    admin, hooks = servers
    outcomes: list[tuple[bool, bool]] = []
    for round in range(ROUNDS):
        session, payment = await authorized_payment(admin)
        await admin.capture_payment({"payment_id": payment.id})
        body = {
            "id": f"evt_race_{round}",
            "action": "refunded",
            "session_id": session.id,
            "refund_id": f"re_race_{round}",
            "amount": 60,
        }
        await report(hooks, body)
        admin_result = await race_the_worker(
            hooks, admin.refund_payment({"payment_id": payment.id, "amount": 60})
        )
        refunds = await admin.list_refunds({"payment_id": payment.id})
        assert sum((r.amount for r in refunds), Decimal(0)) <= Decimal(100), refunds
        assert len(refunds) == 1, refunds
        admin_booked = not isinstance(admin_result, BaseException)
        if not admin_booked:
            assert isinstance(admin_result, InvalidDataError) and admin_result.message == REFUND_EXCEEDS
        [event] = [e for e in await list_webhook_events(hooks) if e["event_id"] == f"evt_race_{round}"]
        external_booked = event["status"] == "processed"
        if not external_booked:
            assert event["status"] == "failed" and "not booked" in event["last_error"], event
        assert admin_booked != external_booked
        outcomes.append((admin_booked, external_booked))
    assert len(outcomes) == ROUNDS
