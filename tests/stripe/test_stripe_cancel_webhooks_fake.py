"""Stripe's `payment_intent.canceled` on an authorized intent (voided in Stripe's dashboard or by
another integration), mapped and applied, with Stripe answered by the in-memory fake behind the SDK's
HTTP client, on SQLite and PostgreSQL.

Shape (docs.stripe.com/api/events/types#event_types-payment_intent.canceled, "Occurs when a
PaymentIntent is canceled"): `data.object` is the PaymentIntent, `status` canceled, `canceled_at`,
`cancellation_reason` (e.g. `abandoned`, `requested_by_customer`, `void_invoice`, `automatic` for an
authorization that lapsed), `amount_capturable` 0, and `amount_received` what was captured before (a
multicapture intent can be canceled between partial captures, releasing the rest).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from fake_stripe import FakeStripe
from sqlalchemy import select
from stripe_settings import stripe_config

from paymod import PaymentModule
from paymod.domain.errors import ProviderError
from paymod.persistence.tables import event_outbox, payment
from paymod.webhooks.inbox import list_webhook_events, receive_webhook
from paymod.webhooks.worker import Worker

PROVIDER = "pp_stripe_stripe"


@pytest.fixture
async def module(database_url: str, fake: FakeStripe) -> AsyncIterator[PaymentModule]:
    config = stripe_config("https://api.stripe.test", http_client=fake, multicapture=True)
    options = {"webhook_delay": 0, "webhook_retries": 1}
    async with await PaymentModule.connect(
        database_url, providers=[config], options=options, migrate=False
    ) as m:
        yield m


async def authorized(module: PaymentModule, amount: str = "100") -> tuple[str, str, str]:
    """(collection id, payment id, intent id) of an authorized payment."""
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": Decimal(amount)})
    session = await module.create_payment_session(
        collection.id,
        {
            "provider_id": PROVIDER,
            "amount": Decimal(amount),
            "currency_code": "usd",
            "data": {"payment_method": "pm_card_visa", "confirm": True},
        },
    )
    paid = await module.authorize_payment_session(session.id)
    assert paid is not None
    return collection.id, paid.id, str(session.data["id"])


async def deliver(module: PaymentModule, fake: FakeStripe, event: dict[str, Any]) -> str:
    """Receives the event as Stripe would POST it and lets the worker apply it; its stored status."""
    raw, headers = fake.signed(event)
    received = await receive_webhook(module, "stripe_stripe", raw, headers, json.loads(raw))
    worker = Worker(module)
    try:
        for _ in range(20):
            if not await worker.run_once():
                break
    finally:
        await worker.close()
    [stored] = [e for e in await list_webhook_events(module) if e["id"] == received.id]
    return str(stored["status"])


async def status(module: PaymentModule, payment_id: str) -> str:
    async with module.database.read() as conn:
        return str(
            (await conn.execute(select(payment.c.status).where(payment.c.id == payment_id))).scalar_one()
        )


async def canceled_events(module: PaymentModule) -> list[dict[str, Any]]:
    async with module.database.read() as conn:
        found = await conn.execute(
            select(event_outbox.c.data).where(event_outbox.c.name == "payment.canceled")
        )
        return [dict(r) for r in found.scalars()]


async def test_an_authorization_voided_in_stripe_cancels_the_payment(
    module: PaymentModule, fake: FakeStripe
) -> None:
    collection_id, payment_id, intent_id = await authorized(module)
    voided = fake.cancel_outside(intent_id)
    assert (voided["status"], voided["amount_capturable"]) == ("canceled", 0)
    event = fake.last_event("payment_intent.canceled")
    assert await deliver(module, fake, event) == "processed"
    assert await deliver(module, fake, event) == "processed"  # Stripe's redelivery: stored once
    found = await module.retrieve_payment(payment_id)
    assert found.canceled_at is not None and found.released_amount is None
    assert await status(module, payment_id) == "canceled"
    assert (await module.retrieve_payment_collection(collection_id)).status == "canceled"
    assert await canceled_events(module) == [{"id": payment_id, "at_provider": True}]


async def test_a_void_between_partial_captures_closes_the_payment(
    module: PaymentModule, fake: FakeStripe
) -> None:
    collection_id, payment_id, intent_id = await authorized(module)
    await module.capture_payment({"payment_id": payment_id, "amount": 30})
    fake.cancel_outside(intent_id)
    assert await deliver(module, fake, fake.last_event("payment_intent.canceled")) == "processed"
    found = await module.retrieve_payment(payment_id)
    assert found.canceled_at is not None and found.released_amount == Decimal(70)
    collection = await module.retrieve_payment_collection(collection_id)
    assert (collection.status, collection.captured_amount) == ("partially_captured", Decimal(30))


async def test_paymods_own_cancel_reported_back_changes_nothing(
    module: PaymentModule, fake: FakeStripe
) -> None:
    _, payment_id, _ = await authorized(module)
    canceled = await module.cancel_payment(payment_id)
    assert await deliver(module, fake, fake.last_event("payment_intent.canceled")) == "ignored"
    assert (await module.retrieve_payment(payment_id)).canceled_at == canceled.canceled_at
    assert await canceled_events(module) == []


async def test_a_capture_refused_because_stripe_voided_it_cancels_the_payment(
    module: PaymentModule, fake: FakeStripe
) -> None:
    """Voided in Stripe while its event is still on its way: Stripe refuses the capture
    (`payment_intent_unexpected_state`), paymod asks for the intent, finds it canceled and books the
    void; the event, delivered after, changes nothing."""
    collection_id, payment_id, intent_id = await authorized(module)
    fake.cancel_outside(intent_id)
    with pytest.raises(ProviderError, match="voided at the provider") as refused:
        await module.capture_payment({"payment_id": payment_id})
    assert refused.value.code == "payment_intent_unexpected_state"
    found = await module.retrieve_payment(payment_id, {"relations": ["captures"]})
    assert found.canceled_at is not None and (found.captures, found.released_amount) == ([], None)
    assert await status(module, payment_id) == "canceled"
    assert (await module.retrieve_payment_collection(collection_id)).status == "canceled"
    assert await deliver(module, fake, fake.last_event("payment_intent.canceled")) == "ignored"
    assert await canceled_events(module) == [{"id": payment_id, "at_provider": True}]
