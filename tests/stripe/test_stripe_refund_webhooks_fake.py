"""Stripe's refund events mapped and applied, with Stripe answered by the in-memory fake behind the
SDK's HTTP client (localstripe sends no refund events), on SQLite and PostgreSQL.

Shapes (docs.stripe.com/api/events/types, /api/refunds/object, /api/charges/object):
- `charge.refunded`: `data.object` is the Charge (`payment_intent`, `currency`, `amount_refunded`);
  since API version 2022-11-15 its `refunds` list is only there when expanded, which webhooks never
  are, so paymod lists the intent's refunds (GET /v1/refunds?payment_intent=);
- `refund.created`, `refund.updated`, `charge.refund.updated`: `data.object` is the Refund (`id`,
  `amount` in the currency's smallest unit, `currency`, `payment_intent`, `status` pending /
  requires_action / succeeded / failed / canceled, `failure_reason`, `metadata`).
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
from paymod.persistence.tables import event_outbox, payment, refund
from paymod.webhooks.inbox import list_webhook_events, receive_webhook
from paymod.webhooks.worker import Worker

PROVIDER = "pp_stripe_stripe"


@pytest.fixture
async def module(database_url: str, fake: FakeStripe) -> AsyncIterator[PaymentModule]:
    config = stripe_config("https://api.stripe.test", http_client=fake, max_network_retries=2)
    options = {"webhook_delay": 0, "webhook_retries": 1}
    async with await PaymentModule.connect(
        database_url, providers=[config], options=options, migrate=False
    ) as m:
        yield m


async def captured(module: PaymentModule, amount: str = "100", currency: str = "usd") -> tuple[str, str]:
    """(payment id, intent id) of a payment captured in full."""
    collection = await module.create_payment_collections(
        {"currency_code": currency, "amount": Decimal(amount)}
    )
    session = await module.create_payment_session(
        collection.id,
        {
            "provider_id": PROVIDER,
            "amount": Decimal(amount),
            "currency_code": currency,
            "data": {"payment_method": "pm_card_visa", "confirm": True},
        },
    )
    paid = await module.authorize_payment_session(session.id)
    assert paid is not None
    await module.capture_payment({"payment_id": paid.id})
    return paid.id, str(session.data["id"])


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
    if not received.id:
        return "not stored"
    [stored] = [e for e in await list_webhook_events(module) if e["id"] == received.id]
    return str(stored["status"])


async def rows(module: PaymentModule, payment_id: str) -> list[dict[str, Any]]:
    async with module.database.read() as conn:
        found = await conn.execute(select(refund).where(refund.c.payment_id == payment_id))
        return [dict(r) for r in found.mappings()]


async def status(module: PaymentModule, payment_id: str) -> str:
    async with module.database.read() as conn:
        return str(
            (await conn.execute(select(payment.c.status).where(payment.c.id == payment_id))).scalar_one()
        )


async def test_a_dashboard_refund_is_booked_once_from_charge_refunded_and_refund_created(
    module: PaymentModule, fake: FakeStripe
) -> None:
    payment_id, intent_id = await captured(module)
    outside = fake.refund_outside(intent_id, 3000)
    assert await deliver(module, fake, fake.last_event("charge.refunded")) == "processed"
    assert await deliver(module, fake, fake.last_event("refund.created")) == "ignored"
    [row] = await rows(module, payment_id)
    assert (row["provider_refund_id"], row["amount"], row["note"]) == (
        outside["id"],
        Decimal(30),
        "refunded at the provider",
    )
    assert await status(module, payment_id) == "partially_refunded"
    # The refunds were listed from the API: the Charge of the event leaves them out.
    assert fake.calls("GET", "/v1/refunds")


async def test_a_charge_carrying_its_refunds_books_those_that_moved_money(
    module: PaymentModule, fake: FakeStripe
) -> None:
    """An endpoint on an API version before 2022-11-15 gets `charge.refunds` inline."""
    payment_id, intent_id = await captured(module)
    first = fake.refund_outside(intent_id, 1000)
    second = fake.refund_outside(intent_id, 2000)
    fake.fail_refund(second["id"])
    event = fake.last_event("charge.refunded")
    event = json.loads(json.dumps(event))
    event["data"]["object"]["refunds"] = {
        "object": "list",
        "data": [fake._export(fake.objects[second["id"]]), fake._export(fake.objects[first["id"]])],
        "has_more": False,
    }
    assert await deliver(module, fake, event) == "processed"
    assert [(r["provider_refund_id"], r["amount"]) for r in await rows(module, payment_id)] == [
        (first["id"], Decimal(10))
    ]
    assert not fake.calls("GET", "/v1/refunds")


async def test_paymods_own_refund_stores_stripes_id_and_its_webhooks_book_nothing(
    module: PaymentModule, fake: FakeStripe
) -> None:
    payment_id, _ = await captured(module)
    await module.refund_payment({"payment_id": payment_id, "amount": 40})
    [own] = await rows(module, payment_id)
    [made] = fake.of_type("re_")
    assert own["provider_refund_id"] == made["id"]
    assert await deliver(module, fake, fake.last_event("charge.refunded")) == "ignored"
    assert await deliver(module, fake, fake.last_event("refund.created")) == "ignored"
    assert [r["id"] for r in await rows(module, payment_id)] == [own["id"]]


async def test_a_refund_that_fails_at_stripe_counts_as_captured_again(
    module: PaymentModule, fake: FakeStripe
) -> None:
    payment_id, _ = await captured(module)
    await module.refund_payment({"payment_id": payment_id})
    assert await status(module, payment_id) == "refunded"
    [made] = fake.of_type("re_")
    fake.fail_refund(made["id"])
    assert await deliver(module, fake, fake.last_event("refund.updated")) == "processed"
    assert await deliver(module, fake, fake.last_event("charge.refund.updated")) == "ignored"
    [row] = await rows(module, payment_id)
    assert (row["deleted_at"] is not None, row["metadata"]["failed"]) == (True, "expired_or_canceled_card")
    assert await status(module, payment_id) == "captured"
    async with module.database.read() as conn:
        names = (await conn.execute(select(event_outbox.c.name))).scalars().all()
    assert "payment.refund.failed" in names


async def test_a_canceled_refund_is_failed_too_and_amounts_follow_the_currency(
    module: PaymentModule, fake: FakeStripe
) -> None:
    """JPY is zero-decimal: Stripe's 500 is 500 yen (docs.stripe.com/currencies#zero-decimal)."""
    payment_id, intent_id = await captured(module, "1000", "jpy")
    outside = fake.refund_outside(intent_id, 500)
    assert await deliver(module, fake, fake.last_event("refund.created")) == "processed"
    assert [r["amount"] for r in await rows(module, payment_id)] == [Decimal(500)]
    fake.fail_refund(outside["id"], status="canceled")
    assert await deliver(module, fake, fake.last_event("refund.updated")) == "processed"
    [row] = await rows(module, payment_id)
    assert row["metadata"] == {"external": True, "failed": "canceled"}
    assert await status(module, payment_id) == "captured"


async def test_refunds_of_intents_paymod_did_not_create_are_not_ours(
    module: PaymentModule, fake: FakeStripe
) -> None:
    payment_id, intent_id = await captured(module)
    fake.objects[intent_id]["metadata"] = {}
    fake.refund_outside(intent_id, 1000)
    assert await deliver(module, fake, fake.last_event("refund.created")) == "ignored"
    assert await rows(module, payment_id) == []
