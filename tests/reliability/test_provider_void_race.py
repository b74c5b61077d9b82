"""An authorization voided at the provider, its webhook racing an admin capture of the same payment
(issue 17): two modules on one database, as two servers would be, each round a fresh payment of 100
authorized, the admin capturing it in full through one while the worker of the other applies the
provider's `canceled`. Both are decided under the payment's lock, so one of them wins and the books
agree with it: captured and not canceled, or canceled with nothing captured.

When the provider really voided the authorization, it refuses the capture: a capture booked first
made the void's report find nothing to cancel, so the refused capture asks the provider and books
the void itself. Whichever comes first, the payment ends canceled, once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import select

from paymod import PaymentModule
from paymod.domain.errors import InvalidDataError, ProviderError
from paymod.persistence.tables import event_outbox, payment
from paymod.webhooks.inbox import list_webhook_events
from reliability.provider_webhooks import authorized_payment, race_the_worker, report, two_modules

ROUNDS = 8


@pytest.fixture
async def servers(database_url: str) -> AsyncIterator[tuple[PaymentModule, PaymentModule]]:
    async with two_modules(database_url) as modules:
        yield modules


async def test_a_void_at_the_provider_racing_an_admin_capture_has_one_winner(
    servers: tuple[PaymentModule, PaymentModule],
) -> None:
    admin, hooks = servers
    outcomes: list[bool] = []
    for round in range(ROUNDS):
        session, authorized = await authorized_payment(admin)
        body = {"id": f"evt_void_{round}", "action": "canceled", "session_id": session.id}
        await report(hooks, body)
        capture_result = await race_the_worker(hooks, admin.capture_payment({"payment_id": authorized.id}))
        found = await admin.retrieve_payment(authorized.id, {"relations": ["captures"]})
        captured = sum((c.amount for c in found.captures or []), Decimal(0))
        async with admin.database.read() as conn:
            stored_status = (
                await conn.execute(select(payment.c.status).where(payment.c.id == authorized.id))
            ).scalar_one()
            found_events = await conn.execute(
                select(event_outbox.c.data).where(
                    event_outbox.c.name == "payment.canceled",
                    event_outbox.c.payment_collection_id == session.payment_collection_id,
                )
            )
            canceled_events = found_events.scalars().all()
        [event] = [e for e in await list_webhook_events(hooks) if e["event_id"] == f"evt_void_{round}"]
        void_won = found.canceled_at is not None
        if void_won:
            assert isinstance(capture_result, InvalidDataError), capture_result
            assert "has been canceled" in capture_result.message
            assert (captured, found.captured_at, found.released_amount) == (Decimal(0), None, None)
            assert (stored_status, event["status"]) == ("canceled", "processed")
            assert canceled_events == [{"id": authorized.id, "at_provider": True}]
        else:
            assert not isinstance(capture_result, BaseException), capture_result
            assert (captured, found.released_amount) == (Decimal(100), None)
            assert found.captured_at is not None
            assert (stored_status, event["status"]) == ("captured", "ignored"), event
            assert canceled_events == []
        collection_status = (await admin.retrieve_payment_collection(session.payment_collection_id)).status
        assert collection_status == ("canceled" if void_won else "completed")
        outcomes.append(void_won)
    assert len(outcomes) == ROUNDS


async def test_a_void_at_the_provider_racing_a_capture_it_refuses_cancels_the_payment_once(
    servers: tuple[PaymentModule, PaymentModule],
) -> None:
    admin, hooks = servers
    for round in range(ROUNDS):
        session, authorized = await authorized_payment(admin, data={"scenario": "voided"})
        body = {"id": f"evt_voided_{round}", "action": "canceled", "session_id": session.id}
        await report(hooks, body)
        capture_result = await race_the_worker(hooks, admin.capture_payment({"payment_id": authorized.id}))
        # Either the void was booked first and the capture refused by paymod, or the capture was
        # booked first and refused by the provider, which said it voided the authorization.
        if isinstance(capture_result, ProviderError):
            assert capture_result.code == "authorization_voided", capture_result
            assert "voided at the provider" in capture_result.message
        else:
            assert isinstance(capture_result, InvalidDataError), capture_result
            assert "has been canceled" in capture_result.message
        found = await admin.retrieve_payment(authorized.id, {"relations": ["captures"]})
        async with admin.database.read() as conn:
            stored_status = (
                await conn.execute(select(payment.c.status).where(payment.c.id == authorized.id))
            ).scalar_one()
            found_events = await conn.execute(
                select(event_outbox.c.data).where(
                    event_outbox.c.name == "payment.canceled",
                    event_outbox.c.payment_collection_id == session.payment_collection_id,
                )
            )
            canceled_events = found_events.scalars().all()
        assert found.canceled_at is not None, "left authorized"
        assert (found.captures, found.captured_at, found.released_amount) == ([], None, None)
        assert stored_status == "canceled"
        assert canceled_events == [{"id": authorized.id, "at_provider": True}]
        assert (await admin.retrieve_payment_collection(session.payment_collection_id)).status == "canceled"
