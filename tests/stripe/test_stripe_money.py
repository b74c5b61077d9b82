"""The Stripe provider's money-moving rules, against the in-memory Stripe (fake_stripe.py) through the SDK.

Each test names the Stripe rule it follows; the fake enforces the same rule, so a provider that broke
it would be refused by "Stripe" rather than pass silently:

- currencies (docs.stripe.com/currencies): UGX and ISK are sent with two decimals that are always 00;
  three-decimal currencies must end in 0; HUF and TWD take two decimals for charges;
- captures (docs.stripe.com/api/payment_intents/capture, docs.stripe.com/payments/multicapture): what
  stays capturable after a capture;
- idempotency (docs.stripe.com/idempotency): a key's first answer, 500s included, is replayed for
  24 hours, then the key is pruned and the request runs again;
- webhooks on one endpoint for every variant, giropay's closure, all money fields in major units, and
  saved payment methods past Stripe's page size.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from fake_stripe import FakeStripe
from stripe_settings import WEBHOOK_SECRET, stripe_config

from paymod import PaymentModule
from paymod.domain.errors import InvalidDataError, ProviderError, RetryableProviderError
from paymod.domain.statuses import PaymentAction
from paymod.providers.base import (
    AccountHolderInput,
    CapturePaymentInput,
    CapturePaymentOutput,
    InitiatePaymentInput,
    PaymentMethodInput,
    ProviderContext,
    ProviderInput,
    ProviderOutput,
    RefundPaymentInput,
    UpdatePaymentInput,
    WebhookPayload,
)
from paymod.providers.registry import load_providers
from paymod.providers.stripe import StripeProvider, from_smallest_unit, services
from paymod.webhooks.inbox import process_webhook_event, receive_webhook, retrieve_webhook_event

THREE_DECIMAL = ["kwd", "bhd", "jod", "omr", "tnd"]


def make_provider(fake: FakeStripe, **options: Any) -> StripeProvider:
    return StripeProvider(
        {
            "api_key": "sk_test_fake",
            "webhook_secret": WEBHOOK_SECRET,
            "http_client": fake,
            "max_network_retries": 2,
            **options,
        }
    )


@pytest.fixture
async def provider(fake: FakeStripe) -> AsyncIterator[StripeProvider]:
    provider = make_provider(fake)
    yield provider
    await provider.close()


@pytest.fixture
async def multicapture(fake: FakeStripe) -> AsyncIterator[StripeProvider]:
    provider = make_provider(fake, multicapture=True)
    yield provider
    await provider.close()


def ctx(key: str | None = None, resumed: bool = False, **extra: Any) -> ProviderContext:
    return ProviderContext(idempotency_key=key, resumed=resumed, extra=extra)


async def initiate(
    provider: StripeProvider, amount: str, currency: str, session: str = "payses_1", **data: Any
) -> dict[str, Any]:
    out = await provider.initiate_payment(
        InitiatePaymentInput(
            data={"session_id": session, **data},
            context=ctx(session),
            amount=Decimal(amount),
            currency_code=currency,
        )
    )
    assert out.data is not None
    return out.data


async def authorized(provider: StripeProvider, amount: str, currency: str, **data: Any) -> dict[str, Any]:
    intent = await initiate(provider, amount, currency, payment_method="pm_card_visa", confirm=True, **data)
    assert intent["status"] == "requires_capture"
    return intent


async def capture(
    provider: StripeProvider,
    data: dict[str, Any],
    amount: str,
    key: str,
    currency: str = "usd",
    resumed: bool = False,
) -> ProviderOutput:
    out = await provider.capture_payment(
        CapturePaymentInput(
            data=data, context=ctx(key, resumed), amount=Decimal(amount), currency_code=currency
        )
    )
    assert out.data is not None
    return out


def remaining(out: ProviderOutput) -> Decimal | None:
    """What a capture says stays capturable (`CapturePaymentOutput.remaining_capturable`)."""
    assert isinstance(out, CapturePaymentOutput)
    return out.remaining_capturable


async def refund(
    provider: StripeProvider,
    data: dict[str, Any],
    amount: str,
    key: str,
    currency: str = "usd",
    resumed: bool = False,
) -> dict[str, Any]:
    out = await provider.refund_payment(
        RefundPaymentInput(
            data=data, context=ctx(key, resumed), amount=Decimal(amount), currency_code=currency
        )
    )
    assert out.data is not None
    return out.data


async def webhook_amount(provider: StripeProvider, fake: FakeStripe, type: str) -> Decimal | None:
    raw, headers = fake.signed(fake.last_event(type))
    result = await provider.get_webhook_action_and_data(
        WebhookPayload(data=json.loads(raw), raw_data=raw, headers=headers)
    )
    return result.amount


# -- 1. UGX ---------------------------------------------------------------------------------
async def test_ugx_is_sent_with_two_decimals_and_read_back_in_shillings(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    """docs.stripe.com/currencies#special-cases, Ugandan Shilling: "UGX transitioned to a zero-decimal
    currency, but backwards compatibility requires you to represent it as a two-decimal value, where
    the decimal amount is always 00. For example, to charge 5 UGX, provide an amount value of 500."
    The fake refuses UGX amounts not divisible by 100 (`invalid_charge_amount_no_decimal_compatible`)."""
    intent = await authorized(provider, "5000", "ugx")
    assert fake.objects[intent["id"]]["amount"] == 500_000
    assert await webhook_amount(provider, fake, "payment_intent.amount_capturable_updated") == Decimal(5000)
    out = await capture(provider, intent, "3000", "capt_1", currency="ugx")
    assert fake.objects[intent["id"]]["amount_received"] == 300_000
    assert remaining(out) == Decimal(0)
    assert await webhook_amount(provider, fake, "payment_intent.succeeded") == Decimal(3000)
    retrieved = await provider.retrieve_payment(ProviderInput(data=intent))
    assert retrieved.data is not None
    assert (retrieved.data["amount"], retrieved.data["amount_received"]) == (Decimal(5000), Decimal(3000))
    await refund(provider, out.data or {}, "1000", "ref_1", currency="ugx")
    assert [r["amount"] for r in fake.of_type("re_")] == [100_000]
    assert from_smallest_unit(500, "UGX") == Decimal(5)


# -- 2. ISK and UGX are whole units ----------------------------------------------------------
@pytest.mark.parametrize("currency", ["isk", "ugx"])
async def test_fractional_isk_and_ugx_are_refused_before_stripe_is_called(
    provider: StripeProvider, fake: FakeStripe, currency: str
) -> None:
    """docs.stripe.com/currencies#special-cases: ISK and UGX are two-decimal values "where the decimal
    amount is always 00 ... You can't charge fractions"; Stripe answers other amounts with 400
    `invalid_charge_amount_no_decimal_compatible` ("charged amounts must be evenly divisible by 100",
    support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds). paymod refuses them
    itself, before any request, so no flow is refused half way by Stripe."""
    with pytest.raises(InvalidDataError) as caught:
        await initiate(provider, "5.5", currency)
    assert caught.value.code == "invalid_amount"
    assert currency.upper() in caught.value.message and "whole units" in caught.value.message
    assert fake.requests == []

    intent = await authorized(provider, "100", currency)
    before = len(fake.requests)
    for call in (
        provider.capture_payment(
            CapturePaymentInput(
                data=intent, context=ctx("capt_1"), amount=Decimal("40.5"), currency_code=currency
            )
        ),
        provider.update_payment(
            UpdatePaymentInput(data=intent, context=ctx("u"), amount=Decimal("99.99"), currency_code=currency)
        ),
    ):
        with pytest.raises(InvalidDataError, match="whole units"):
            await call
    captured = (await capture(provider, intent, "40", "capt_2", currency=currency)).data or {}
    assert fake.objects[intent["id"]]["amount_received"] == 4000
    with pytest.raises(InvalidDataError, match="whole units"):
        await refund(provider, captured, "0.5", "ref_1", currency=currency)
    assert [r.path.rsplit("/", 1)[-1] for r in fake.requests[before:] if r.method == "POST"] == ["capture"]


# -- 3. three-decimal currencies, HUF and TWD -----------------------------------------------
@pytest.mark.parametrize("currency", THREE_DECIMAL)
async def test_three_decimal_amounts_stripe_cannot_represent_are_refused_before_the_call(
    provider: StripeProvider, fake: FakeStripe, currency: str
) -> None:
    """docs.stripe.com/currencies#three-decimal: "The API supports three-decimal currencies for the
    standard payment flows, including Payment Intents, Refunds, and Disputes. However ... these API
    calls require the least-significant (last) digit to be 0" (5.124 KWD cannot be sent as is). paymod
    refuses such amounts (InvalidDataError) in initiate, update, capture and refund instead of charging
    a rounded amount that differs from what it books."""
    with pytest.raises(InvalidDataError) as caught:
        await initiate(provider, "5.124", currency)
    assert caught.value.code == "invalid_amount"
    assert currency.upper() in caught.value.message and "multiples of 0.01" in caught.value.message
    assert fake.requests == []

    intent = await authorized(provider, "10.12", currency)
    assert fake.objects[intent["id"]]["amount"] == 10_120
    before = len(fake.requests)
    with pytest.raises(InvalidDataError, match=r"multiples of 0\.01"):
        await provider.update_payment(
            UpdatePaymentInput(
                data=intent, context=ctx("u"), amount=Decimal("10.125"), currency_code=currency
            )
        )
    with pytest.raises(InvalidDataError, match=r"multiples of 0\.01"):
        await capture(provider, intent, "3.335", "capt_1", currency=currency)
    assert len(fake.requests) == before
    captured = (await capture(provider, intent, "3.33", "capt_2", currency=currency)).data or {}
    assert fake.objects[intent["id"]]["amount_received"] == 3330
    with pytest.raises(InvalidDataError, match=r"multiples of 0\.01"):
        await refund(provider, captured, "1.001", "ref_1", currency=currency)
    await refund(provider, captured, "1.01", "ref_2", currency=currency)
    assert [r["amount"] for r in fake.of_type("re_")] == [1010]


@pytest.mark.parametrize(("currency", "amount", "units"), [("huf", "10.45", 1045), ("twd", "800.45", 80045)])
async def test_huf_and_twd_charges_keep_their_two_decimals(
    provider: StripeProvider, fake: FakeStripe, currency: str, amount: str, units: int
) -> None:
    """docs.stripe.com/currencies#special-cases: "Stripe treats HUF [and TWD] as a zero-decimal currency
    for payouts, even though you can charge two-decimal amounts." paymod makes no payouts: HUF and
    TWD charges go out x100 with their decimals."""
    intent = await authorized(provider, amount, currency)
    assert fake.objects[intent["id"]]["amount"] == units
    await capture(provider, intent, amount, "capt_1", currency=currency)
    assert fake.objects[intent["id"]]["amount_received"] == units


async def test_the_module_refuses_an_unrepresentable_capture_without_booking_it(
    database_url: str, fake: FakeStripe
) -> None:
    """docs.stripe.com/currencies#three-decimal (last digit 0): a KWD capture of 3.335 through the module
    fails with InvalidDataError before Stripe is asked, and the capture is not booked."""
    config = stripe_config("https://api.stripe.test", http_client=fake)
    async with await PaymentModule.connect(database_url, providers=[config], migrate=False) as module:
        collection = await module.create_payment_collections(
            {"currency_code": "kwd", "amount": Decimal("10")}
        )
        session = await module.create_payment_session(
            collection.id,
            {
                "provider_id": "pp_stripe_stripe",
                "amount": Decimal("10"),
                "currency_code": "kwd",
                "data": {"payment_method": "pm_card_visa", "confirm": True},
            },
        )
        payment = await module.authorize_payment_session(session.id)
        assert payment is not None
        with pytest.raises(InvalidDataError) as caught:
            await module.capture_payment({"payment_id": payment.id, "amount": Decimal("3.335")})
        assert caught.value.code == "invalid_amount"
        payment = await module.retrieve_payment(payment.id, {"relations": ["captures"]})
        assert payment.captures == []
        assert fake.calls("POST", f"/v1/payment_intents/{session.data['id']}/capture") == []
        payment = await module.capture_payment({"payment_id": payment.id, "amount": Decimal("3.34")})
        assert [c.amount for c in payment.captures or []] == [Decimal("3.34")]
        assert fake.objects[session.data["id"]]["amount_received"] == 3340


# -- 4. what stays capturable ---------------------------------------------------------------
async def test_a_partial_capture_without_multicapture_releases_the_rest(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    """docs.stripe.com/api/payment_intents/capture: `final_capture` "Defaults to true"; only
    `final_capture=false` "notifies Stripe to not release the remaining uncaptured funds". Without
    multicapture a partial capture releases the rest: the intent is `succeeded` with
    `amount_capturable` 0, so the capture answers `remaining_capturable == 0`."""
    intent = await authorized(provider, "100", "usd")
    out = await capture(provider, intent, "40", "capt_1")
    assert remaining(out) == Decimal(0)
    assert out.data is not None and (out.data["status"], out.data["amount_received"]) == ("succeeded", 4000)
    assert fake.objects[intent["id"]]["amount_capturable"] == 0


async def test_multicapture_keeps_the_rest_capturable_in_major_units(
    multicapture: StripeProvider, fake: FakeStripe
) -> None:
    """docs.stripe.com/payments/multicapture: "capturing 7 USD with final_capture=false keeps the
    remaining 3 USD authorized" ("amount_capturable": 1000 - 700 = 300); the final capture releases
    the rest ("amount_capturable": 0)."""
    intent = await authorized(multicapture, "10", "kwd")
    first = await capture(multicapture, intent, "2.5", "capt_1", currency="kwd")
    assert remaining(first) == Decimal("7.5")
    second = await capture(multicapture, first.data or {}, "3", "capt_2", currency="kwd")
    assert remaining(second) == Decimal("4.5")
    third = await capture(multicapture, second.data or {}, "1", "capt_3", currency="kwd")
    assert remaining(third) == Decimal("3.5")
    last = await capture(multicapture, third.data or {}, "3.5", "capt_4", currency="kwd")
    assert remaining(last) == Decimal(0)
    assert (fake.objects[intent["id"]]["status"], fake.objects[intent["id"]]["amount_received"]) == (
        "succeeded",
        10000,
    )


async def test_a_capture_stripe_already_made_answers_what_stays_capturable(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    """Stripe answers a capture of a succeeded intent with `payment_intent_unexpected_state` and the
    intent in `error.payment_intent` (docs.stripe.com/error-codes/payment-intent-unexpected-state): the
    provider recognises its capture there and reports nothing left to capture."""
    intent = await authorized(provider, "100", "usd")
    await capture(provider, dict(intent), "100", "capt_lost")
    out = await capture(provider, intent, "100", "capt_retry")
    assert remaining(out) == Decimal(0)
    assert fake.calls("POST", f"/v1/payment_intents/{intent['id']}/capture")[-1].status == 400


# -- 5. resumed refunds and captures --------------------------------------------------------
async def test_a_refund_whose_500_stripe_stored_is_found_when_the_run_resumes(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    """docs.stripe.com/idempotency: Stripe saves "the status code and body of the first request ...
    Subsequent requests with the same key return the same result, including 500 errors", and keys
    can be pruned once "at least 24 hours old. We generate a new request if a key is reused after the
    original is pruned." So a refund Stripe made before answering 500 can neither be learned by a retry
    (it replays the 500) nor be retried safely after 24 h (it would refund twice). The refund carries
    paymod's refund id in its metadata, and a resumed run finds it in the intent's refunds."""
    intent = (await capture(provider, await authorized(provider, "100", "usd"), "100", "capt_1")).data or {}
    fake.fail("crashed", path="/v1/refunds")
    with pytest.raises(RetryableProviderError):
        await refund(provider, intent, "30", "ref_1")
    assert [c.status for c in fake.calls("POST", "/v1/refunds")] == [500, 500, 500]  # the SDK retried
    assert len(fake.of_type("re_")) == 1  # ... but Stripe had refunded
    (made,) = fake.of_type("re_")

    for expired in (False, True):  # within Stripe's 24 hours, and after the key was pruned
        if expired:
            fake.expire_idempotency_keys()
        posts = len(fake.calls("POST", "/v1/refunds"))
        data = await refund(provider, intent, "30", "ref_1", resumed=True)
        assert data["last_refund"]["id"] == made["id"]
        assert len(fake.calls("POST", "/v1/refunds")) == posts  # found, not created again
        assert len(fake.of_type("re_")) == 1
    listed = fake.calls("GET", "/v1/refunds")
    assert listed and listed[-1].params == {"limit": "100", "payment_intent": intent["id"]}
    assert made["metadata"] == {"paymod_refund_id": "ref_1"}


async def test_a_refund_stripe_never_made_is_made_when_the_run_resumes(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    """docs.stripe.com/idempotency: a request that did not start executing stores nothing under its key
    (stripe-rules E1.4), so a resumed run that finds no refund with paymod's id refunds once."""
    intent = (await capture(provider, await authorized(provider, "100", "usd"), "100", "capt_1")).data or {}
    fake.fail("server_error", times=3, path="/v1/refunds")
    with pytest.raises(RetryableProviderError):
        await refund(provider, intent, "30", "ref_1")
    assert fake.of_type("re_") == []
    data = await refund(provider, intent, "30", "ref_1", resumed=True)
    (made,) = fake.of_type("re_")
    assert data["last_refund"]["id"] == made["id"] and made["amount"] == 3000


