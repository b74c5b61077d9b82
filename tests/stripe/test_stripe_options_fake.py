"""What merchants set on a Stripe payment, against the in-memory Stripe (fake_stripe.py) through the SDK:
PaymentIntent parameters passed through from the session, Connect (`Stripe-Account`, application fees,
destination charges) and Radar's assessment with the capture deadline on authorization."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from fake_stripe import DAY, FakeStripe
from stripe_settings import WEBHOOK_SECRET, stripe_config

from paymod import PaymentModule
from paymod.domain.errors import InvalidDataError, ProviderError
from paymod.domain.statuses import PaymentAction, PaymentSessionStatus
from paymod.providers.base import (
    AccountHolderInput,
    CapturePaymentInput,
    InitiatePaymentInput,
    PaymentMethodInput,
    ProviderContext,
    ProviderInput,
    RefundPaymentInput,
    WebhookPayload,
)
from paymod.providers.stripe import StripeProvider

S = PaymentSessionStatus
SHIPPING = {
    "name": "Ada Lovelace",
    "phone": "+441234",
    "address": {"line1": "1 Street", "city": "London", "postal_code": "N1", "country": "GB"},
}


def make_provider(fake: FakeStripe, **options: Any) -> StripeProvider:
    return StripeProvider(
        {
            "api_key": "sk_test_fake",
            "webhook_secret": WEBHOOK_SECRET,
            "http_client": fake,
            "max_network_retries": 0,
            "async_payment_method_types": ["sepa_debit"],
            **options,
        }
    )


@pytest.fixture
async def provider(fake: FakeStripe) -> AsyncIterator[StripeProvider]:
    provider = make_provider(fake)
    yield provider
    await provider.close()


async def initiate(
    provider: StripeProvider,
    amount: str = "10",
    currency: str = "usd",
    context: dict[str, Any] | None = None,
    **data: Any,
) -> tuple[dict[str, Any], PaymentSessionStatus | None]:
    out = await provider.initiate_payment(
        InitiatePaymentInput(
            data={"session_id": "payses_1", **data},
            context=ProviderContext(idempotency_key="payses_1", extra=dict(context or {})),
            amount=Decimal(amount),
            currency_code=currency,
        )
    )
    assert out.data is not None
    return out.data, out.status


def created_params(fake: FakeStripe) -> dict[str, Any]:
    (create,) = fake.calls("POST", "/v1/payment_intents")
    return create.params


# -- passthrough ----------------------------------------------------------------------------
async def test_session_data_reaches_the_payment_intent(provider: StripeProvider, fake: FakeStripe) -> None:
    """PaymentIntent create (stripe-python `PaymentIntentCreateParams`): `statement_descriptor_suffix`
    ("Concatenated to the account's statement descriptor prefix"), `receipt_email` ("Email address to
    send the receipt to"), `shipping`, `payment_method_types` are the merchant's to set; the session's
    data carries them to Stripe unchanged."""
    intent, status = await initiate(
        provider,
        statement_descriptor_suffix="ORDER 1042",
        receipt_email="ada@example.com",
        shipping=SHIPPING,
        payment_method_types=["card", "sepa_debit"],
    )
    assert status == S.PENDING
    params = created_params(fake)
    assert params["statement_descriptor_suffix"] == "ORDER 1042"
    assert params["receipt_email"] == "ada@example.com"
    assert params["shipping"] == SHIPPING
    assert params["payment_method_types"] == ["card", "sepa_debit"]
    stored = fake.objects[intent["id"]]
    assert (stored["statement_descriptor_suffix"], stored["receipt_email"]) == (
        "ORDER 1042",
        "ada@example.com",
    )
    assert stored["shipping"] == SHIPPING and stored["payment_method_types"] == ["card", "sepa_debit"]
    assert "automatic_payment_methods" not in params


async def test_the_sessions_context_is_the_fallback_and_data_wins(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    """The same PaymentIntent parameters may come with the session's context (e.g. the cart's email and
    shipping), the session's data winning where both give one."""
    await initiate(
        provider,
        context={
            "receipt_email": "context@example.com",
            "shipping": SHIPPING,
            "statement_descriptor_suffix": "CTX",
        },
        statement_descriptor_suffix="DATA",
    )
    params = created_params(fake)
    assert (params["receipt_email"], params["statement_descriptor_suffix"]) == ("context@example.com", "DATA")
    assert params["shipping"] == SHIPPING


