"""The provider against the fake PayPal (tests/paypal/fake_paypal.py), through PayPal's own SDK over HTTP:
every method, PayPal-Request-Id idempotency, declines, faults, webhooks."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from fake_paypal import FakePayPal
from paypal_settings import paypal_options

from paymod.domain.errors import InvalidDataError, ProviderError, RetryableProviderError
from paymod.domain.statuses import PaymentAction, PaymentSessionStatus
from paymod.providers.base import (
    AuthorizePaymentOutput,
    CapturePaymentInput,
    InitiatePaymentInput,
    ProviderContext,
    ProviderInput,
    RefundPaymentInput,
    UpdatePaymentInput,
    WebhookPayload,
)
from paymod.providers.paypal import PayPalProvider

S = PaymentSessionStatus
ORDERS = r"/v2/checkout/orders"
AUTHORIZE = r"/v2/checkout/orders/\w+/authorize"
CAPTURE = r"/v2/payments/authorizations/\w+/capture"
REFUND = r"/v2/payments/captures/\w+/refund"


def ctx(key: str | None, **kwargs: Any) -> ProviderContext:
    return ProviderContext(idempotency_key=key, **kwargs)


async def initiate(
    provider: PayPalProvider, session: str = "payses_1", amount: str = "100", currency: str = "usd"
) -> dict[str, Any]:
    out = await provider.initiate_payment(
        InitiatePaymentInput(
            amount=Decimal(amount), currency_code=currency, data={"session_id": session}, context=ctx(session)
        )
    )
    assert out.data is not None
    return out.data


async def authorized(
    provider: PayPalProvider, fake: FakePayPal, session: str = "payses_1", amount: str = "100"
) -> dict[str, Any]:
    data = await initiate(provider, session, amount)
    fake.approve(data["id"])
    out = await provider.authorize_payment(ProviderInput(data=data, context=ctx(session)))
    assert out.status == S.AUTHORIZED and out.data is not None
    return out.data


async def capture(provider: PayPalProvider, data: dict[str, Any], amount: str, key: str, **kw: Any) -> Any:
    return await provider.capture_payment(
        CapturePaymentInput(data=data, amount=Decimal(amount), currency_code="usd", context=ctx(key, **kw))
    )


async def refund(provider: PayPalProvider, data: dict[str, Any], amount: str, key: str, **kw: Any) -> Any:
    return await provider.refund_payment(
        RefundPaymentInput(data=data, amount=Decimal(amount), currency_code="usd", context=ctx(key), **kw)
    )


# -- initiate ---------------------------------------------------------------------------------------
async def test_initiate_creates_an_order_the_buyer_must_approve(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = await initiate(provider, amount="10.5")
    order = fake.order(data["id"])
    unit = order["purchase_units"][0]
    assert unit["amount"] == {"currency_code": "USD", "value": "10.50"}
    assert (unit["custom_id"], unit["reference_id"]) == ("payses_1", "payses_1")
    assert order["intent"] == "AUTHORIZE"
    assert data["approve_url"] == f"{fake.url}/checkoutnow?token={data['id']}"
    assert data["status"] == "PAYER_ACTION_REQUIRED"
    create = next(r for r in fake.requests if r.path == ORDERS)
    assert create.request_id == "payses_1"


async def test_initiate_retried_with_its_key_creates_one_order(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    first = await initiate(provider)
    again = await initiate(provider)
    assert first["id"] == again["id"]
    assert len(fake.orders) == 1 and fake.effects("POST", ORDERS) == 1


async def test_an_amount_paypal_cannot_take_is_refused_before_any_call(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    with pytest.raises(InvalidDataError) as caught:
        await initiate(provider, amount="500.5", currency="jpy")
    assert caught.value.code == "invalid_amount"
    assert fake.requests == []
    data = await initiate(provider, amount="500", currency="jpy")
    assert fake.order(data["id"])["purchase_units"][0]["amount"] == {"currency_code": "JPY", "value": "500"}


async def test_the_experience_context_carries_the_options_and_the_sessions_urls(fake: FakePayPal) -> None:
    provider = PayPalProvider(paypal_options(fake.url, brand_name="Shop", return_url="https://shop.test/ok"))
    out = await provider.initiate_payment(
        InitiatePaymentInput(
            amount=Decimal(5),
            currency_code="eur",
            data={"session_id": "payses_x", "cancel_url": "https://shop.test/cart"},
            context=ctx("payses_x"),
        )
    )
    assert out.data is not None
    assert fake.order(out.id)["experience_context"] == {
        "brand_name": "Shop",
        "return_url": "https://shop.test/ok",
        "cancel_url": "https://shop.test/cart",
    }
    await provider.close()


async def test_wrong_credentials_are_a_provider_error(fake: FakePayPal) -> None:
    provider = PayPalProvider({**paypal_options(fake.url), "client_secret": "wrong"})
    with pytest.raises(ProviderError) as caught:
        await initiate(provider)
    assert caught.value.code == "authentication_error" and not isinstance(
        caught.value, RetryableProviderError
    )
    await provider.close()


async def test_paypals_token_endpoint_failing_leaves_the_call_retryable(fake: FakePayPal) -> None:
    provider = PayPalProvider(paypal_options(fake.url))
    fake.fail_next("server_error", "/v1/oauth2/token")
    with pytest.raises(RetryableProviderError):
        await initiate(provider)
    assert fake.orders == {}
    assert (await initiate(provider))["id"] in fake.orders
    await provider.close()


# -- authorize --------------------------------------------------------------------------------------
async def test_authorize_asks_for_the_buyers_approval_then_authorizes_the_order(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = await initiate(provider)
    out = await provider.authorize_payment(ProviderInput(data=data, context=ctx("payses_1")))
    assert out.status == S.REQUIRES_MORE and out.data is not None
    assert out.data["approve_url"] == data["approve_url"]
    fake.approve(data["id"])
    out = await provider.authorize_payment(ProviderInput(data=data, context=ctx("payses_1")))
    assert out.status == S.AUTHORIZED and out.data is not None
    authorization = fake.authorizations[out.data["authorization_id"]]
    assert authorization["status"] == "CREATED" and authorization["custom_id"] == "payses_1"
    assert out.data["authorized_amount"] == "100.00"
    # Authorizing again reads the completed order: no second authorization.
    again = await provider.authorize_payment(ProviderInput(data=out.data, context=ctx("payses_1")))
    assert again.status == S.AUTHORIZED and fake.effects("POST", AUTHORIZE) == 1


async def test_a_declined_instrument_sends_the_buyer_back_to_paypal(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = await initiate(provider)
    fake.approve(data["id"])
    fake.decline_instrument(data["id"])
    out = await provider.authorize_payment(ProviderInput(data=data, context=ctx("payses_1")))
    assert out.status == S.REQUIRES_MORE and out.data is not None
    assert out.data["decline_issue"] == "INSTRUMENT_DECLINED"
    assert out.data["approve_url"] == data["approve_url"]
    fake.approve(data["id"])  # another funding source
    out = await provider.authorize_payment(ProviderInput(data=out.data, context=ctx("payses_1")))
    assert out.status == S.AUTHORIZED and out.data is not None and "decline_issue" not in out.data
    # The refused attempt did nothing; the next one had a request id of its own.
    ids = [r.request_id for r in fake.requests if r.path.endswith("/authorize")]
    assert ids == ["payses_1", "payses_1:2"]


async def test_with_intent_capture_authorizing_captures_the_order(fake: FakePayPal) -> None:
    provider = PayPalProvider(paypal_options(fake.url, intent="CAPTURE"))
    data = await initiate(provider)
    fake.approve(data["id"])
    out: AuthorizePaymentOutput = await provider.authorize_payment(
        ProviderInput(data=data, context=ctx("payses_1"))
    )
    assert out.status == S.CAPTURED and out.data is not None
    assert [c["amount"] for c in out.data["captures"]] == ["100.00"]
    assert fake.effects("POST", r"/v2/checkout/orders/\w+/capture") == 1
    # paymod never captures again what the order captured.
    result = await capture(provider, out.data, "100", "capt_1")
    assert result.remaining_capturable == 0 and fake.effects("POST", CAPTURE) == 0
    await provider.close()


# -- capture ----------------------------------------------------------------------------------------
async def test_partial_captures_end_with_a_final_capture(provider: PayPalProvider, fake: FakePayPal) -> None:
    data = await authorized(provider, fake)
    first = await capture(provider, data, "30", "capt_1")
    assert first.remaining_capturable == Decimal(70)
    assert fake.authorizations[data["authorization_id"]]["status"] == "PARTIALLY_CAPTURED"
    second = await capture(provider, first.data, "70", "capt_2")
    assert second.remaining_capturable == 0
    assert fake.authorizations[data["authorization_id"]]["status"] == "CAPTURED"
    finals = [c["final_capture"] for c in fake.captures.values()]
    assert finals == [False, True]
    assert [c["invoice_id"] for c in fake.captures.values()] == ["capt_1", "capt_2"]
    assert second.data["captured_amount"] == "100.00"


async def test_a_capture_retried_with_its_key_captures_once(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = await authorized(provider, fake)
    fake.fail_next("lost", CAPTURE)  # PayPal captured, the answer was lost
    with pytest.raises(RetryableProviderError):
        await capture(provider, data, "40", "capt_1")
    result = await capture(provider, data, "40", "capt_1")
    assert result.remaining_capturable == Decimal(60)
    assert len(fake.captures) == 1 and fake.effects("POST", CAPTURE) == 1


async def test_a_resumed_capture_whose_request_id_lapsed_looks_before_capturing(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = await authorized(provider, fake)
    fake.fail_next("lost", CAPTURE)
    with pytest.raises(RetryableProviderError):
        await capture(provider, data, "40", "capt_1")
    fake.expire_request_ids()
    result = await capture(provider, data, "40", "capt_1", resumed=True)
    assert len(fake.captures) == 1 and result.data["captured_amount"] == "40.00"


@pytest.mark.parametrize("kind", ["server_error", "slow"])
async def test_a_5xx_or_a_timeout_leaves_the_outcome_unknown(fake: FakePayPal, kind: str) -> None:
    provider = PayPalProvider(paypal_options(fake.url, timeout=0.5))
    data = await authorized(provider, fake)
    fake.fail_next(kind, CAPTURE, delay=2)
    with pytest.raises(RetryableProviderError):
        await capture(provider, data, "40", "capt_1")
    result = await capture(provider, data, "40", "capt_1")
    assert len(fake.captures) == 1 and result.remaining_capturable == Decimal(60)
    await provider.close()


async def test_capturing_a_voided_authorization_is_refused(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = await authorized(provider, fake)
    fake.void_outside(data["authorization_id"])
    with pytest.raises(ProviderError) as caught:
        await capture(provider, data, "10", "capt_1")
    assert caught.value.code == "authorization_voided"


# -- refund -----------------------------------------------------------------------------------------
async def test_a_refund_carries_paymods_refund_id_and_answers_paypals(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = (await capture(provider, await authorized(provider, fake), "100", "capt_1")).data
    result = await refund(provider, data, "25", "ref_1", note="damaged")
    paypal_refund = fake.refunds[result.refund_id]
    assert paypal_refund["amount"]["value"] == "25.00"
    assert (paypal_refund["custom_id"], paypal_refund["note_to_payer"]) == ("ref_1", "damaged")
    again = await refund(provider, data, "25", "ref_1")
    assert again.refund_id == result.refund_id and len(fake.refunds) == 1


async def test_a_refund_larger_than_a_capture_is_spread_over_captures(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = await authorized(provider, fake)
    data = (await capture(provider, data, "30", "capt_1")).data
    data = (await capture(provider, data, "70", "capt_2")).data
    await refund(provider, data, "20", "ref_1")
    result = await refund(provider, data, "40", "ref_2")
    by_capture = [(r["_capture_id"], r["amount"]["value"], r["custom_id"]) for r in fake.refunds.values()]
    first, second = (c["id"] for c in data["captures"])
    assert by_capture == [(first, "20.00", "ref_1"), (first, "10.00", "ref_2"), (second, "30.00", "ref_2")]
    assert result.refund_id == list(fake.refunds)[1]
    ids = [r.request_id for r in fake.requests if r.method == "POST" and "refund" in r.path]
    assert ids == ["ref_1", "ref_2", f"ref_2:{second}"]


async def test_a_refund_beyond_what_paypal_holds_is_refused_before_any_refund(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = (await capture(provider, await authorized(provider, fake), "50", "capt_1")).data
    fake.refund_outside(data["captures"][0]["id"], Decimal(40))
    with pytest.raises(ProviderError) as caught:
        await refund(provider, data, "20", "ref_1")
    assert caught.value.code == "refund_amount_exceeded"
    assert fake.effects("POST", REFUND) == 0


# -- cancel, update, retrieve, delete ---------------------------------------------------------------
async def test_cancel_voids_the_authorization_once(provider: PayPalProvider, fake: FakePayPal) -> None:
    data = await authorized(provider, fake)
    out = await provider.cancel_payment(ProviderInput(data=data, context=ctx("pay_1")))
    assert out.data is not None and out.data["authorization_status"] == "VOIDED"
    assert fake.authorizations[data["authorization_id"]]["status"] == "VOIDED"
    fake.expire_request_ids()
    again = await provider.cancel_payment(ProviderInput(data=data, context=ctx("pay_1")))
    assert again.data is not None and again.data["authorization_status"] == "VOIDED"
    status = await provider.get_payment_status(ProviderInput(data=data))
    assert status.status == S.CANCELED


async def test_canceling_an_order_never_authorized_calls_nobody(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = await initiate(provider)
    calls = len(fake.requests)
    out = await provider.cancel_payment(ProviderInput(data=data, context=ctx("pay_1")))
    assert out.data == data and len(fake.requests) == calls
    deleted = await provider.delete_payment(ProviderInput(data=data))
    assert deleted.data == data and len(fake.requests) == calls


async def test_update_replaces_the_orders_amount_until_it_is_completed(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = await initiate(provider)
    out = await provider.update_payment(
        UpdatePaymentInput(data=data, amount=Decimal("120.4"), currency_code="usd")
    )
    assert out.data is not None and out.data["amount"] == "120.40"
    assert fake.order(data["id"])["purchase_units"][0]["amount"]["value"] == "120.40"
    assert out.status == S.REQUIRES_MORE
    fake.approve(data["id"])
    done = await provider.authorize_payment(ProviderInput(data=out.data, context=ctx("payses_1")))
    assert done.data is not None and done.data["authorized_amount"] == "120.40"
    with pytest.raises(ProviderError) as caught:
        await provider.update_payment(
            UpdatePaymentInput(data=done.data, amount=Decimal(90), currency_code="usd")
        )
    assert caught.value.code == "order_already_completed"


async def test_retrieve_and_status_read_the_order(provider: PayPalProvider, fake: FakePayPal) -> None:
    data = await authorized(provider, fake)
    retrieved = await provider.retrieve_payment(ProviderInput(data=data))
    assert retrieved.data is not None and retrieved.data["id"] == data["id"]
    assert retrieved.data["purchase_units"][0]["payments"]["authorizations"][0]["status"] == "CREATED"
    status = await provider.get_payment_status(ProviderInput(data=data))
    assert status.status == S.AUTHORIZED
    with pytest.raises(ProviderError) as caught:
        await provider.get_payment_status(ProviderInput(data={"id": "NOSUCHORDER"}))
    assert caught.value.code == "invalid_resource_id"


# -- webhooks ---------------------------------------------------------------------------------------
def payload(fake: FakePayPal, event_type: str, resource: dict[str, Any]) -> WebhookPayload:
    raw, headers = fake.sign(fake.event(event_type, resource))
    return WebhookPayload(data={}, raw_data=raw, headers=headers)


async def test_verified_events_map_onto_actions_for_the_session(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = await initiate(provider)
    approved = await provider.get_webhook_action_and_data(
        payload(fake, "CHECKOUT.ORDER.APPROVED", fake.approve(data["id"]))
    )
    assert (approved.action, approved.session_id) == (PaymentAction.AUTHORIZED, "payses_1")
    assert approved.event_id is not None and approved.event_id.startswith("WH-")
    data = (await provider.authorize_payment(ProviderInput(data=data, context=ctx("payses_1")))).data or {}
    authorization = fake.authorizations[data["authorization_id"]]
    created = await provider.get_webhook_action_and_data(
        payload(fake, "PAYMENT.AUTHORIZATION.CREATED", authorization)
    )
    assert (created.action, created.amount) == (PaymentAction.AUTHORIZED, Decimal(100))
    data = (await capture(provider, data, "30", "capt_1")).data
    data = (await capture(provider, data, "20", "capt_2")).data
    second = fake.captures[data["captures"][1]["id"]]
    completed = await provider.get_webhook_action_and_data(payload(fake, "PAYMENT.CAPTURE.COMPLETED", second))
    # One capture's event books the order's captured total.
    assert (completed.action, completed.amount) == (PaymentAction.SUCCESSFUL, Decimal(50))
    assert completed.remaining_capturable is None
    voided = await provider.get_webhook_action_and_data(
        payload(fake, "PAYMENT.AUTHORIZATION.VOIDED", fake.void_outside(data["authorization_id"]))
    )
    assert (voided.action, voided.session_id) == (PaymentAction.CANCELED, "payses_1")


async def test_refund_events_name_the_refund_and_paymods_id(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = (await capture(provider, await authorized(provider, fake), "100", "capt_1")).data
    ours = await refund(provider, data, "10", "ref_1")
    outside = fake.refund_outside(data["captures"][0]["id"], Decimal(5))
    for refund_id, expected in ((ours.refund_id, "ref_1"), (outside["id"], None)):
        result = await provider.get_webhook_action_and_data(
            payload(fake, "PAYMENT.CAPTURE.REFUNDED", fake.refunds[refund_id])
        )
        assert result.action == PaymentAction.REFUNDED and result.session_id == "payses_1"
        assert [(r.id, r.paymod_refund_id) for r in result.refunds] == [(refund_id, expected)]
    assert result.refunds[0].amount == Decimal(5)


async def test_an_event_that_does_not_verify_is_refused(provider: PayPalProvider, fake: FakePayPal) -> None:
    data = await initiate(provider)
    good = payload(fake, "CHECKOUT.ORDER.APPROVED", fake.order(data["id"]))
    tampered = WebhookPayload(
        data={}, raw_data=good.raw_data.replace(b"100.00", b"1.00"), headers=good.headers
    )
    # The same event in other bytes: PayPal's signature covers the bytes it sent, not their meaning.
    reserialized = WebhookPayload(
        data={}, raw_data=json.dumps(json.loads(good.raw_data), indent=1).encode(), headers=good.headers
    )
    for bad in (
        tampered,
        reserialized,
        WebhookPayload(
            data={}, raw_data=good.raw_data, headers={**good.headers, "PAYPAL-TRANSMISSION-SIG": "x"}
        ),
        WebhookPayload(data={}, raw_data=good.raw_data, headers={}),
        WebhookPayload(data={}, raw_data=b"not json", headers=good.headers),
    ):
        with pytest.raises(ProviderError) as caught:
            await provider.get_webhook_action_and_data(bad)
        assert caught.value.code == "invalid_signature"
    other = PayPalProvider({**paypal_options(fake.url), "webhook_id": "WH-SOMEONE-ELSE"})
    with pytest.raises(ProviderError):
        await other.get_webhook_action_and_data(good)
    await other.close()
    assert (await provider.get_webhook_action_and_data(good)).action == PaymentAction.AUTHORIZED


async def test_events_paymod_does_not_handle_or_did_not_cause_are_not_supported(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = await initiate(provider)
    other = await provider.get_webhook_action_and_data(
        payload(fake, "CUSTOMER.DISPUTE.CREATED", {"dispute_id": "PP-D-1"})
    )
    assert other.action == PaymentAction.NOT_SUPPORTED and other.event_id is not None
    order = fake.order(data["id"])
    order["purchase_units"][0]["custom_id"] = order["purchase_units"][0]["reference_id"] = (
        "order-from-elsewhere"
    )
    foreign = await provider.get_webhook_action_and_data(payload(fake, "CHECKOUT.ORDER.APPROVED", order))
    assert foreign.action == PaymentAction.NOT_SUPPORTED


async def test_an_authorization_whose_answer_was_lost_is_read_not_made_again(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = await initiate(provider)
    fake.approve(data["id"])
    fake.fail_next("lost", AUTHORIZE)
    with pytest.raises(RetryableProviderError):
        await provider.authorize_payment(ProviderInput(data=data, context=ctx("payses_1")))
    fake.expire_request_ids()  # even past PayPal's retention of the request id
    out = await provider.authorize_payment(ProviderInput(data=data, context=ctx("payses_1", resumed=True)))
    assert out.status == S.AUTHORIZED and len(fake.authorizations) == 1


async def test_the_fake_answers_paypals_other_payment_endpoints(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    """What the provider does not call, through PayPal's SDK all the same: reauthorize, captures and
    refunds read back, an unknown id."""
    data = (await capture(provider, await authorized(provider, fake, amount="50"), "20", "capt_1")).data
    paid = await refund(provider, data, "5", "ref_1")
    sdk = provider.client
    capture_id = data["captures"][0]["id"]
    assert sdk.payments.get_captured_payment({"capture_id": capture_id}).body.status == "PARTIALLY_REFUNDED"
    assert sdk.payments.get_refund({"refund_id": paid.refund_id}).body.amount.value == "5.00"
    other = await authorized(provider, fake, session="payses_2", amount="30")
    renewed = sdk.payments.reauthorize_payment(
        {
            "authorization_id": other["authorization_id"],
            "body": {"amount": {"currency_code": "USD", "value": "25.00"}},
        }
    ).body
    assert (renewed.status, renewed.amount.value) == ("CREATED", "25.00")
    with pytest.raises(Exception) as caught:
        sdk.payments.get_authorized_payment({"authorization_id": "NOSUCH"})
    assert getattr(caught.value, "response_code", None) == 404


async def test_a_refund_retried_past_the_request_ids_retention_refunds_once(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    data = (await capture(provider, await authorized(provider, fake), "100", "capt_1")).data
    fake.fail_next("lost", REFUND)
    with pytest.raises(RetryableProviderError):
        await refund(provider, data, "30", "ref_1")
    fake.expire_request_ids()
    result = await refund(provider, data, "30", "ref_1")
    assert list(fake.refunds) == [result.refund_id] and fake.effects("POST", REFUND) == 1


async def test_orders_approved_or_declined_as_they_are_created(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    """The fake's switches for tests that cannot reach one order: approved at once, or refused hard."""
    fake.approve_new_orders = True
    data = await initiate(provider)
    out = await provider.authorize_payment(ProviderInput(data=data, context=ctx("payses_1")))
    assert out.status == S.AUTHORIZED
    fake.decline_new_orders = "TRANSACTION_REFUSED"
    data = await initiate(provider, session="payses_2")
    out = await provider.authorize_payment(ProviderInput(data=data, context=ctx("payses_2")))
    assert (
        out.status == S.ERROR and out.data is not None and out.data["decline_issue"] == "TRANSACTION_REFUSED"
    )
