"""`PaymentModule` with PayPal answered by the fake PayPal, on SQLite and PostgreSQL: the checkout's
lifecycle, a void, and webhooks received, verified and applied once."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from fake_paypal import FakePayPal
from paypal_settings import PROVIDER_ID

from paymod import PaymentModule
from paymod.domain.errors import InvalidDataError, NotAllowedError, ProviderError
from paymod.webhooks.inbox import list_webhook_events, receive_webhook
from paymod.webhooks.worker import Worker


async def approved_session(module: PaymentModule, fake: FakePayPal, amount: str = "100") -> Any:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": Decimal(amount)})
    session = await module.create_payment_session(
        collection.id, {"provider_id": PROVIDER_ID, "amount": Decimal(amount), "currency_code": "usd"}
    )
    assert session.status == "requires_more"
    fake.approve(session.data["id"])
    return session


async def deliver(module: PaymentModule, fake: FakePayPal, event_type: str, resource: dict[str, Any]) -> str:
    """Receives the event as PayPal would POST it and lets the worker apply it; its stored status."""
    raw, headers = fake.sign(fake.event(event_type, resource))
    received = await receive_webhook(module, "paypal_test", raw, headers, json.loads(raw))
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


async def test_a_checkout_is_approved_authorized_captured_in_parts_and_refunded(
    paypal_module: PaymentModule, fake: FakePayPal
) -> None:
    module = paypal_module
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": Decimal(100)})
    session = await module.create_payment_session(
        collection.id, {"provider_id": PROVIDER_ID, "amount": Decimal(100), "currency_code": "usd"}
    )
    assert session.status == "requires_more"
    assert session.data["approve_url"].startswith(f"{fake.url}/checkoutnow?token=")
    assert fake.order(session.data["id"])["purchase_units"][0]["custom_id"] == session.id
    with pytest.raises(NotAllowedError):
        await module.authorize_payment_session(session.id)
    fake.approve(session.data["id"])
    payment = await module.authorize_payment_session(session.id)
    assert payment is not None and payment.data["authorization_id"] in fake.authorizations

    payment = await module.capture_payment({"payment_id": payment.id, "amount": Decimal(30)})
    payment = await module.capture_payment({"payment_id": payment.id})  # what remains: 70
    assert [c["amount"]["value"] for c in fake.captures.values()] == ["30.00", "70.00"]
    assert [c["final_capture"] for c in fake.captures.values()] == [False, True]
    assert [c["invoice_id"] for c in fake.captures.values()] == [c.id for c in payment.captures or []]

    payment = await module.refund_payment({"payment_id": payment.id, "amount": Decimal(50)})
    [ours] = payment.refunds or []
    assert sorted(r["amount"]["value"] for r in fake.refunds.values()) == ["20.00", "30.00"]
    assert {r["custom_id"] for r in fake.refunds.values()} == {ours.id}
    collection = await module.retrieve_payment_collection(collection.id)
    assert (collection.status, collection.captured_amount, collection.refunded_amount) == (
        "completed",
        Decimal(100),
        Decimal(50),
    )


async def test_canceling_the_payment_voids_the_authorization(
    paypal_module: PaymentModule, fake: FakePayPal
) -> None:
    session = await approved_session(paypal_module, fake)
    payment = await paypal_module.authorize_payment_session(session.id)
    assert payment is not None
    payment = await paypal_module.cancel_payment(payment.id)
    assert payment.canceled_at is not None
    assert fake.authorizations[payment.data["authorization_id"]]["status"] == "VOIDED"


async def test_a_decline_keeps_the_session_waiting_for_the_buyer(
    paypal_module: PaymentModule, fake: FakePayPal
) -> None:
    session = await approved_session(paypal_module, fake)
    fake.decline_instrument(session.data["id"])
    with pytest.raises(NotAllowedError):
        await paypal_module.authorize_payment_session(session.id)
    session = await paypal_module.retrieve_payment_session(session.id)
    assert session.status == "requires_more" and session.data["decline_issue"] == "INSTRUMENT_DECLINED"
    fake.approve(session.data["id"])
    assert await paypal_module.authorize_payment_session(session.id) is not None


async def test_an_amount_paypal_cannot_take_creates_no_session(
    paypal_module: PaymentModule, fake: FakePayPal
) -> None:
    collection = await paypal_module.create_payment_collections(
        {"currency_code": "huf", "amount": Decimal("100.5")}
    )
    with pytest.raises(InvalidDataError):
        await paypal_module.create_payment_session(
            collection.id, {"provider_id": PROVIDER_ID, "amount": Decimal("100.5"), "currency_code": "huf"}
        )
    assert fake.orders == {}


async def test_the_buyers_approval_webhook_authorizes_the_session(
    paypal_module: PaymentModule, fake: FakePayPal
) -> None:
    session = await approved_session(paypal_module, fake)
    status = await deliver(paypal_module, fake, "CHECKOUT.ORDER.APPROVED", fake.order(session.data["id"]))
    assert status == "processed"
    session = await paypal_module.retrieve_payment_session(session.id, {"relations": ["payment"]})
    assert session.status == "authorized" and session.payment is not None
    assert fake.effects("POST", r"/v2/checkout/orders/\w+/authorize") == 1


async def test_a_refund_made_at_paypal_is_booked_once(paypal_module: PaymentModule, fake: FakePayPal) -> None:
    session = await approved_session(paypal_module, fake)
    payment = await paypal_module.authorize_payment_session(session.id)
    assert payment is not None
    payment = await paypal_module.capture_payment({"payment_id": payment.id})
    capture_id = next(iter(fake.captures))
    outside = fake.refund_outside(capture_id, Decimal(15))
    assert await deliver(paypal_module, fake, "PAYMENT.CAPTURE.REFUNDED", outside) == "processed"
    await deliver(paypal_module, fake, "PAYMENT.CAPTURE.REFUNDED", outside)  # PayPal sends it again
    payment = await paypal_module.retrieve_payment(payment.id, {"relations": ["refunds"]})
    assert [r.amount for r in payment.refunds or []] == [Decimal(15)]
    # paymod's own refund, reported back by PayPal, is recognised and not booked twice.
    payment = await paypal_module.refund_payment({"payment_id": payment.id, "amount": Decimal(10)})
    ours = next(r for r in fake.refunds.values() if r.get("custom_id"))
    await deliver(paypal_module, fake, "PAYMENT.CAPTURE.REFUNDED", ours)
    payment = await paypal_module.retrieve_payment(payment.id, {"relations": ["refunds"]})
    assert sorted(r.amount for r in payment.refunds or []) == [Decimal(10), Decimal(15)]


async def test_a_tampered_webhook_is_refused_and_not_stored(
    paypal_module: PaymentModule, fake: FakePayPal
) -> None:
    session = await approved_session(paypal_module, fake)
    raw, headers = fake.sign(fake.event("CHECKOUT.ORDER.APPROVED", fake.order(session.data["id"])))
    with pytest.raises(ProviderError):
        await receive_webhook(paypal_module, "paypal_test", raw.replace(b"100.00", b"1.00"), headers)
    assert await list_webhook_events(paypal_module) == []
