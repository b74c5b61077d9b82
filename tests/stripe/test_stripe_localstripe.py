"""The whole flow through `PaymentModule` against localstripe over real HTTP, on SQLite and PostgreSQL.

localstripe keeps state like Stripe for the subset it implements (reference/localstripe.md "What
works"): customers, card PaymentMethods, manual and automatic PaymentIntents, a single (partial)
capture, cancel, several partial refunds, 3-D Secure through its `_authenticate` route, declines,
SetupIntents, and signed `payment_intent.succeeded` / `.payment_failed` webhooks. The tests act as
the storefront's Stripe.js through `shopper` (a plain SDK client), and as Stripe's dashboard: a refund
made through localstripe's API, reported by a `charge.refunded` built from its Charge (localstripe
sends no refund events).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import select
from stripe_settings import WEBHOOK_SECRET, stripe_config

from paymod import PaymentModule
from paymod.domain.errors import InvalidDataError, NotAllowedError, ProviderError
from paymod.persistence.tables import refund
from paymod.webhooks.inbox import list_webhook_events, receive_webhook
from paymod.webhooks.signing import sign_payload
from paymod.webhooks.worker import Worker

PROVIDER = "pp_stripe_stripe"
WEBHOOK_TIMEOUT = 20.0


async def collection_of(module: PaymentModule, amount: str = "100", currency: str = "usd") -> str:
    collection = await module.create_payment_collections(
        {"currency_code": currency, "amount": Decimal(amount)}
    )
    return collection.id


async def session_of(
    module: PaymentModule,
    amount: str = "100",
    currency: str = "usd",
    context: dict[str, Any] | None = None,
    **data: Any,
) -> Any:
    collection_id = await collection_of(module, amount, currency)
    return await module.create_payment_session(
        collection_id,
        {
            "provider_id": PROVIDER,
            "amount": Decimal(amount),
            "currency_code": currency,
            "data": data,
            "context": context,
        },
    )


async def test_manual_capture_storefront_confirms_then_merchant_captures(
    stripe_module: PaymentModule, shopper: stripe.StripeClient
) -> None:
    session = await session_of(stripe_module, "49.99")
    assert session.status == "pending"
    intent_id = session.data["id"]
    assert session.data["amount"] == 4999
    assert session.data["metadata"] == {"session_id": session.id}
    assert session.data["client_secret"].startswith(intent_id)

    # Stripe.js: attach the card and confirm (localstripe cannot take payment_method on confirm).
    await shopper.v1.payment_intents.update_async(intent_id, {"payment_method": "pm_card_visa"})
    await shopper.v1.payment_intents.confirm_async(intent_id)

    payment = await stripe_module.authorize_payment_session(session.id)
    assert payment is not None
    assert payment.data is not None and payment.data["status"] == "requires_capture"
    assert payment.data["payment_method"]["card"]["last4"] == "4242"

    payment = await stripe_module.capture_payment({"payment_id": payment.id})
    assert payment.captured_at is not None
    assert [c.amount for c in payment.captures or []] == [Decimal("49.99")]
    intent = await shopper.v1.payment_intents.retrieve_async(intent_id)
    assert intent.status == "succeeded"
    collection = await stripe_module.retrieve_payment_collection(session.payment_collection_id)
    assert (collection.status, collection.captured_amount) == ("completed", Decimal("49.99"))


async def test_automatic_capture_books_the_capture_on_authorization(
    stripe_module: PaymentModule, shopper: stripe.StripeClient
) -> None:
    session = await session_of(
        stripe_module, "2500", "jpy", capture_method="automatic", payment_method="pm_card_visa", confirm=True
    )
    assert session.status == "captured"
    assert session.data["amount"] == 2500  # JPY is zero-decimal
    payment = await stripe_module.authorize_payment_session(session.id)
    assert payment is not None and payment.captured_at is not None
    assert [c.amount for c in payment.captures or []] == [Decimal(2500)]
    collection = await stripe_module.retrieve_payment_collection(session.payment_collection_id)
    assert collection.status == "completed"
    intent = await shopper.v1.payment_intents.retrieve_async(session.data["id"])
    assert (intent.status, intent.capture_method) == ("succeeded", "automatic")


async def test_three_d_secure_requires_more_then_authorizes(
    stripe_module: PaymentModule, shopper: stripe.StripeClient
) -> None:
    card = await shopper.v1.payment_methods.create_async(
        {
            "type": "card",
            "card": {"number": "4000002500003155", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    session = await session_of(stripe_module, payment_method=card.id, confirm=True)
    assert session.status == "requires_more"

    with pytest.raises(NotAllowedError, match="was not authorized with the provider"):
        await stripe_module.authorize_payment_session(session.id)
    session = await stripe_module.retrieve_payment_session(session.id)
    assert session.status == "requires_more"
    assert session.data["next_action"]["type"] == "use_stripe_sdk"

    # The shopper passes the challenge (localstripe's stand-in for Stripe.js handleNextAction).
    await shopper.raw_request_async(
        "post",
        f"/v1/payment_intents/{session.data['id']}/_authenticate",
        client_secret=session.data["client_secret"],
        success="true",
    )
    payment = await stripe_module.authorize_payment_session(session.id)
    assert payment is not None
    session = await stripe_module.retrieve_payment_session(session.id)
    assert (session.status, session.authorized_at is not None) == ("authorized", True)


async def test_a_partial_capture_sends_the_amount_and_closes_the_payment(
    stripe_module: PaymentModule, shopper: stripe.StripeClient
) -> None:
    session = await session_of(stripe_module, "100", payment_method="pm_card_visa", confirm=True)
    assert session.status == "authorized"
    payment = await stripe_module.authorize_payment_session(session.id)
    assert payment is not None

    payment = await stripe_module.capture_payment({"payment_id": payment.id, "amount": Decimal("40")})
    assert [c.amount for c in payment.captures or []] == [Decimal(40)]
    # Stripe released the rest: paymod closes the payment too
    assert (payment.released_amount, payment.canceled_at is not None) == (Decimal(60), True)
    intent = await shopper.v1.payment_intents.retrieve_async(
        session.data["id"], {"expand": ["latest_charge"]}
    )
    assert intent.status == "succeeded"
    # Without multicapture Stripe releases the rest; localstripe books it as refunded on the charge.
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert (charge.amount, charge.amount_refunded) == (10000, 6000)

    # refused before Stripe is asked (it would answer "status of succeeded")
    with pytest.raises(InvalidDataError, match="has been canceled"):
        await stripe_module.capture_payment({"payment_id": payment.id, "amount": Decimal("60")})
    payment = await stripe_module.retrieve_payment(payment.id, {"relations": ["captures"]})
    assert [c.amount for c in payment.captures or []] == [Decimal(40)]
    collection = await stripe_module.retrieve_payment_collection(session.payment_collection_id)
    assert (collection.status, collection.captured_amount) == ("partially_captured", Decimal(40))


async def test_multiple_partial_refunds_reach_stripe_with_their_reasons(
    stripe_module: PaymentModule, shopper: stripe.StripeClient
) -> None:
    session = await session_of(stripe_module, "120", "eur", payment_method="pm_card_visa", confirm=True)
    payment = await stripe_module.authorize_payment_session(session.id)
    assert payment is not None
    await stripe_module.capture_payment({"payment_id": payment.id})
    await stripe_module.refund_payment(
        {
            "payment_id": payment.id,
            "amount": Decimal("30.5"),
            "refund_reason_id": "refr_01SEEDSHIPPINGISSUE000000",
        }
    )
    await stripe_module.refund_payment(
        {"payment_id": payment.id, "amount": Decimal("19.5"), "note": "goodwill"}
    )
    payment = await stripe_module.retrieve_payment(payment.id, {"relations": ["refunds"]})
    assert sorted(r.amount for r in payment.refunds or []) == [Decimal("19.5"), Decimal("30.5")]
    ids = {r.amount: r.id for r in payment.refunds or []}

    refunds = await shopper.v1.refunds.list_async({"payment_intent": session.data["id"]})
    # Each Stripe refund names paymod's refund (its idempotency key) in `paymod_refund_id`.
    assert sorted((r.amount, r.metadata.to_dict()) for r in refunds.data) == [  # type: ignore[union-attr]
        (1950, {"note": "goodwill", "paymod_refund_id": ids[Decimal("19.5")]}),
        (3050, {"refund_reason": "shipping_issue", "paymod_refund_id": ids[Decimal("30.5")]}),
    ]
    collection = await stripe_module.retrieve_payment_collection(session.payment_collection_id)
    assert collection.refunded_amount == Decimal(50)


async def test_cancel_cancels_the_intent_and_the_collection(
    stripe_module: PaymentModule, shopper: stripe.StripeClient
) -> None:
    session = await session_of(stripe_module, payment_method="pm_card_visa", confirm=True)
    payment = await stripe_module.authorize_payment_session(session.id)
    assert payment is not None
    payment = await stripe_module.cancel_payment(payment.id)
    assert payment.canceled_at is not None
    assert payment.data is not None and payment.data["status"] == "canceled"
    assert (await shopper.v1.payment_intents.retrieve_async(session.data["id"])).status == "canceled"
    collection = await stripe_module.retrieve_payment_collection(session.payment_collection_id)
    assert collection.status == "canceled"


async def test_deleting_a_pending_session_cancels_its_intent(
    stripe_module: PaymentModule, shopper: stripe.StripeClient
) -> None:
    session = await session_of(stripe_module)
    await stripe_module.delete_payment_session(session.id)
    assert (await shopper.v1.payment_intents.retrieve_async(session.data["id"])).status == "canceled"


async def test_a_decline_at_confirmation_leaves_the_session_in_error(
    stripe_module: PaymentModule, shopper: stripe.StripeClient
) -> None:
    session = await session_of(stripe_module, payment_method="pm_card_chargeCustomerFail")
    with pytest.raises(stripe.CardError):
        await shopper.v1.payment_intents.confirm_async(session.data["id"])
    with pytest.raises(NotAllowedError):
        await stripe_module.authorize_payment_session(session.id)
    session = await stripe_module.retrieve_payment_session(session.id)
    assert session.status == "error"
    assert session.data["last_payment_error"]["code"] == "card_declined"
    collection = await stripe_module.retrieve_payment_collection(session.payment_collection_id)
    # derived again when its session changed: a session, nothing authorized
    assert collection.status == "awaiting"


async def test_a_decline_when_created_confirmed_is_a_provider_error_and_stores_nothing(
    stripe_module: PaymentModule,
) -> None:
    # localstripe's 402 carries no PaymentIntent (Stripe's does: see test_stripe_module_fake.py).
    collection_id = await collection_of(stripe_module)
    with pytest.raises(ProviderError) as caught:
        await stripe_module.create_payment_session(
            collection_id,
            {
                "provider_id": PROVIDER,
                "amount": 100,
                "currency_code": "usd",
                "data": {"payment_method": "pm_card_chargeCustomerFail", "confirm": True},
            },
        )
    assert caught.value.code == "card_declined"
    assert caught.value.message == "Your card was declined."
    assert await stripe_module.list_payment_sessions({"payment_collection_id": collection_id}) == []


CUSTOMER = {
    "id": "cus_shop_42",
    "email": "grace@example.com",
    "first_name": "Grace",
    "last_name": "Hopper",
    "billing_address": {
        "address_1": "1 Navy Way",
        "city": "Arlington",
        "country_code": "us",
        "postal_code": "22201",
    },
}


async def test_account_holders_are_stripe_customers_created_once(
    stripe_module: PaymentModule, shopper: stripe.StripeClient
) -> None:
    holder = await stripe_module.create_account_holder(
        {"provider_id": PROVIDER, "context": {"customer": CUSTOMER}}
    )
    again = await stripe_module.create_account_holder(
        {"provider_id": PROVIDER, "context": {"customer": CUSTOMER}}
    )
    assert holder is not None and again is not None
    assert again.id == holder.id
    assert (holder.customer_id, holder.email) == ("cus_shop_42", "grace@example.com")
    assert holder.external_id.startswith("cus_") and holder.data["id"] == holder.external_id
    customers = await shopper.v1.customers.list_async({"email": "grace@example.com"})
    assert [c.id for c in customers.data] == [holder.external_id]
    assert customers.data[0].name == "Grace Hopper"

    updated = await stripe_module.update_account_holder(
        {"id": holder.id, "context": {"customer": {**CUSTOMER, "email": "grace@navy.example"}}}
    )
    assert updated.data["email"] == "grace@navy.example"
    assert (await shopper.v1.customers.retrieve_async(holder.external_id)).email == "grace@navy.example"

    await stripe_module.delete_account_holder(holder.id)
    assert await stripe_module.list_account_holders({"provider_id": PROVIDER}) == []
    with pytest.raises(stripe.InvalidRequestError):
        await shopper.v1.customers.retrieve_async(holder.external_id)


async def test_saved_cards_setup_list_pay_off_session_and_delete(
    stripe_module: PaymentModule, shopper: stripe.StripeClient
) -> None:
    holder = await stripe_module.create_account_holder(
        {"provider_id": PROVIDER, "context": {"customer": CUSTOMER}}
    )
    assert holder is not None
    holder_context = {"account_holder": holder.model_dump(mode="json")}

    setup = await stripe_module.create_payment_methods(
        {
            "provider_id": PROVIDER,
            "data": {"usage": "off_session", "payment_method_types": ["card"]},
            "context": holder_context,
        }
    )
    assert setup.id.startswith("seti_")
    assert setup.data is not None and setup.data["customer"] == holder.external_id
    # Stripe.js confirms the SetupIntent; Stripe attaches the card to the customer (localstripe does
    # not, so the storefront's step is completed by hand here).
    confirmed = await shopper.v1.setup_intents.confirm_async(setup.id, {"payment_method": "pm_card_visa"})
    assert confirmed.status == "succeeded" and isinstance(confirmed.payment_method, str)
    await shopper.v1.payment_methods.attach_async(confirmed.payment_method, {"customer": holder.external_id})

    methods = await stripe_module.list_payment_methods({"provider_id": PROVIDER, "context": holder_context})
    assert [m.id for m in methods] == [confirmed.payment_method]
    assert methods[0].data is not None and methods[0].data["card"]["last4"] == "4242"

    session = await session_of(
        stripe_module,
        "75",
        context=holder_context,
        payment_method=methods[0].id,
        off_session=True,
        confirm=True,
    )
    assert session.status == "authorized"
    assert session.data["customer"] == holder.external_id
    payment = await stripe_module.authorize_payment_session(session.id)
    assert payment is not None
    await stripe_module.capture_payment({"payment_id": payment.id})
    assert (await shopper.v1.payment_intents.retrieve_async(session.data["id"])).status == "succeeded"

    await stripe_module.delete_payment_methods({"provider_id": PROVIDER, "id": methods[0].id})
    assert (
        await stripe_module.list_payment_methods({"provider_id": PROVIDER, "context": holder_context}) == []
    )


async def stored_event(module: PaymentModule, session_id: str, action: str, status: str) -> dict[str, Any]:
    """The inbox row of localstripe's `action` event about the session, once it is `status` (bounded:
    localstripe sends about 1 s after the fact)."""
    async with asyncio.timeout(WEBHOOK_TIMEOUT):
        while True:
            for event in await list_webhook_events(module, limit=1000):
                if (event["session_id"], event["action"], event["status"]) == (session_id, action, status):
                    return event
            await asyncio.sleep(0.05)


async def test_a_webhook_signed_by_localstripe_is_verified_stored_and_applied_by_our_route(
    stripe_hooks: tuple[PaymentModule, str],
) -> None:
    module, url = stripe_hooks
    session = await session_of(
        module, "12.34", capture_method="automatic", payment_method="pm_card_visa", confirm=True
    )

    # localstripe POSTs `payment_intent.succeeded` to our route; the app's in-process worker applies it.
    event = await stored_event(module, session.id, "captured", "processed")

    assert (event["provider_id"], event["amount"], event["attempts"]) == (
        "pp_stripe_stripe",
        Decimal("12.34"),
        1,
    )
    assert event["event_id"].startswith("evt_")
    body = json.loads(event["payload"]["body"])
    assert (body["type"], body["data"]["object"]["id"]) == ("payment_intent.succeeded", session.data["id"])
    assert "stripe-signature" in event["payload"]["headers"]
    [payment] = await module.list_payments({"payment_session_id": session.id}, {"relations": ["captures"]})
    assert [c.amount for c in payment.captures or []] == [Decimal("12.34")]
    collection = await module.retrieve_payment_collection(session.payment_collection_id)
    assert (collection.status, collection.captured_amount) == ("completed", Decimal("12.34"))

    # The same delivery, tampered with, is refused by the route and not stored.
    stored = len(await list_webhook_events(module, limit=1000))
    raw = event["payload"]["body"].encode()
    async with httpx.AsyncClient(timeout=10) as http:
        tampered = await http.post(
            url,
            content=raw.replace(b"1234", b"9934"),
            headers={"Stripe-Signature": event["payload"]["headers"]["stripe-signature"]},
        )
        replayed = await http.post(
            url,
            content=raw,
            headers={"Stripe-Signature": event["payload"]["headers"]["stripe-signature"]},
        )
    assert tampered.status_code == 400
    assert (tampered.json()["type"], tampered.json()["code"]) == ("invalid_data", "invalid_signature")
    # A redelivery (Stripe retries) is acknowledged and recognised, not stored again.
    assert replayed.status_code == 200 and replayed.json()["duplicate"] is True
    assert len(await list_webhook_events(module, limit=1000)) == stored


async def test_a_declined_payment_webhook_records_the_failure_on_the_session(
    stripe_hooks: tuple[PaymentModule, str], shopper: stripe.StripeClient
) -> None:
    module, _ = stripe_hooks
    session = await session_of(module, payment_method="pm_card_chargeCustomerFail")
    with pytest.raises(stripe.CardError):
        await shopper.v1.payment_intents.confirm_async(session.data["id"])

    await stored_event(module, session.id, "failed", "processed")

    assert (await module.retrieve_payment_session(session.id)).status == "error"
    assert await module.list_payments({"payment_session_id": session.id}) == []


async def test_the_variants_are_registered_and_create_intents_for_their_method(
    database_url: str, localstripe: str, shopper: stripe.StripeClient
) -> None:
    async with await PaymentModule.connect(
        database_url, providers=[stripe_config(localstripe)], migrate=False
    ) as module:
        providers = {p.id for p in await module.list_payment_providers()}
        assert {"pp_stripe_stripe", "pp_stripe-ideal_stripe", "pp_stripe-oxxo_stripe"} <= providers
        collection_id = await collection_of(module, "10", "eur")
        session = await module.create_payment_session(
            collection_id, {"provider_id": "pp_stripe-ideal_stripe", "amount": 10, "currency_code": "eur"}
        )
        intent = await shopper.v1.payment_intents.retrieve_async(session.data["id"])
        assert intent.capture_method == "automatic"  # localstripe does not echo payment_method_types


@pytest.fixture
async def hooks_module(database_url: str, localstripe: str) -> AsyncIterator[PaymentModule]:
    """The module with Stripe at localstripe, its webhooks processed at once by the worker."""
    async with await PaymentModule.connect(
        database_url, providers=[stripe_config(localstripe)], options={"webhook_delay": 0}, migrate=False
    ) as module:
        yield module


def charge_refunded_event(charge: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The `charge.refunded` Stripe would send for a Charge localstripe holds: localstripe makes no
    events for refunds, so the whole envelope is filled in here (`id`, `object`, `api_version`,
    `created`, `livemode`, `pending_webhooks`, `request`, `type`, `data`); the Charge gets
    `amount_captured`, which localstripe's leaves out, and loses the `refunds` list localstripe
    expands, as Stripe's webhooks leave it out since API version 2022-11-15: paymod then lists the
    intent's refunds from localstripe's API."""
    charge = {**charge, "amount_captured": charge.get("amount_captured", charge["amount"])}
    charge.pop("refunds")
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "charge.refunded",
        "data": {"object": charge},
    }