async def test_the_resumed_refund_lookup_pages_through_all_refunds(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    """GET /v1/refunds (stripe-python `RefundService.list`): "the most recent refunds appearing first",
    `limit` "can range between 1 and 100", `starting_after` pages on. The refund paymod looks for is
    the oldest of 102, on the second page."""
    intent = (await capture(provider, await authorized(provider, "100", "usd"), "100", "capt_1")).data or {}
    fake.fail("crashed", path="/v1/refunds")
    with pytest.raises(RetryableProviderError):
        await refund(provider, intent, "1", "ref_oldest")
    for n in range(101):
        await refund(provider, intent, "0.01", f"ref_{n:03d}")
    fake.expire_idempotency_keys()
    data = await refund(provider, intent, "1", "ref_oldest", resumed=True)
    assert data["last_refund"]["amount"] == 100
    assert len(fake.of_type("re_")) == 102
    pages = fake.calls("GET", "/v1/refunds")
    assert [p.params.get("starting_after") is not None for p in pages] == [False, True]


async def test_a_capture_stripe_made_before_a_stored_500_is_not_made_again_when_resumed(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    """docs.stripe.com/idempotency (500s replayed for a key, keys pruned after 24 h) and
    docs.stripe.com/api/payment_intents/capture (a capture without multicapture leaves the intent
    `succeeded`): a resumed run reads the intent and books the capture Stripe already made."""
    intent = await authorized(provider, "100", "usd")
    fake.fail("crashed", path=f"/v1/payment_intents/{intent['id']}/capture")
    with pytest.raises(RetryableProviderError):
        await capture(provider, intent, "60", "capt_1")
    for expired in (False, True):
        if expired:
            fake.expire_idempotency_keys()
        posts = len(fake.calls("POST", f"/v1/payment_intents/{intent['id']}/capture"))
        out = await capture(provider, intent, "60", "capt_1", resumed=True)
        assert out.data is not None and out.data["amount_received"] == 6000
        assert remaining(out) == Decimal(0)
        assert len(fake.calls("POST", f"/v1/payment_intents/{intent['id']}/capture")) == posts
    assert fake.objects[intent["id"]]["amount_received"] == 6000


async def test_a_partial_multicapture_capture_is_recognised_by_its_marker_when_resumed(
    multicapture: StripeProvider, fake: FakeStripe
) -> None:
    """docs.stripe.com/payments/multicapture: with `final_capture=false` the intent stays
    `requires_capture`, so its status cannot say whether a capture was made; the capture's `metadata`
    ("Set of key-value pairs that you can attach to an object", PaymentIntent capture) leaves a marker
    on the intent. Once Stripe pruned the key (docs.stripe.com/idempotency, 24 h) a blind retry would
    capture twice; the resumed run finds the marker instead."""
    intent = await authorized(multicapture, "100", "usd")
    path = f"/v1/payment_intents/{intent['id']}/capture"
    fake.fail("crashed", path=path)
    with pytest.raises(RetryableProviderError):
        await capture(multicapture, intent, "30", "capt_1")
    fake.expire_idempotency_keys()
    posts = len(fake.calls("POST", path))
    out = await capture(multicapture, intent, "30", "capt_1", resumed=True)
    assert fake.objects[intent["id"]]["amount_received"] == 3000  # captured once, not twice
    assert len(fake.calls("POST", path)) == posts
    assert remaining(out) == Decimal(70)
    assert fake.objects[intent["id"]]["metadata"]["paymod_capt_1"] == "3000"

    # A partial capture Stripe never made (nothing stored under its key) is made once when resumed.
    fake.fail("server_error", times=3, path=path)
    with pytest.raises(RetryableProviderError):
        await capture(multicapture, out.data or {}, "20", "capt_2")
    out = await capture(multicapture, out.data or {}, "20", "capt_2", resumed=True)
    assert fake.objects[intent["id"]]["amount_received"] == 5000
    assert remaining(out) == Decimal(50)


async def test_the_module_resumes_a_refund_whose_answer_was_a_stored_500(
    fake_module: PaymentModule, fake: FakeStripe
) -> None:
    """The same rule (docs.stripe.com/idempotency) through the module: a retry with the refund's
    Idempotency-Key resumes the run (context.resumed) and finds the refund Stripe made."""
    collection = await fake_module.create_payment_collections({"currency_code": "usd", "amount": 100})
    session = await fake_module.create_payment_session(
        collection.id,
        {
            "provider_id": "pp_stripe_stripe",
            "amount": 100,
            "currency_code": "usd",
            "data": {"payment_method": "pm_card_visa", "confirm": True},
        },
    )
    payment = await fake_module.authorize_payment_session(session.id)
    assert payment is not None
    await fake_module.capture_payment({"payment_id": payment.id})
    fake.fail("crashed", path="/v1/refunds")
    with pytest.raises(RetryableProviderError):
        await fake_module.refund_payment({"payment_id": payment.id, "amount": 30, "idempotency_key": "rma-1"})
    fake.expire_idempotency_keys()
    payment = await fake_module.refund_payment(
        {"payment_id": payment.id, "amount": 30, "idempotency_key": "rma-1"}
    )
    assert [r.amount for r in payment.refunds or []] == [Decimal(30)]
    (made,) = fake.of_type("re_")
    assert made["metadata"]["paymod_refund_id"] == (payment.refunds or [])[0].id


# -- 6. one webhook endpoint for every variant ----------------------------------------------
async def test_one_endpoint_serves_the_variants_sessions(
    fake_module: PaymentModule, fake: FakeStripe
) -> None:
    """docs.stripe.com/webhooks: each endpoint has its own signing secret, which verifies only that
    endpoint's deliveries. paymod's variants share one `webhook_secret`, so the documented setup is one
    Stripe endpoint (`/hooks/payment/stripe_stripe`): its events about a variant's session (here
    Bancontact) are verified with that secret and applied to the variant's session."""
    collection = await fake_module.create_payment_collections({"currency_code": "eur", "amount": 25})
    session = await fake_module.create_payment_session(
        collection.id,
        {
            "provider_id": "pp_stripe-bancontact_stripe",
            "amount": 25,
            "currency_code": "eur",
            "data": {"payment_method": "pm_bancontact", "confirm": True},
        },
    )
    assert session.status == "requires_more"
    fake.authenticate(session.data["id"])  # the customer approves at the bank; Stripe captures
    raw, headers = fake.signed(fake.last_event("payment_intent.succeeded"))
    received = await receive_webhook(fake_module, "stripe_stripe", raw, headers)
    assert (received.action, received.duplicate) == ("captured", False)
    outcome = await process_webhook_event(fake_module, await retrieve_webhook_event(fake_module, received.id))
    assert outcome == "captured"
    collection = await fake_module.retrieve_payment_collection(collection.id)
    assert (collection.status, collection.captured_amount) == ("completed", Decimal(25))


async def test_events_signed_by_any_configured_endpoint_secret_verify(fake: FakeStripe) -> None:
    """docs.stripe.com/webhooks (signatures): Stripe signs each endpoint's deliveries with that endpoint's
    secret. `webhook_secret` takes several (e.g. the account's endpoint and a Connect endpoint, or an
    old per-variant endpoint): an event verifies with any of them and with no other."""
    provider = make_provider(fake, webhook_secret="whsec_account, whsec_connect")
    await authorized(provider, "10", "usd")
    event = fake.last_event("payment_intent.amount_capturable_updated")
    for secret in ("whsec_account", "whsec_connect"):
        raw, headers = fake.signed(event, secret=secret)
        result = await provider.get_webhook_action_and_data(
            WebhookPayload(data={}, raw_data=raw, headers=headers)
        )
        assert (result.action, result.amount) == (PaymentAction.AUTHORIZED, Decimal(10))
    raw, headers = fake.signed(event, secret="whsec_someone_else")
    with pytest.raises(ProviderError) as caught:
        await provider.get_webhook_action_and_data(WebhookPayload(data={}, raw_data=raw, headers=headers))
    assert caught.value.code == "invalid_signature"
    stale_raw, stale_headers = fake.signed(event, secret="whsec_connect", timestamp=1_600_000_000)
    with pytest.raises(ProviderError, match="Timestamp outside the tolerance zone"):
        await provider.get_webhook_action_and_data(
            WebhookPayload(data={}, raw_data=stale_raw, headers=stale_headers)
        )
    await provider.close()


# -- 7. giropay -----------------------------------------------------------------------------
async def test_giropay_is_not_offered_any_more() -> None:
    """docs.stripe.com/payments/giropay: "Our financial partners are deprecating Giropay. No new business
    onboarding or transactions will be possible after June 30, 2024." No `pp_stripe-giropay_stripe`."""
    registry = load_providers(
        [{"resolve": "paymod.providers.stripe", "id": "stripe", "options": {"api_key": "sk_x"}}]
    )
    assert "pp_stripe-giropay_stripe" not in registry.ids
    assert all("giropay" not in (cls.payment_method_types or ()) for cls in services)
    assert all(cls.identifier != "stripe-giropay" for cls in services)
    await registry.close()


# -- 8. retrieve_payment's money, saved methods past one page -------------------------------
async def test_retrieve_payment_gives_every_money_field_in_major_units(
    multicapture: StripeProvider, fake: FakeStripe
) -> None:
    """PaymentIntent (stripe-python `PaymentIntent`): `amount`, `amount_capturable`, `amount_received`,
    `application_fee_amount` and `transfer_data.amount` are all in the smallest currency unit; paymod
    answers each in major units."""
    intent = await authorized(
        multicapture,
        "10",
        "kwd",
        application_fee_amount="0.5",
        transfer_data={"destination": "acct_seller", "amount": "8"},
    )
    await capture(multicapture, intent, "4", "capt_1", currency="kwd")
    out = await multicapture.retrieve_payment(ProviderInput(data=intent))
    assert out.data is not None
    got = {
        key: out.data[key]
        for key in ("amount", "amount_capturable", "amount_received", "application_fee_amount")
    }
    assert got == {
        "amount": Decimal(10),
        "amount_capturable": Decimal(6),
        "amount_received": Decimal(4),
        "application_fee_amount": Decimal("0.5"),
    }
    assert out.data["transfer_data"] == {"destination": "acct_seller", "amount": Decimal(8)}
    assert all(isinstance(value, Decimal) for value in got.values())


async def test_saved_payment_methods_are_listed_past_one_page(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    """GET /v1/customers/{id}/payment_methods is a Stripe list: `limit` "can range between 1 and 100",
    `has_more` says more follow, `starting_after` pages on. A customer with 105 saved cards has them
    all listed, newest first."""
    customer = (await provider.create_account_holder(_holder_input("cus_local_1"))).id
    cards = fake.add_cards(customer, 105)
    holder = {"id": "acchld_1", "external_id": customer, "data": {"id": customer}}
    methods = await provider.list_payment_methods(
        PaymentMethodInput(context=ProviderContext(account_holder=holder))
    )
    assert [m.id for m in methods] == list(reversed(cards))
    pages = fake.calls("GET", f"/v1/customers/{customer}/payment_methods")
    assert [(p.params["limit"], p.params.get("starting_after")) for p in pages] == [
        ("100", None),
        ("100", cards[5]),
    ]


def _holder_input(customer_id: str) -> AccountHolderInput:
    return AccountHolderInput(
        context=ProviderContext(
            idempotency_key=customer_id, customer={"id": customer_id, "email": "a@example.com"}
        )
    )
