"""`PaymentModule` with Stripe answered by the in-memory fake, on SQLite and PostgreSQL: the flows
whose Stripe behaviour localstripe cannot produce (see test_stripe_fake.py for the provider alone)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fake_stripe import FakeStripe, event_payload
from stripe_settings import stripe_config

from paymod import PaymentModule
from paymod.domain.errors import InvalidDataError, NotAllowedError, ProviderError, RetryableProviderError
from paymod.workflows.reconciler import reconcile

PROVIDER = "pp_stripe_stripe"


async def authorized_payment(module: PaymentModule, amount: str = "100", **data: Any) -> tuple[Any, Any]:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": Decimal(amount)})
    session = await module.create_payment_session(
        collection.id,
        {
            "provider_id": PROVIDER,
            "amount": Decimal(amount),
            "currency_code": "usd",
            "data": {"payment_method": "pm_card_visa", "confirm": True, **data},
        },
    )
    assert session.status == "authorized"
    payment = await module.authorize_payment_session(session.id)
    assert payment is not None
    return session, payment


async def test_a_decline_carrying_the_intent_stores_the_session_in_error(
    fake_module: PaymentModule, fake: FakeStripe
) -> None:
    collection = await fake_module.create_payment_collections({"currency_code": "usd", "amount": 80})
    session = await fake_module.create_payment_session(
        collection.id,
        {
            "provider_id": PROVIDER,
            "amount": 80,
            "currency_code": "usd",
            "data": {"payment_method": "pm_card_chargeDeclinedInsufficientFunds", "confirm": True},
        },
    )
    assert session.status == "error"
    assert session.data["decline_code"] == "insufficient_funds"
    assert session.data["id"] in fake.objects
    assert session.data["last_payment_error"]["message"] == "Your card has insufficient funds."
    collection = await fake_module.retrieve_payment_collection(collection.id)
    # derived again when its session changed: a session, nothing authorized
    assert collection.status == "awaiting"


@pytest.fixture
async def multicapture_module(database_url: str, fake: FakeStripe) -> AsyncIterator[PaymentModule]:
    config = stripe_config("https://api.stripe.test", http_client=fake, multicapture=True)
    async with await PaymentModule.connect(database_url, providers=[config], migrate=False) as module:
        yield module


async def test_partial_captures_use_multicapture_and_stripe_ends_with_the_sum(
    multicapture_module: PaymentModule, fake: FakeStripe
) -> None:
    session, payment = await authorized_payment(multicapture_module)
    for amount in ("30", "30", "40"):
        payment = await multicapture_module.capture_payment(
            {"payment_id": payment.id, "amount": Decimal(amount)}
        )
    assert sorted(c.amount for c in payment.captures or []) == [Decimal(30), Decimal(30), Decimal(40)]
    assert payment.captured_at is not None
    intent = fake.objects[session.data["id"]]
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 10000)
    finals = [
        c.params.get("final_capture")
        for c in fake.calls("POST", f"/v1/payment_intents/{intent['id']}/capture")
    ]
    assert finals == ["false", "false", None]
    collection = await multicapture_module.retrieve_payment_collection(session.payment_collection_id)
    assert (collection.status, collection.captured_amount) == ("completed", Decimal(100))


async def test_a_capture_whose_answer_was_lost_is_retried_with_its_key_and_captured_once(
    fake_module: PaymentModule, fake: FakeStripe
) -> None:
    session, payment = await authorized_payment(fake_module)
    capture_path = f"/v1/payment_intents/{session.data['id']}/capture"
    fake.fail("lost", times=3, path=capture_path)  # the SDK's two retries are answered, then lost too
    with pytest.raises(RetryableProviderError):
        await fake_module.capture_payment({"payment_id": payment.id, "idempotency_key": "capture-order-7"})
    # The outcome is unknown: the capture stays booked (so nothing else can take that amount) and
    # the run waits for a retry with the same key.
    payment = await fake_module.retrieve_payment(payment.id, {"relations": ["captures"]})
    assert [c.amount for c in payment.captures or []] == [Decimal(100)] and payment.captured_at is None

    payment = await fake_module.capture_payment(
        {"payment_id": payment.id, "idempotency_key": "capture-order-7"}
    )
    assert [c.amount for c in payment.captures or []] == [Decimal(100)]
    # The resumed run looks at the intent first: Stripe captured it, so it is not asked again.
    calls = fake.calls("POST", capture_path)
    assert [c.status for c in calls] == [-2, -2, -2]
    assert [c.replayed for c in calls] == [False, True, True]
    assert (
        fake.requests[-1].method == "GET"
        and fake.requests[-1].path == f"/v1/payment_intents/{session.data['id']}"
    )
    assert fake.objects[session.data["id"]]["amount_received"] == 10000


async def test_a_capture_retried_under_a_new_key_is_recognised_as_done(
    fake_module: PaymentModule, fake: FakeStripe
) -> None:
    session, payment = await authorized_payment(fake_module)
    fake.fail("lost", times=3, path=f"/v1/payment_intents/{session.data['id']}/capture")
    with pytest.raises(RetryableProviderError):
        await fake_module.capture_payment({"payment_id": payment.id})
    # A new call (a new run) finds the amount booked by the interrupted one: it captures nothing more.
    payment = await fake_module.capture_payment({"payment_id": payment.id})
    assert [c.amount for c in payment.captures or []] == [Decimal(100)]
    # The reconciler resumes the interrupted run with its own key; Stripe answers it captured.
    report = await reconcile(fake_module, older_than=timedelta(0))
    assert [r.outcome for r in report] == ["completed"]
    payment = await fake_module.retrieve_payment(payment.id, {"relations": ["captures"]})
    assert [c.amount for c in payment.captures or []] == [Decimal(100)]
    assert payment.data is not None and payment.data["status"] == "succeeded"
    collection = await fake_module.retrieve_payment_collection(session.payment_collection_id)
    assert collection.status == "completed"


async def test_refund_reasons_reach_stripe(fake_module: PaymentModule, fake: FakeStripe) -> None:
    _, payment = await authorized_payment(fake_module)
    await fake_module.capture_payment({"payment_id": payment.id})
    reason = await fake_module.create_refund_reasons(
        {"label": "Customer asked", "code": "requested_by_customer"}
    )
    await fake_module.refund_payment({"payment_id": payment.id, "amount": 25, "refund_reason_id": reason.id})
    await fake_module.refund_payment(
        {
            "payment_id": payment.id,
            "amount": 25,
            "refund_reason_id": "refr_01SEEDPRICINGERROR0000000",
            "note": "n",
        }
    )
    keys = [c.idempotency_key or "" for c in fake.calls("POST", "/v1/refunds")]
    assert all(key.startswith("ref_") for key in keys) and len(set(keys)) == 2
    assert [(r["amount"], r["reason"], r["metadata"]) for r in fake.of_type("re_")] == [
        (
            2500,
            "requested_by_customer",
            {"refund_reason": "requested_by_customer", "paymod_refund_id": keys[0]},
        ),
        (2500, None, {"refund_reason": "pricing_error", "note": "n", "paymod_refund_id": keys[1]}),
    ]


async def test_amount_capturable_updated_webhook_is_authorized(
    fake_module: PaymentModule, fake: FakeStripe
) -> None:
    session, _ = await authorized_payment(fake_module, "42.5")
    raw, headers = fake.signed(fake.last_event("payment_intent.amount_capturable_updated"))
    result = await fake_module.get_webhook_action_and_data(
        {
            "provider": "stripe_stripe",
            "payload": {"data": json.loads(raw), "raw_data": raw, "headers": headers},
        }
    )
    assert result.action == "authorized"
    assert result.data is not None
    assert (result.data.session_id, result.data.amount) == (session.id, Decimal("42.5"))

    stale_raw, stale_headers = fake.signed(fake.last_event("payment_intent.created"), timestamp=1_600_000_000)
    with pytest.raises(ProviderError, match="Timestamp outside the tolerance zone") as caught:
        await fake_module.get_webhook_action_and_data(
            {
                "provider": "stripe_stripe",
                "payload": {"data": {}, "raw_data": stale_raw, "headers": stale_headers},
            }
        )
    assert caught.value.code == "invalid_signature"


async def test_rate_limited_session_creation_is_retried_or_leaves_nothing(
    fake_module: PaymentModule, fake: FakeStripe
) -> None:
    collection = await fake_module.create_payment_collections({"currency_code": "usd", "amount": 10})
    fake.fail("rate_limit", times=2)
    session = await fake_module.create_payment_session(
        collection.id, {"provider_id": PROVIDER, "amount": 10, "currency_code": "usd"}
    )
    assert session.status == "pending" and len(fake.sleeps) == 2
    fake.fail("rate_limit", times=3)
    with pytest.raises(RetryableProviderError) as caught:
        await fake_module.create_payment_session(
            collection.id, {"provider_id": PROVIDER, "amount": 10, "currency_code": "usd"}
        )
    assert caught.value.code == "rate_limit"
    assert len(await fake_module.list_payment_sessions({"payment_collection_id": collection.id})) == 1
    assert len(fake.of_type("pi_")) == 1


async def test_racing_account_holder_creation_makes_one_holder_and_one_customer(
    fake_module: PaymentModule, fake: FakeStripe
) -> None:
    context = {"customer": {"id": "cus_shop_7", "email": "lin@example.com"}}
    first, second = await asyncio.gather(
        fake_module.create_account_holder({"provider_id": PROVIDER, "context": context}),
        fake_module.create_account_holder({"provider_id": PROVIDER, "context": context}),
    )
    assert first is not None and second is not None and first.id == second.id
    assert len([c for c in fake.of_type("cus_")]) == 1
    assert {c.idempotency_key for c in fake.calls("POST", "/v1/customers")} == {"cus_shop_7"}
    assert len(await fake_module.list_account_holders({"customer_id": "cus_shop_7"})) == 1


async def test_a_partial_capture_without_multicapture_closes_the_payment(
    fake_module: PaymentModule, fake: FakeStripe
) -> None:
    """Stripe, "Place a hold on a payment method" (docs.stripe.com/payments/place-a-hold-on-a-payment-
    method): capturing less than the authorized amount releases the rest and the PaymentIntent becomes
    `succeeded` (without multicapture, one capture per intent). paymod closes the payment the same way:
    the rest is recorded as released, the payment canceled for it, the collection partially captured;
    a second capture or a cancel no longer reach Stripe with "status of succeeded"."""
    _, payment = await authorized_payment(fake_module, "100")

    captured = await fake_module.capture_payment({"payment_id": payment.id, "amount": 60})

    assert captured.released_amount == Decimal(40)
    assert captured.canceled_at is not None and captured.captured_at is None
    collection = await fake_module.retrieve_payment_collection(payment.payment_collection_id)
    assert (collection.status, collection.captured_amount) == ("partially_captured", Decimal(60))
    with pytest.raises(InvalidDataError, match="has been canceled"):
        await fake_module.capture_payment({"payment_id": payment.id, "amount": 10})
    canceled = await fake_module.cancel_payment(payment.id)  # already closed: nothing asked of Stripe
    assert canceled.released_amount == Decimal(40)
    refunded = await fake_module.refund_payment({"payment_id": payment.id, "amount": 60})
    assert [r.amount for r in refunded.refunds or []] == [Decimal(60)]
    # what the collection still lacks can be paid with another session; a new full payment cannot
    more = await fake_module.create_payment_session(
        payment.payment_collection_id,
        {"provider_id": PROVIDER, "amount": 100, "currency_code": "usd", "data": {}},
    )
    with pytest.raises(NotAllowedError, match="already hold 60"):
        await fake_module.authorize_payment_session(more.id)


async def test_a_succeeded_webhook_for_less_than_the_payment_closes_it(
    fake_module: PaymentModule, fake: FakeStripe
) -> None:
    """Stripe, "Capture a payment multiple times" (docs.stripe.com/payments/multicapture): an intent
    whose authorization ends partially captured is `succeeded` with `amount_capturable` 0: nothing more
    can be captured. A `payment_intent.succeeded` event for 30 of 100 books 30 and closes the payment,
    once however often it is delivered."""
    session, payment = await authorized_payment(fake_module, "100")
    intent = session.data["id"]
    succeeded = fake.objects[intent]
    succeeded.update({"status": "succeeded", "amount_received": 3000, "amount_capturable": 0})
    raw, headers = fake.signed(event_payload(fake, "payment_intent.succeeded", intent))

    for _ in range(2):
        result = await fake_module.get_webhook_action_and_data(
            {
                "provider": "stripe_stripe",
                "payload": {"data": json.loads(raw), "raw_data": raw, "headers": headers},
            }
        )
        assert result.data is not None
        assert (result.action, result.data.amount, result.data.remaining_capturable) == (
            "captured",
            Decimal(30),
            Decimal(0),
        )
        await fake_module.capture_payment(
            {
                "payment_id": payment.id,
                "captured_total": result.data.amount,
                "remaining_capturable": result.data.remaining_capturable,
                "is_captured": True,
            }
        )

    stored = await fake_module.retrieve_payment(payment.id, {"relations": ["captures"]})
    assert [c.amount for c in stored.captures or []] == [Decimal(30)]
    assert (stored.released_amount, stored.canceled_at is not None) == (Decimal(70), True)
    collection = await fake_module.retrieve_payment_collection(payment.payment_collection_id)
    assert collection.status == "partially_captured"
