"""The provider against the in-memory Stripe (tests/stripe/fake_stripe.py), through the real SDK.

These cover what localstripe cannot produce: idempotent replays and key reuse, Stripe's state
errors, over-refunds, rate limits, connection errors, card errors carrying the PaymentIntent,
multicapture, `amount_capturable_updated` and the other PaymentIntent events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import stripe
from fake_stripe import FakeStripe
from stripe_settings import WEBHOOK_SECRET

from paymod.domain.errors import ProviderError, RetryableProviderError
from paymod.domain.statuses import PaymentAction, PaymentSessionStatus
from paymod.providers.base import (
    AccountHolderInput,
    CapturePaymentInput,
    InitiatePaymentInput,
    PaymentMethodInput,
    ProviderContext,
    ProviderInput,
    RefundPaymentInput,
    UpdatePaymentInput,
    WebhookPayload,
)
from paymod.providers.stripe import StripeProvider

S = PaymentSessionStatus


@pytest.fixture
async def provider(fake: FakeStripe) -> AsyncIterator[StripeProvider]:
    provider = StripeProvider(
        {
            "api_key": "sk_test_fake",
            "api_base": "https://api.stripe.test",
            "webhook_secret": WEBHOOK_SECRET,
            "http_client": fake,
            "max_network_retries": 2,
            "async_payment_method_types": ["sepa_debit"],
        }
    )
    yield provider
    await provider.close()


def ctx(key: str | None = None, **kwargs: Any) -> ProviderContext:
    return ProviderContext(idempotency_key=key, **kwargs)


async def initiate(
    provider: StripeProvider,
    session: str = "payses_1",
    amount: str = "100",
    currency: str = "usd",
    **data: Any,
) -> tuple[str, dict[str, Any], PaymentSessionStatus | None]:
    out = await provider.initiate_payment(
        InitiatePaymentInput(
            data={"session_id": session, **data},
            context=ctx(session),
            amount=Decimal(amount),
            currency_code=currency,
        )
    )
    assert out.data is not None
    return out.id, out.data, out.status


async def authorized(provider: StripeProvider, amount: str = "100", **data: Any) -> dict[str, Any]:
    _, intent, status = await initiate(
        provider, amount=amount, payment_method="pm_card_visa", confirm=True, **data
    )
    assert status == S.AUTHORIZED
    return intent


async def capture(provider: StripeProvider, data: dict[str, Any], amount: str, key: str) -> dict[str, Any]:
    out = await provider.capture_payment(
        CapturePaymentInput(data=data, context=ctx(key), amount=Decimal(amount), currency_code="usd")
    )
    assert out.data is not None
    return out.data


# -- idempotency ----------------------------------------------------------------------------
async def test_a_retried_initiation_is_replayed_by_stripe_not_duplicated(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    first = await initiate(provider)
    again = await initiate(provider)
    assert first[0] == again[0]
    assert len(fake.of_type("pi_")) == 1
    creates = fake.calls("POST", "/v1/payment_intents")
    assert [c.idempotency_key for c in creates] == ["payses_1", "payses_1"]
    assert [c.replayed for c in creates] == [False, True]


async def test_reusing_a_key_with_other_parameters_is_an_idempotency_error(provider: StripeProvider) -> None:
    await initiate(provider, amount="100")
    with pytest.raises(ProviderError) as caught:
        await initiate(provider, amount="200")
    assert caught.value.code == "idempotency_error"
    assert isinstance(caught.value.__cause__, stripe.IdempotencyError)
    assert "same parameters" in caught.value.message


async def test_each_update_request_gets_its_own_key_and_an_unchanged_amount_makes_no_call(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    _, data, _ = await initiate(provider)
    for amount in ("150", "175", "150", "175"):  # Stripe must end at 175, not replay a stale answer
        out = await provider.update_payment(
            UpdatePaymentInput(
                data=data, context=ctx("payses_1:update"), amount=Decimal(amount), currency_code="usd"
            )
        )
        assert out.data is not None
        data = out.data
        assert data["amount"] == int(Decimal(amount) * 100)
        assert out.status == S.PENDING
    assert fake.objects[data["id"]]["amount"] == 17500
    keys = [u.idempotency_key or "" for u in fake.calls("POST", "/v1/payment_intents/pi_")]
    assert len(set(keys)) == 4 and all(k.startswith("payses_1:update:") for k in keys)
    before = len(fake.requests)
    out = await provider.update_payment(
        UpdatePaymentInput(
            data=data, context=ctx("payses_1:update"), amount=Decimal("175"), currency_code="usd"
        )
    )
    assert len(fake.requests) == before
    assert out.data == data


async def test_every_mutating_call_carries_the_modules_key(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    intent = await authorized(provider)
    intent = await capture(provider, intent, "100", "capt_1")
    await provider.refund_payment(
        RefundPaymentInput(data=intent, context=ctx("ref_1"), amount=Decimal("10"), currency_code="usd")
    )
    holder = await provider.create_account_holder(
        AccountHolderInput(
            context=ctx("cus_local_1", customer={"id": "cus_local_1", "email": "a@example.com"})
        )
    )
    posts = {(r.path.split("/")[2], r.idempotency_key) for r in fake.requests if r.method == "POST"}
    assert posts == {
        ("payment_intents", "payses_1"),
        ("payment_intents", "capt_1"),
        ("refunds", "ref_1"),
        ("customers", "cus_local_1"),
    }
    assert holder.id.startswith("cus_")


# -- captures ---------------------------------------------------------------------------------
async def test_partial_capture_sends_the_amount_and_stripe_releases_the_rest_without_multicapture(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    intent = await authorized(provider)
    intent = await capture(provider, intent, "40", "capt_1")
    (call,) = fake.calls("POST", f"/v1/payment_intents/{intent['id']}/capture")
    assert call.params == {"amount_to_capture": "4000"}
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 4000)
    with pytest.raises(ProviderError) as caught:
        await capture(provider, intent, "60", "capt_2")
    assert caught.value.code == "payment_intent_unexpected_state"
    assert "status of succeeded" in caught.value.message


async def test_multicapture_keeps_the_rest_capturable_until_the_last_capture(
    fake: FakeStripe,
) -> None:
    provider = StripeProvider(
        {"api_key": "sk_test_fake", "http_client": fake, "multicapture": True, "max_network_retries": 0}
    )
    intent = await authorized(provider)
    assert intent["payment_method_options"] == {"card": {"request_multicapture": "if_available"}}
    intent = await capture(provider, intent, "30", "capt_1")
    assert (intent["status"], intent["amount_received"], intent["amount_capturable"]) == (
        "requires_capture",
        3000,
        7000,
    )
    intent = await capture(provider, intent, "30", "capt_2")
    assert (intent["status"], intent["amount_received"]) == ("requires_capture", 6000)
    intent = await capture(provider, intent, "40", "capt_3")
    assert (intent["status"], intent["amount_received"], intent["amount_capturable"]) == (
        "succeeded",
        10000,
        0,
    )
    params = [c.params for c in fake.calls("POST", f"/v1/payment_intents/{intent['id']}/capture")]
    # Each partial capture leaves its marker in the intent's metadata (a resumed run looks for it).
    assert params == [
        {"amount_to_capture": "3000", "final_capture": "false", "metadata": {"paymod_capt_1": "3000"}},
        {"amount_to_capture": "3000", "final_capture": "false", "metadata": {"paymod_capt_2": "3000"}},
        {"amount_to_capture": "4000"},
    ]
    await provider.close()


async def test_a_capture_stripe_already_made_is_recognised_as_done(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    intent = await authorized(provider)
    # The first answer was lost: Stripe captured, we recorded nothing; the retry has a new key.
    await capture(provider, dict(intent), "100", "capt_lost")
    recovered = await capture(provider, intent, "100", "capt_retry")
    assert recovered["status"] == "succeeded"
    assert recovered["amount_received"] == 10000
    assert fake.calls("POST", f"/v1/payment_intents/{intent['id']}/capture")[-1].status == 400


async def test_capturing_a_canceled_intent_fails_with_stripes_message(provider: StripeProvider) -> None:
    intent = await authorized(provider)
    await provider.cancel_payment(ProviderInput(data=intent, context=ctx("pay_1:cancel")))
    with pytest.raises(ProviderError) as caught:
        await capture(provider, intent, "100", "capt_1")
    assert caught.value.code == "payment_intent_unexpected_state"
    assert caught.value.message.startswith("This PaymentIntent's capture could not be performed")
    assert isinstance(caught.value.__cause__, stripe.InvalidRequestError)


# -- cancel -----------------------------------------------------------------------------------
async def test_cancel_is_idempotent_even_with_a_new_key(provider: StripeProvider, fake: FakeStripe) -> None:
    intent = await authorized(provider)
    first = await provider.cancel_payment(ProviderInput(data=intent, context=ctx("pay_1:cancel")))
    second = await provider.cancel_payment(ProviderInput(data=intent, context=ctx("other-key")))
    assert first.data is not None and second.data is not None
    assert first.data["status"] == second.data["status"] == "canceled"
    assert fake.calls("POST", f"/v1/payment_intents/{intent['id']}/cancel")[-1].status == 400


async def test_cancel_without_an_intent_does_nothing_and_after_success_fails(
    provider: StripeProvider,
) -> None:
    out = await provider.cancel_payment(ProviderInput(data={"session_id": "payses_1"}))
    assert out.data == {"session_id": "payses_1"}
    intent = await authorized(provider)
    intent = await capture(provider, intent, "100", "capt_1")
    with pytest.raises(ProviderError) as caught:
        await provider.delete_payment(ProviderInput(data=intent))
    assert caught.value.code == "payment_intent_unexpected_state"


# -- refunds ----------------------------------------------------------------------------------
async def test_refund_reasons_stripe_knows_are_sent_and_all_are_kept_in_metadata(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    intent = await capture(provider, await authorized(provider), "100", "capt_1")
    for key, reason, note in (("ref_1", "requested_by_customer", None), ("ref_2", "shipping_issue", "late")):
        out = await provider.refund_payment(
            RefundPaymentInput(
                data=intent,
                context=ctx(key),
                amount=Decimal("10"),
                currency_code="usd",
                reason=reason,
                note=note,
            )
        )
        assert out.data is not None and out.data["last_refund"]["status"] == "succeeded"
    refunds = fake.of_type("re_")
    assert [(r["amount"], r["reason"], r["metadata"]) for r in refunds] == [
        (
            1000,
            "requested_by_customer",
            {"refund_reason": "requested_by_customer", "paymod_refund_id": "ref_1"},
        ),
        (1000, None, {"refund_reason": "shipping_issue", "note": "late", "paymod_refund_id": "ref_2"}),
    ]


async def test_multiple_partial_refunds_up_to_the_capture_then_stripe_refuses(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    intent = await capture(provider, await authorized(provider), "100", "capt_1")

    async def refund(amount: str, key: str) -> None:
        await provider.refund_payment(
            RefundPaymentInput(data=intent, context=ctx(key), amount=Decimal(amount), currency_code="usd")
        )

    await refund("30", "ref_1")
    await refund("30", "ref_1")  # a retry: replayed, not refunded twice
    await refund("45.5", "ref_2")
    with pytest.raises(ProviderError) as caught:
        await refund("25", "ref_3")
    assert caught.value.code == "amount_too_large"
    await refund("24.5", "ref_4")
    assert sum(r["amount"] for r in fake.of_type("re_")) == 10000
    # Refunding a fully refunded charge: Stripe says charge_already_refunded, which Medusa ignores.
    out = await provider.refund_payment(
        RefundPaymentInput(data=intent, context=ctx("ref_5"), amount=Decimal("1"), currency_code="usd")
    )
    assert out.data == intent
    assert fake.requests[-1].status == 400
    assert len(fake.of_type("re_")) == 3


# -- errors: card, rate limits, connections ---------------------------------------------------
async def test_a_decline_carrying_the_intent_gives_status_error_with_the_decline_code(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    intent_id, data, status = await initiate(
        provider, payment_method="pm_card_chargeDeclinedInsufficientFunds", confirm=True
    )
    assert status == S.ERROR
    assert intent_id.startswith("pi_") and data["id"] == intent_id
    assert data["decline_code"] == "insufficient_funds"
    assert data["last_payment_error"]["decline_code"] == "insufficient_funds"
    assert fake.requests[-1].status == 402


async def test_a_card_error_without_an_intent_is_a_provider_error(provider: StripeProvider) -> None:
    holder = await provider.create_account_holder(
        AccountHolderInput(
            context=ctx("cus_local_1", customer={"id": "cus_local_1", "email": "a@example.com"})
        )
    )
    with pytest.raises(ProviderError) as caught:
        await provider.save_payment_method(
            PaymentMethodInput(
                data={"payment_method": "pm_card_visa_chargeDeclined", "confirm": True},
                context=ctx(account_holder={"external_id": holder.id, "data": holder.data}),
            )
        )
    assert caught.value.code == "card_declined"
    assert caught.value.message == "Your card was declined."
    assert isinstance(caught.value.__cause__, stripe.CardError)


async def test_rate_limits_are_retried_with_backoff_on_the_same_key(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    fake.fail("rate_limit", times=2)
    intent_id, _, _ = await initiate(provider)
    creates = fake.calls("POST", "/v1/payment_intents")
    assert [c.status for c in creates] == [429, 429, 200]
    assert {c.idempotency_key for c in creates} == {"payses_1"}
    assert len(fake.sleeps) == 2
    assert 0.5 <= fake.sleeps[0] <= 0.5 and 0.5 <= fake.sleeps[1] <= 1.0
    assert len(fake.of_type("pi_")) == 1 and intent_id.startswith("pi_")


async def test_persistent_rate_limits_raise_a_retryable_error(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    fake.fail("rate_limit", times=3)
    with pytest.raises(RetryableProviderError) as caught:
        await initiate(provider)
    assert caught.value.code == "rate_limit"
    assert isinstance(caught.value.__cause__, stripe.RateLimitError)
    assert len(fake.calls("POST", "/v1/payment_intents")) == 3
    assert fake.of_type("pi_") == []


async def test_connection_errors_are_retried_by_the_sdk_on_the_same_key(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    intent = await authorized(provider)
    fake.fail("connection", times=2)
    captured = await capture(provider, intent, "100", "capt_1")
    assert captured["status"] == "succeeded"
    calls = fake.calls("POST", f"/v1/payment_intents/{intent['id']}/capture")
    assert [c.status for c in calls] == [-1, -1, 200]
    assert {c.idempotency_key for c in calls} == {"capt_1"}
    assert len(fake.sleeps) == 2


async def test_persistent_connection_errors_raise_a_retryable_error_and_a_retry_is_safe(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    intent = await authorized(provider)
    fake.fail("connection", times=3)
    with pytest.raises(RetryableProviderError) as caught:
        await capture(provider, intent, "100", "capt_1")
    assert caught.value.code == "stripe_connection_error"
    assert isinstance(caught.value.__cause__, stripe.APIConnectionError)
    assert (await capture(provider, intent, "100", "capt_1"))["amount_received"] == 10000


@pytest.mark.parametrize("kind", ["conflict", "server_error"])
async def test_conflicts_and_server_errors_are_retried_then_retryable(
    provider: StripeProvider, fake: FakeStripe, kind: str
) -> None:
    fake.fail(kind, times=1)
    await initiate(provider, session="payses_ok")
    fake.fail(kind, times=3)
    with pytest.raises(RetryableProviderError):
        await initiate(provider, session="payses_ko")
    assert [c.status for c in fake.calls("POST", "/v1/payment_intents")][-3:] == [
        409 if kind == "conflict" else 500
    ] * 3


# -- account holders and saved methods --------------------------------------------------------
async def test_customers_and_saved_methods(provider: StripeProvider, fake: FakeStripe) -> None:
    customer = {
        "id": "cus_local_1",
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+441234",
        "billing_address": {
            "address_1": "1 Street",
            "city": "London",
            "country_code": "gb",
            "postal_code": "N1",
        },
    }
    created = await provider.create_account_holder(
        AccountHolderInput(context=ctx("cus_local_1", customer=customer))
    )
    assert created.data is not None
    assert (created.data["email"], created.data["name"]) == ("ada@example.com", "Ada Lovelace")
    assert created.data["address"] == {
        "line1": "1 Street",
        "city": "London",
        "country": "gb",
        "postal_code": "N1",
    }
    assert created.data["metadata"] == {"customer_id": "cus_local_1"}
    holder = {"id": "acchld_1", "external_id": created.id, "data": created.data}

    updated = await provider.update_account_holder(
        AccountHolderInput(
            context=ctx(
                "acchld_1:update", account_holder=holder, customer={**customer, "company_name": "ACME"}
            )
        )
    )
    assert updated.data is not None and updated.data["name"] == "ACME"
    assert (
        await provider.update_account_holder(AccountHolderInput(context=ctx(account_holder=holder)))
    ).data is None

    saved = await provider.save_payment_method(
        PaymentMethodInput(
            data={"payment_method": "pm_card_mastercard", "confirm": True, "usage": "off_session"},
            context=ctx("seti-key", account_holder=holder),
        )
    )
    assert saved.id.startswith("seti_") and saved.data is not None and saved.data["status"] == "succeeded"
    methods = await provider.list_payment_methods(PaymentMethodInput(context=ctx(account_holder=holder)))
    assert [m.id for m in methods] == [saved.data["payment_method"]]
    assert fake.calls("GET", f"/v1/customers/{created.id}/payment_methods")
    assert await provider.list_payment_methods(PaymentMethodInput(context=ctx())) == []

    # A session paid off-session with the saved card.
    _, intent, status = await initiate(
        provider,
        payment_method=methods[0].id,
        off_session=True,
        confirm=True,
        session="payses_saved",
    )
    assert status == S.AUTHORIZED
    detached = await provider.delete_payment_method(PaymentMethodInput(data={"id": methods[0].id}))
    assert detached.data is not None and detached.data["customer"] is None
    assert await provider.list_payment_methods(PaymentMethodInput(context=ctx(account_holder=holder))) == []

    await provider.delete_account_holder(AccountHolderInput(context=ctx(account_holder=holder)))
    await provider.delete_account_holder(AccountHolderInput(context=ctx(account_holder=holder)))  # gone: fine
    retrieved = await provider.retrieve_account_holder(AccountHolderInput(context=ctx(account_holder=holder)))
    assert retrieved.data is not None and retrieved.data["deleted"] is True
    assert intent["status"] == "requires_capture"


async def test_account_holder_needs_a_customer(provider: StripeProvider) -> None:
    with pytest.raises(ProviderError, match="No customer in context"):
        await provider.create_account_holder(AccountHolderInput(context=ctx("k")))


# -- statuses through the fake ----------------------------------------------------------------
async def test_three_d_secure_then_authorized(provider: StripeProvider, fake: FakeStripe) -> None:
    _, intent, status = await initiate(provider, payment_method="pm_card_threeDSecure2Required", confirm=True)
    assert status == S.REQUIRES_MORE
    assert intent["next_action"]["type"] == "use_stripe_sdk"
    fake.authenticate(intent["id"])
    out = await provider.authorize_payment(ProviderInput(data=intent, context=ctx("payses_1")))
    assert out.status == S.AUTHORIZED
    assert out.data is not None and out.data["payment_method"]["card"]["last4"] == "3155"


async def test_async_methods_are_pending_authorization_while_processing(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    _, intent, status = await initiate(provider, payment_method="pm_sepa_debit", confirm=True)
    assert status == S.PENDING_AUTHORIZATION
    fake.settle(intent["id"])
    out = await provider.get_payment_status(ProviderInput(data=intent))
    assert out.status == S.CAPTURED


async def test_retrieve_payment_converts_the_amount_back(provider: StripeProvider) -> None:
    _, intent, _ = await initiate(provider, amount="1.24", currency="kwd")
    assert intent["amount"] == 1240
    out = await provider.retrieve_payment(ProviderInput(data=intent))
    assert out.data is not None and out.data["amount"] == Decimal("1.24")
    with pytest.raises(ProviderError, match="No payment intent ID provided while getting payment status"):
        await provider.get_payment_status(ProviderInput(data={}))


# -- webhooks from the fake, signed as Stripe signs them --------------------------------------
async def _action(provider: StripeProvider, fake: FakeStripe, event: dict[str, Any]) -> tuple[Any, ...]:
    raw, headers = fake.signed(event)
    result = await provider.get_webhook_action_and_data(
        WebhookPayload(data=json.loads(raw), raw_data=raw, headers=headers)
    )
    return result.action, result.session_id, result.amount, result.event_id == event["id"]


async def test_events_of_a_manual_card_payment(provider: StripeProvider, fake: FakeStripe) -> None:
    intent = await authorized(provider, amount="100")
    assert await _action(provider, fake, fake.last_event("payment_intent.created")) == (
        PaymentAction.PENDING,
        "payses_1",
        Decimal(100),
        True,
    )
    assert await _action(provider, fake, fake.last_event("payment_intent.amount_capturable_updated")) == (
        PaymentAction.AUTHORIZED,
        "payses_1",
        Decimal(100),
        True,
    )
    await capture(provider, intent, "60", "capt_1")
    assert await _action(provider, fake, fake.last_event("payment_intent.succeeded")) == (
        PaymentAction.SUCCESSFUL,
        "payses_1",
        Decimal(60),  # amount_received: what was captured
        True,
    )


async def test_events_of_declines_3ds_cancel_and_async_methods(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    await initiate(provider, session="payses_d", payment_method="pm_card_visa_chargeDeclined", confirm=True)
    assert (await _action(provider, fake, fake.last_event("payment_intent.payment_failed")))[:2] == (
        PaymentAction.FAILED,
        "payses_d",
    )
    _, three_ds, _ = await initiate(
        provider, session="payses_3", payment_method="pm_card_threeDSecure2Required", confirm=True
    )
    assert (await _action(provider, fake, fake.last_event("payment_intent.requires_action")))[:2] == (
        PaymentAction.REQUIRES_MORE,
        "payses_3",
    )
    await provider.cancel_payment(ProviderInput(data=three_ds))
    assert (await _action(provider, fake, fake.last_event("payment_intent.canceled")))[:2] == (
        PaymentAction.CANCELED,
        "payses_3",
    )
    await initiate(provider, session="payses_s", payment_method="pm_sepa_debit", confirm=True)
    # The event names the payment method by id: the provider retrieves it to see it is async.
    before = len(fake.calls("GET", "/v1/payment_methods/"))
    assert (await _action(provider, fake, fake.last_event("payment_intent.processing")))[:2] == (
        PaymentAction.PENDING_AUTHORIZATION,
        "payses_s",
    )
    assert len(fake.calls("GET", "/v1/payment_methods/")) == before + 1