async def deliver_signed(module: PaymentModule, event: dict[str, Any]) -> str:
    """Signs the event with Stripe's scheme under the configured secret, receives it as paymod's route
    does and lets the worker apply it; its stored status."""
    raw = json.dumps(event).encode()
    headers = {"Stripe-Signature": sign_payload(raw, WEBHOOK_SECRET)}
    received = await receive_webhook(module, "stripe_stripe", raw, headers, json.loads(raw))
    worker = Worker(module)
    try:
        while await worker.run_once():
            pass
    finally:
        await worker.close()
    [stored] = [e for e in await list_webhook_events(module, limit=1000) if e["id"] == received.id]
    return str(stored["status"])


async def test_a_refund_made_in_localstripe_is_booked_once_from_a_hand_built_charge_refunded(
    hooks_module: PaymentModule, shopper: stripe.StripeClient
) -> None:
    module = hooks_module
    session = await session_of(module, "100", payment_method="pm_card_visa", confirm=True)
    payment = await module.authorize_payment_session(session.id)
    assert payment is not None
    await module.capture_payment({"payment_id": payment.id})
    intent_id = session.data["id"]

    # Refunded outside paymod, through localstripe's API (a dashboard refund).
    intent = await shopper.v1.payment_intents.retrieve_async(intent_id, {"expand": ["latest_charge"]})
    assert isinstance(intent.latest_charge, stripe.Charge)
    charge_id = intent.latest_charge.id
    outside = await shopper.v1.refunds.create_async({"charge": charge_id, "amount": 3000})
    charge = (await shopper.v1.charges.retrieve_async(charge_id)).to_dict()
    assert (charge["payment_intent"], charge["amount_refunded"]) == (intent_id, 3000)
    event = charge_refunded_event(charge, "evt_localstripe_refund")

    assert await deliver_signed(module, event) == "processed"
    assert await deliver_signed(module, {**event, "id": "evt_localstripe_refund_again"}) == "ignored"
    found = await module.retrieve_payment(payment.id, {"relations": ["captures", "refunds"]})
    [booked] = found.refunds or []
    assert (booked.amount, booked.metadata) == (Decimal(30), {"external": True})
    assert booked.note == "refunded at the provider"
    async with module.database.read() as conn:
        stored = await conn.execute(select(refund.c.provider_refund_id).where(refund.c.id == booked.id))
        assert stored.scalar_one() == outside.id
    captured = sum((c.amount for c in found.captures or []), Decimal(0))
    assert captured == Decimal(100)
    # What stays refundable is captured - refunded: 70, not a cent more.
    with pytest.raises(InvalidDataError, match="refund"):
        await module.refund_payment({"payment_id": payment.id, "amount": Decimal("70.01")})
    found = await module.refund_payment({"payment_id": payment.id})
    assert sorted(r.amount for r in found.refunds or []) == [Decimal(30), Decimal(70)]
