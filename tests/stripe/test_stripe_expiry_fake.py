"""Stripe authorizations that lapse, and sessions whose webhook never came, against the in-memory
Stripe (fake_stripe.py) through the SDK: the deadline is the charge's `capture_before` (else 7 days
after the intent for a card), and the janitor asks Stripe about a 3-D Secure session the customer
finished without Stripe's webhook reaching paymod."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fake_stripe import DAY, FakeStripe

from paymod import PaymentModule
from paymod.domain.errors import NotAllowedError
from paymod.providers.stripe.mapping import authorization_expires_at
from paymod.webhooks.provider_sync import sync_sessions


async def session_of(module: PaymentModule, payment_method: str, amount: int = 40) -> tuple[str, str, str]:
    """(collection, session, intent) of a confirmed Stripe session paying with `payment_method`."""
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": amount})
    session = await module.create_payment_session(
        collection.id,
        {
            "provider_id": "pp_stripe_stripe",
            "amount": amount,
            "currency_code": "usd",
            "data": {"payment_method": payment_method, "confirm": True},
        },
    )
    return collection.id, session.id, str(session.data["id"])


async def test_the_payment_expires_when_stripe_says_the_charge_must_be_captured(
    fake_module: PaymentModule, fake: FakeStripe
) -> None:
    """Charge.payment_method_details.card.capture_before: "a future timestamp at which the charge will
    be automatically refunded if uncaptured"."""
    collection_id, session_id, intent_id = await session_of(fake_module, "pm_card_visa")
    payment = await fake_module.authorize_payment_session(session_id)
    assert payment is not None
    charge = fake.objects[fake.objects[intent_id]["latest_charge"]]
    deadline = charge["payment_method_details"]["card"]["capture_before"]
    assert deadline == charge["created"] + 7 * DAY
    assert payment.authorization_expires_at == datetime.fromtimestamp(deadline, UTC)

    report = await fake_module.maintain_authorization_expiry(
        now=datetime.fromtimestamp(deadline, UTC) + timedelta(seconds=1)
    )
    assert report.expired == [payment.id]
    assert (await fake_module.retrieve_payment_collection(collection_id)).status == "canceled"
    captures_before = len(fake.calls("POST", f"/v1/payment_intents/{intent_id}/capture"))
    with pytest.raises(NotAllowedError, match="can no longer be captured"):
        await fake_module.capture_payment({"payment_id": payment.id, "amount": Decimal(10)})
    assert len(fake.calls("POST", f"/v1/payment_intents/{intent_id}/capture")) == captures_before == 0


def test_without_capture_before_a_card_authorization_lapses_seven_days_after_the_intent() -> None:
    created = 1_800_000_000
    card = {"status": "requires_capture", "created": created, "payment_method": {"type": "card"}}
    assert authorization_expires_at(card) == datetime.fromtimestamp(created, UTC) + timedelta(days=7)
    listed = {"status": "requires_capture", "created": created, "payment_method_types": ["card"]}
    assert authorization_expires_at(listed) == datetime.fromtimestamp(created, UTC) + timedelta(days=7)
    told = {**card, "capture_before": created + 3600}
    assert authorization_expires_at(told) == datetime.fromtimestamp(created + 3600, UTC)
    # Other methods (their windows differ), and intents not waiting for a capture: no deadline.
    assert authorization_expires_at({**card, "payment_method": {"type": "klarna"}}) is None
    assert authorization_expires_at({**card, "status": "succeeded"}) is None
    assert authorization_expires_at({**card, "status": "requires_action"}) is None


async def test_the_janitor_authorizes_a_3ds_session_whose_webhook_never_came(
    fake_module: PaymentModule, fake: FakeStripe
) -> None:
    collection_id, session_id, intent_id = await session_of(fake_module, "pm_card_threeDSecure2Required")
    assert (await fake_module.retrieve_payment_session(session_id)).status == "requires_more"
    # Nothing to do while the customer has not authenticated: Stripe still says requires_action.
    [waiting] = await sync_sessions(fake_module, after=timedelta(0))
    assert (waiting.provider_status, waiting.outcome) == ("requires_more", "unchanged")
    fake.authenticate(intent_id)  # the customer finishes 3-D Secure; the webhook is lost
    later = datetime.now(UTC) + timedelta(minutes=5)  # past the first backoff
    [checked] = await sync_sessions(fake_module, after=timedelta(0), now=later)
    assert (checked.before, checked.provider_status, checked.after) == (
        "requires_more",
        "authorized",
        "authorized",
    )
    session = await fake_module.retrieve_payment_session(session_id, {"relations": ["payment"]})
    assert session.payment is not None and session.payment.amount == Decimal(40)
    assert session.payment.authorization_expires_at is not None
    assert (await fake_module.retrieve_payment_collection(collection_id)).status == "authorized"