async def test_automatic_payment_methods_from_the_session(provider: StripeProvider, fake: FakeStripe) -> None:
    """PaymentIntent create: `automatic_payment_methods` ("When you enable this parameter, this
    PaymentIntent accepts payment methods that you enable in the Dashboard") and `payment_method_types`
    are exclusive (Stripe: "You may only specify one of these parameters")."""
    intent, _ = await initiate(
        provider, automatic_payment_methods={"enabled": True, "allow_redirects": "never"}
    )
    assert created_params(fake)["automatic_payment_methods"] == {
        "enabled": "true",
        "allow_redirects": "never",
    }
    assert fake.objects[intent["id"]]["automatic_payment_methods"] == {
        "enabled": "true",
        "allow_redirects": "never",
    }


async def test_a_confirmation_token_confirms_with_the_customers_payment_method(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    """PaymentIntent create: `confirmation_token`, "ID of the ConfirmationToken used to confirm this
    PaymentIntent", which Stripe.js creates from the payment form; with `confirm: true` the intent is
    confirmed with the token's payment method (manual capture: authorized)."""
    token = fake.confirmation_token("pm_card_mastercard")
    intent, status = await initiate(provider, confirmation_token=token, confirm=True)
    assert status == S.AUTHORIZED
    assert created_params(fake)["confirmation_token"] == token
    assert fake.objects[fake.objects[intent["id"]]["payment_method"]]["card"]["brand"] == "mastercard"


async def test_mandate_data_goes_with_the_confirmation(provider: StripeProvider, fake: FakeStripe) -> None:
    """PaymentIntent create: `mandate_data`, "details about the Mandate to create. This parameter can only
    be used with confirm=true" (a SEPA debit here, which then settles later: `processing`)."""
    mandate = {
        "customer_acceptance": {"type": "online", "online": {"ip_address": "1.2.3.4", "user_agent": "t"}}
    }
    intent, status = await initiate(
        provider, payment_method="pm_sepa_debit", confirm=True, mandate_data=mandate, currency="eur"
    )
    assert status == S.PENDING_AUTHORIZATION
    assert created_params(fake)["mandate_data"] == mandate
    assert fake.objects[intent["id"]]["_mandate_data"] == mandate


# -- Connect --------------------------------------------------------------------------------
async def test_a_sessions_connected_account_goes_on_every_call_of_its_payment(fake: FakeStripe) -> None:
    """docs.stripe.com/connect/authentication: requests on a connected account's behalf carry the
    `Stripe-Account` header; its objects exist only for requests with that header (the fake answers
    404 `resource_missing` otherwise). The session's `stripe_account` wins over the option and is kept
    in the payment's data for every later call: authorize, capture, refund, cancel, retrieve."""
    provider = make_provider(fake, stripe_account="acct_platform_default")
    intent, status = await initiate(
        provider, stripe_account="acct_seller_7", payment_method="pm_card_visa", confirm=True
    )
    assert status == S.AUTHORIZED and intent["stripe_account"] == "acct_seller_7"
    authorized = await provider.authorize_payment(ProviderInput(data=intent))
    assert authorized.status == S.AUTHORIZED and authorized.data is not None
    captured = await provider.capture_payment(
        CapturePaymentInput(
            data=authorized.data, context=ProviderContext("capt_1"), amount=Decimal(10), currency_code="usd"
        )
    )
    assert captured.data is not None
    await provider.refund_payment(
        RefundPaymentInput(
            data=captured.data, context=ProviderContext("ref_1"), amount=Decimal(4), currency_code="usd"
        )
    )
    await provider.retrieve_payment(ProviderInput(data=captured.data))
    assert {r.account for r in fake.requests} == {"acct_seller_7"}
    assert [r.status for r in fake.requests] == [200] * len(fake.requests)
    # The same intent without the header does not exist for Stripe.
    platform = make_provider(fake)
    with pytest.raises(ProviderError) as caught:
        await platform.retrieve_payment(ProviderInput(data={"id": intent["id"]}))
    assert caught.value.code == "resource_missing"

    other, _ = await initiate(provider, payment_method="pm_card_visa", confirm=True)  # the option's account
    await provider.cancel_payment(ProviderInput(data=other))
    assert {r.account for r in fake.requests[-2:]} == {"acct_platform_default"}
    assert fake.objects[other["id"]]["status"] == "canceled"
    await provider.close()
    await platform.close()


async def test_saved_cards_of_a_connected_account(fake: FakeStripe) -> None:
    """`Stripe-Account` (docs.stripe.com/connect/authentication) also scopes customers and their
    payment methods: the `stripe_account` option puts the holder's customer on the connected account."""
    provider = make_provider(fake, stripe_account="acct_shop")
    holder_out = await provider.create_account_holder(
        AccountHolderInput(
            context=ProviderContext("cus_1", customer={"id": "cus_1", "email": "a@example.com"})
        )
    )
    holder = {"id": "acchld_1", "external_id": holder_out.id, "data": holder_out.data}
    saved = await provider.save_payment_method(
        PaymentMethodInput(
            data={"payment_method": "pm_card_visa", "confirm": True},
            context=ProviderContext("seti_1", account_holder=holder),
        )
    )
    methods = await provider.list_payment_methods(
        PaymentMethodInput(context=ProviderContext(account_holder=holder))
    )
    assert saved.data is not None and [m.id for m in methods] == [saved.data["payment_method"]]
    assert {r.account for r in fake.requests} == {"acct_shop"}
    await provider.close()


async def test_application_fee_and_destination_in_major_units(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    """PaymentIntent create: `application_fee_amount` ("The amount of the application fee ... transferred
    to the application owner's Stripe account") and `transfer_data[destination]` / `[amount]` are in the
    smallest currency unit at Stripe, like `amount`; paymod takes them in major units from the session
    and converts them with the same rules (docs.stripe.com/currencies)."""
    intent, _ = await initiate(
        provider,
        amount="49.99",
        application_fee_amount="4.5",
        transfer_data={"destination": "acct_seller_7", "amount": "40"},
        on_behalf_of="acct_seller_7",
    )
    params = created_params(fake)
    assert params["application_fee_amount"] == "450"
    assert params["transfer_data"] == {"destination": "acct_seller_7", "amount": "4000"}
    assert params["on_behalf_of"] == "acct_seller_7"
    stored = fake.objects[intent["id"]]
    assert (stored["application_fee_amount"], stored["transfer_data"]["amount"]) == (450, 4000)
    assert fake.requests[0].account is None  # a destination charge lives on the platform

    with pytest.raises(InvalidDataError) as caught:
        await initiate(
            provider, currency="kwd", application_fee_amount="0.125", stripe_account="acct_seller_7"
        )
    assert caught.value.code == "invalid_amount" and "application_fee_amount" in caught.value.message
    with pytest.raises(InvalidDataError):
        await initiate(provider, transfer_data={"amount": "1"})
    assert len(fake.calls("POST", "/v1/payment_intents")) == 1


async def test_a_direct_charge_takes_its_fee_on_the_connected_account(fake: FakeStripe) -> None:
    """docs.stripe.com/connect/direct-charges: a direct charge is created on the connected account
    (`Stripe-Account`) with the platform's `application_fee_amount`; Stripe refuses the fee on a
    platform charge without a destination (the fake answers as Stripe does)."""
    provider = make_provider(fake)
    intent, _ = await initiate(provider, stripe_account="acct_seller_7", application_fee_amount="1.25")
    assert fake.requests[-1].account == "acct_seller_7"
    assert fake.objects[intent["id"]]["application_fee_amount"] == 125
    with pytest.raises(ProviderError, match="application_fee_amount"):
        await initiate(provider, application_fee_amount="1.25")
    await provider.close()


async def test_connect_through_the_module(database_url: str, fake: FakeStripe) -> None:
    """The module keeps the session's data on the payment, so capture and refund of a payment made on
    a connected account carry its `Stripe-Account` (docs.stripe.com/connect/authentication)."""
    config = stripe_config("https://api.stripe.test", http_client=fake)
    async with await PaymentModule.connect(database_url, providers=[config], migrate=False) as module:
        collection = await module.create_payment_collections({"currency_code": "eur", "amount": 80})
        session = await module.create_payment_session(
            collection.id,
            {
                "provider_id": "pp_stripe_stripe",
                "amount": 80,
                "currency_code": "eur",
                "data": {
                    "payment_method": "pm_card_visa",
                    "confirm": True,
                    "stripe_account": "acct_seller_9",
                },
            },
        )
        payment = await module.authorize_payment_session(session.id)
        assert payment is not None
        payment = await module.capture_payment({"payment_id": payment.id, "amount": 50})
        payment = await module.refund_payment({"payment_id": payment.id, "amount": 20})
        assert [r.amount for r in payment.refunds or []] == [Decimal(20)]
        assert {r.account for r in fake.requests} == {"acct_seller_9"}
        assert fake.objects[session.data["id"]]["amount_received"] == 5000


async def test_connect_webhooks_name_the_account(fake: FakeStripe) -> None:
    """docs.stripe.com/connect/webhooks: events of a connected account carry its id in `account`; the
    provider looks the payment method up on that account (to tell an async method) and reports it."""
    provider = make_provider(fake)
    await initiate(
        provider, stripe_account="acct_seller_7", payment_method="pm_sepa_debit", confirm=True, currency="eur"
    )
    event = fake.last_event("payment_intent.processing")
    assert event["account"] == "acct_seller_7"
    raw, headers = fake.signed(event)
    result = await provider.get_webhook_action_and_data(
        WebhookPayload(data=json.loads(raw), raw_data=raw, headers=headers)
    )
    assert result.action == PaymentAction.PENDING_AUTHORIZATION
    assert result.data["account"] == "acct_seller_7"
    lookup = fake.calls("GET", "/v1/payment_methods/")[-1]
    assert (lookup.account, lookup.status) == ("acct_seller_7", 200)
    await provider.close()


def test_a_wrong_connected_account_is_refused() -> None:
    with pytest.raises(ValueError, match="acct_"):
        StripeProvider({"api_key": "sk_test_x", "stripe_account": "seller_7"})


# -- Radar and the capture deadline ---------------------------------------------------------
async def test_authorization_records_radars_assessment_and_the_capture_deadline(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    """Charge.outcome (stripe-python `Charge.Outcome`): `risk_level` ("normal, elevated, highest"),
    `risk_score` ("between 0 and 100"); Charge.payment_method_details.card.capture_before: "When using
    manual capture, a future timestamp at which the charge will be automatically refunded if
    uncaptured" (epoch seconds). Authorization keeps them in the payment's data: `risk_level`,
    `risk_score`, `capture_before` as Stripe's integer timestamp; a capture clears the deadline."""
    intent, _ = await initiate(provider, payment_method="pm_card_riskLevelElevated", confirm=True)
    out = await provider.authorize_payment(ProviderInput(data=intent))
    assert out.status == S.AUTHORIZED and out.data is not None
    charge = fake.objects[fake.objects[intent["id"]]["latest_charge"]]
    assert (out.data["risk_level"], out.data["risk_score"]) == ("elevated", 75)
    assert out.data["capture_before"] == charge["created"] + 7 * DAY
    assert isinstance(out.data["capture_before"], int)
    assert out.data["latest_charge"] == charge["id"]  # the charge id, as Stripe gives it unexpanded
    retrieve = fake.calls("GET", f"/v1/payment_intents/{intent['id']}")[-1]
    assert retrieve.params["expand"] == ["payment_method", "latest_charge"]

    captured = await provider.capture_payment(
        CapturePaymentInput(
            data=out.data, context=ProviderContext("capt_1"), amount=Decimal(10), currency_code="usd"
        )
    )
    status = await provider.get_payment_status(ProviderInput(data=captured.data or {}))
    assert status.data is not None and status.data["capture_before"] is None
    assert status.data["risk_level"] == "elevated"


async def test_radar_through_the_module(fake_module: PaymentModule, fake: FakeStripe) -> None:
    """Charge.outcome.risk_level / risk_score (Radar) end up in the payment's data on authorization."""
    collection = await fake_module.create_payment_collections({"currency_code": "usd", "amount": 30})
    session = await fake_module.create_payment_session(
        collection.id,
        {
            "provider_id": "pp_stripe_stripe",
            "amount": 30,
            "currency_code": "usd",
            "data": {"payment_method": "pm_card_visa", "confirm": True},
        },
    )
    payment = await fake_module.authorize_payment_session(session.id)
    assert payment is not None and payment.data is not None
    assert (payment.data["risk_level"], payment.data["risk_score"]) == ("normal", 20)
    assert payment.data["capture_before"] > 0
