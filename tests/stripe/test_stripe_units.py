"""Stripe provider without the network: amounts, mapping tables, signatures, options, parameters."""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import time
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any

import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from paymod.domain.errors import InvalidDataError, ProviderError, RetryableProviderError
from paymod.domain.statuses import PaymentAction, PaymentSessionStatus
from paymod.providers.base import InitiatePaymentInput, ProviderContext, WebhookPayload
from paymod.providers.registry import load_providers
from paymod.providers.stripe import (
    StripeOptions,
    StripeProvider,
    from_smallest_unit,
    services,
    to_smallest_unit,
)
from paymod.providers.stripe.errors import backoff, translate
from paymod.providers.stripe.mapping import EVENT_TYPES, session_status, webhook_action

SECRET = "whsec_unit_secret"
S = PaymentSessionStatus
A = PaymentAction


# -- amounts --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "currency", "units"),
    [
        ("10", "usd", 1000),
        ("10.01", "USD", 1001),
        ("10.005", "usd", 1001),  # half up
        ("10.0049", "usd", 1000),
        ("0.015", "eur", 2),
        ("1000", "jpy", 1000),
        ("1000.5", "jpy", 1001),  # JPY has no minor unit: rounds to yen
        ("1000.49", "jpy", 1000),
        ("999", "krw", 999),
        ("1.23", "kwd", 1230),  # three decimals, the last one 0 (1.234 is refused, see below)
        ("12.5", "bhd", 12500),
        ("5", "ugx", 500),  # Stripe's special case: two decimals, always 00
        ("5", "isk", 500),
        ("10.45", "huf", 1045),  # HUF and TWD are zero-decimal for payouts only
        ("800.45", "twd", 80045),
        ("0", "usd", 0),
        ("0.1", "mga", 0),  # Stripe treats MGA as zero-decimal, ISO does not
    ],
)
def test_to_smallest_unit(amount: str, currency: str, units: int) -> None:
    assert to_smallest_unit(Decimal(amount), currency) == units


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("1.234", "kwd"),
        ("1.2345", "kwd"),
        ("0.005", "bhd"),
        ("12.001", "tnd"),
        ("5.5", "isk"),
        ("5.01", "ugx"),
    ],
)
def test_amounts_stripe_cannot_represent_are_invalid_data(amount: str, currency: str) -> None:
    """docs.stripe.com/currencies: three-decimal amounts need a last digit of 0; ISK and UGX cannot be
    charged in fractions. Refused, not rounded."""
    with pytest.raises(InvalidDataError) as caught:
        to_smallest_unit(Decimal(amount), currency)
    assert caught.value.code == "invalid_amount"
    assert currency.upper() in caught.value.message


@pytest.mark.parametrize(
    ("units", "currency", "amount"),
    [
        (500, "ugx", "5"),
        (500, "isk", "5"),
        (1001, "usd", "10.01"),
        (1000, "jpy", "1000"),
        (1230, "kwd", "1.23"),
        ("2500", "eur", "25"),
        (1, "usd", "0.01"),
    ],
)
def test_from_smallest_unit_is_exact(units: Any, currency: str, amount: str) -> None:
    result = from_smallest_unit(units, currency)
    assert isinstance(result, Decimal)
    assert result == Decimal(amount)


@pytest.mark.parametrize("bad", [Decimal("-1"), Decimal("NaN"), Decimal("Infinity"), 10.5, 10])
def test_to_smallest_unit_refuses_what_is_not_a_non_negative_decimal(bad: Any) -> None:
    with pytest.raises(ValueError):
        to_smallest_unit(bad, "usd")


@pytest.mark.parametrize("bad", [10.5, True, "1.5", None])
def test_from_smallest_unit_refuses_non_integers(bad: Any) -> None:
    with pytest.raises(ValueError):
        from_smallest_unit(bad, "usd")


@given(
    units=st.integers(min_value=0, max_value=10**12),
    currency=st.sampled_from(["usd", "eur", "jpy", "krw", "kwd", "bhd", "gbp", "xof", "ugx", "isk", "huf"]),
)
def test_round_trip_of_stripe_amounts(units: int, currency: str) -> None:
    if currency in ("kwd", "bhd"):
        units -= units % 10
    if currency in ("ugx", "isk"):
        units -= units % 100
    assert to_smallest_unit(from_smallest_unit(units, currency), currency) == units


# -- status mapping -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("intent", "status"),
    [
        ({"status": "requires_payment_method"}, S.PENDING),
        ({"status": "requires_payment_method", "last_payment_error": {"code": "card_declined"}}, S.ERROR),
        ({"status": "requires_confirmation"}, S.PENDING),
        ({"status": "processing", "payment_method": {"type": "card"}}, S.PENDING),
        ({"status": "processing", "payment_method": {"type": "sepa_debit"}}, S.PENDING_AUTHORIZATION),
        ({"status": "processing", "payment_method": "pm_123"}, S.PENDING),
        ({"status": "requires_action"}, S.REQUIRES_MORE),
        ({"status": "canceled"}, S.CANCELED),
        ({"status": "requires_capture"}, S.AUTHORIZED),
        ({"status": "succeeded"}, S.CAPTURED),
        ({"status": "something_new"}, S.PENDING),
        ({}, S.PENDING),
    ],
)
def test_session_status_table(intent: dict[str, Any], status: PaymentSessionStatus) -> None:
    assert session_status(intent, {"sepa_debit"}) == status


INTENT = {
    "id": "pi_1",
    "object": "payment_intent",
    "amount": 1000,
    "amount_capturable": 700,
    "amount_received": 600,
    "currency": "usd",
    "metadata": {"session_id": "payses_1"},
    "next_action": {"display_bank_transfer_instructions": {"amount_remaining": 400}},
}


@pytest.mark.parametrize(
    ("event_type", "is_async", "action", "units"),
    [
        ("payment_intent.created", False, A.PENDING, 1000),
        ("payment_intent.created", True, A.PENDING_AUTHORIZATION, 1000),
        ("payment_intent.processing", False, A.PENDING, 1000),
        ("payment_intent.processing", True, A.PENDING_AUTHORIZATION, 1000),
        ("payment_intent.canceled", False, A.CANCELED, 1000),
        ("payment_intent.payment_failed", False, A.FAILED, 1000),
        ("payment_intent.requires_action", False, A.REQUIRES_MORE, 1000),
        ("payment_intent.amount_capturable_updated", False, A.AUTHORIZED, 700),
        ("payment_intent.partially_funded", False, A.REQUIRES_MORE, 400),
        ("payment_intent.succeeded", False, A.SUCCESSFUL, 600),
        ("payment_intent.updated", False, A.NOT_SUPPORTED, None),
        ("charge.refunded", False, A.NOT_SUPPORTED, None),
    ],
)
def test_webhook_action_table(
    event_type: str, is_async: bool, action: PaymentAction, units: int | None
) -> None:
    assert webhook_action(event_type, INTENT, payment_method_is_async=is_async) == (action, units)


def test_webhook_mapping_covers_every_event_of_the_reference_table() -> None:
    assert {
        "payment_intent.created",
        "payment_intent.processing",
        "payment_intent.canceled",
        "payment_intent.payment_failed",
        "payment_intent.requires_action",
        "payment_intent.amount_capturable_updated",
        "payment_intent.partially_funded",
        "payment_intent.succeeded",
    } == EVENT_TYPES


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_intents_without_a_session_id_are_not_supported(event_type: str) -> None:
    foreign = {**INTENT, "metadata": {}}
    assert webhook_action(event_type, foreign) == (A.NOT_SUPPORTED, None)
    assert webhook_action(event_type, {**INTENT, "metadata": None}) == (A.NOT_SUPPORTED, None)
    assert webhook_action(event_type, {**INTENT, "object": "customer"}) == (A.NOT_SUPPORTED, None)


def test_partially_funded_without_bank_instructions_uses_the_amount() -> None:
    intent = {**INTENT, "next_action": None}
    assert webhook_action("payment_intent.partially_funded", intent) == (A.REQUIRES_MORE, 1000)


def test_missing_amount_fields_fall_back_to_the_intent_amount() -> None:
    intent = {k: v for k, v in INTENT.items() if k not in ("amount_received", "amount_capturable")}
    assert webhook_action("payment_intent.succeeded", intent) == (A.SUCCESSFUL, 1000)
    assert webhook_action("payment_intent.amount_capturable_updated", intent) == (A.AUTHORIZED, 1000)


# -- webhook signatures ---------------------------------------------------------------------
def _provider(**options: Any) -> StripeProvider:
    return StripeProvider({"api_key": "sk_test_unit", "webhook_secret": SECRET, **options})


def _event(event_type: str = "payment_intent.succeeded", **intent: Any) -> bytes:
    obj = {**INTENT, "currency": "jpy", "amount_received": 1500, **intent}
    event = {"id": "evt_unit_1", "object": "event", "type": event_type, "data": {"object": obj}}
    return json.dumps(event).encode()


def _sign(raw: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    """Stripe's documented scheme: t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<raw body>"))."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def test_our_signing_helper_matches_the_sdk() -> None:
    raw = _event()
    assert _sign(raw, timestamp=1_700_000_000) == stripe.WebhookSignature.generate_signature_header(
        raw.decode(), SECRET, timestamp=1_700_000_000
    )


async def test_a_validly_signed_event_maps_to_its_action() -> None:
    raw = _event()
    result = await _provider().get_webhook_action_and_data(
        WebhookPayload(data=json.loads(raw), raw_data=raw, headers={"Stripe-Signature": _sign(raw)})
    )
    assert result.action == A.SUCCESSFUL
    assert result.session_id == "payses_1"
    assert result.amount == Decimal(1500)  # JPY: no division
    assert result.event_id == "evt_unit_1"
    assert result.data == {"event_type": "payment_intent.succeeded", "object_id": "pi_1"}


async def test_header_names_are_case_insensitive_and_rotation_signatures_are_accepted() -> None:
    raw = _event()
    t = int(time.time())
    old = _sign(raw, secret="whsec_old", timestamp=t).split(",")[1]
    header = f"{_sign(raw, timestamp=t)},{old}"
    result = await _provider().get_webhook_action_and_data(
        WebhookPayload(data={}, raw_data=raw, headers={"stripe-signature": header})
    )
    assert result.action == A.SUCCESSFUL


@pytest.mark.parametrize(
    "case",
    [
        "tampered",
        "stale",
        "wrong_secret",
        "missing_header",
        "v0_only",
        "garbage_header",
        "no_secret_configured",
    ],
)
async def test_bad_signatures_are_refused(case: str) -> None:
    raw = _event()
    provider = _provider()
    header = _sign(raw)
    if case == "tampered":
        raw = raw.replace(b'"amount_received": 1500', b'"amount_received": 9500')
    elif case == "stale":
        header = _sign(raw, timestamp=int(time.time()) - 301)
    elif case == "wrong_secret":
        header = _sign(raw, secret="whsec_someone_else")
    elif case == "v0_only":
        header = header.replace("v1=", "v0=")
    elif case == "garbage_header":
        header = "not a signature"
    elif case == "no_secret_configured":
        provider = StripeProvider({"api_key": "sk_test_unit"})
    headers = {} if case == "missing_header" else {"Stripe-Signature": header}
    with pytest.raises(ProviderError) as caught:
        await provider.get_webhook_action_and_data(WebhookPayload(data={}, raw_data=raw, headers=headers))
    assert caught.value.code == "invalid_signature"
    if case != "no_secret_configured":
        assert isinstance(caught.value.__cause__, stripe.SignatureVerificationError)


async def test_a_signature_just_inside_the_tolerance_is_accepted() -> None:
    raw = _event()
    header = _sign(raw, timestamp=int(time.time()) - 290)
    result = await _provider().get_webhook_action_and_data(
        WebhookPayload(data={}, raw_data=raw, headers={"Stripe-Signature": header})
    )
    assert result.action == A.SUCCESSFUL


async def test_signed_events_about_foreign_intents_or_other_objects_are_not_supported() -> None:
    for raw in (
        _event(metadata={}),
        _event("customer.created", object="customer", id="cus_1", metadata={}),
        _event("payment_intent.updated"),
    ):
        result = await _provider().get_webhook_action_and_data(
            WebhookPayload(data={}, raw_data=raw, headers={"Stripe-Signature": _sign(raw)})
        )
        assert result.action == A.NOT_SUPPORTED
        assert result.session_id is None
        assert result.event_id == "evt_unit_1"


async def test_a_signed_body_that_is_not_json_is_refused() -> None:
    raw = b"not json"
    with pytest.raises(ProviderError) as caught:
        await _provider().get_webhook_action_and_data(
            WebhookPayload(data={}, raw_data=raw, headers={"Stripe-Signature": _sign(raw)})
        )
    assert caught.value.code == "invalid_webhook"


# -- options and registration ---------------------------------------------------------------
def test_a_missing_api_key_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Required option `api_key` is missing"):
        StripeProvider.validate_options({"webhook_secret": SECRET})


def test_the_registry_reports_a_missing_api_key_as_invalid_data() -> None:
    with pytest.raises(InvalidDataError, match="api_key"):
        load_providers([{"resolve": "paymod.providers.stripe", "id": "stripe", "options": {}}])


def test_options_set_through_the_environment_arrive_as_strings() -> None:
    options = StripeOptions.parse(
        {
            "api_key": "sk_test_env",
            "capture": "true",
            "multicapture": "0",
            "max_network_retries": "3",
            "timeout": "12.5",
            "async_payment_method_types": "sepa_debit, us_bank_account",
        }
    )
    assert (options.capture, options.multicapture, options.max_network_retries) == (True, False, 3)
    assert options.timeout == 12.5
    assert options.async_payment_method_types == {"sepa_debit", "us_bank_account"}
    assert "sk_test_env" not in repr(options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"apiKey": "sk_test_x"}, "Unknown Stripe option"),
        ({"api_key": 12}, "must be a string"),
        ({"api_key": "sk_test_x", "capture": "yes"}, "true or false"),
        ({"api_key": "sk_test_x", "max_network_retries": -1}, "integer >= 0"),
        ({"api_key": "sk_test_x", "async_payment_method_types": [1]}, "list of strings"),
        ({"api_key": "sk_test_x", "capture": "maybe"}, "true or false"),
        ({"api_key": "sk_test_x", "api_base": "localhost:12111"}, "http"),
        ({"api_key": "sk_test_x", "http_client": object()}, "stripe.HTTPClient"),
        ({"api_key": "sk_test_x", "timeout": 0}, "timeout"),
    ],
)
def test_wrong_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StripeOptions.parse(options)


EXPECTED_IDS = [
    "pp_stripe_stripe",
    "pp_stripe-bancontact_stripe",
    "pp_stripe-blik_stripe",
    "pp_stripe-ideal_stripe",
    "pp_stripe-przelewy24_stripe",
    "pp_stripe-promptpay_stripe",
    "pp_stripe-oxxo_stripe",
]


@pytest.mark.parametrize("resolve", ["paymod.providers.stripe", "stripe"])
async def test_one_config_registers_stripe_and_its_variants(resolve: str) -> None:
    registry = load_providers([{"resolve": resolve, "id": "stripe", "options": {"api_key": "sk_test_x"}}])
    assert [i for i in registry.ids if i != "pp_system_default"] == EXPECTED_IDS
    assert all(isinstance(p, StripeProvider) for i, p in registry if i != "pp_system_default")
    await registry.close()


def test_the_entry_point_names_the_package() -> None:
    (ep,) = [ep for ep in entry_points(group="paymod.providers") if ep.name == "stripe"]
    assert ep.value == "paymod.providers.stripe"
    assert ep.load().services == services


def test_the_sdk_is_imported_only_by_the_stripe_package() -> None:
    import paymod

    root = inspect.getfile(paymod).rsplit("/", 1)[0]
    from pathlib import Path

    offenders = [
        str(path)
        for path in Path(root).rglob("*.py")
        if "providers/stripe" not in str(path)
        and any(
            line.strip().startswith(("import stripe", "from stripe"))
            for line in path.read_text().splitlines()
        )
    ]
    assert offenders == []


# -- errors ---------------------------------------------------------------------------------
def _all_error_classes() -> list[type[stripe.StripeError]]:
    found: list[type[stripe.StripeError]] = []
    pending: list[type[stripe.StripeError]] = [stripe.StripeError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda c: c.__name__)
def test_every_stripe_error_class_is_translated(cls: type[stripe.StripeError]) -> None:
    exc = cls.__new__(cls)
    stripe.StripeError.__init__(
        exc, "Stripe says no", http_status=400, json_body={"error": {"message": "no"}}
    )
    if isinstance(exc, stripe.APIConnectionError):
        exc.should_retry = True
    translated = translate(exc)
    assert isinstance(translated, ProviderError)
    assert translated.message.endswith("Stripe says no")
    retryable = isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError)
    assert isinstance(translated, RetryableProviderError) == retryable


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (409, True), (404, False)])
def test_api_errors_are_retryable_when_the_outcome_is_unknown(status: int, retryable: bool) -> None:
    exc = stripe.APIError("boom", http_status=status)
    assert isinstance(translate(exc), RetryableProviderError) == retryable


def test_backoff_grows_and_is_capped() -> None:
    for attempt, (low, high) in {
        1: (0.5, 0.5),
        2: (0.5, 1.0),
        3: (1.0, 2.0),
        4: (2.0, 4.0),
        9: (2.5, 5.0),
    }.items():
        assert low <= backoff(attempt) <= high


# -- PaymentIntent parameters (Medusa's normalization and paymod's additions) ----------------
def _params(provider: StripeProvider, data: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
    return provider.intent_params(
        InitiatePaymentInput(
            data={"session_id": "payses_1", **(data or {})},
            context=ProviderContext(idempotency_key="payses_1", **context),
            amount=Decimal("12.34"),
            currency_code="EUR",
        )
    )


def test_default_intent_parameters() -> None:
    params = _params(_provider())
    assert params == {
        "amount": 1234,
        "currency": "eur",
        "metadata": {"session_id": "payses_1"},
        "capture_method": "manual",
        "expand": ["payment_method"],
    }


def test_capture_option_and_data_override_the_capture_method() -> None:
    assert _params(_provider(capture=True))["capture_method"] == "automatic"
    assert _params(_provider(capture=True), {"capture_method": "manual"})["capture_method"] == "manual"


def test_saved_method_off_session_and_customer_from_the_account_holder() -> None:
    holder = {"id": "acchld_1", "external_id": "cus_9", "data": {"id": "cus_9"}}
    params = _params(
        _provider(),
        {"payment_method": "pm_1", "off_session": True, "confirm": True, "metadata": {"order": "o1"}},
        account_holder=holder,
    )
    assert params["customer"] == "cus_9"
    assert (params["payment_method"], params["off_session"], params["confirm"]) == ("pm_1", True, True)
    assert params["metadata"] == {"order": "o1", "session_id": "payses_1"}


def test_description_from_data_or_option() -> None:
    assert _params(_provider(payment_description="Shop"))["description"] == "Shop"
    assert (
        _params(_provider(payment_description="Shop"), {"payment_description": "Order 7"})["description"]
        == "Order 7"
    )


@pytest.mark.parametrize(
    ("identifier", "types"),
    [
        ("stripe-bancontact", ["bancontact"]),
        ("stripe-blik", ["blik"]),
        ("stripe-ideal", ["ideal"]),
        ("stripe-przelewy24", ["p24"]),
        ("stripe-promptpay", ["promptpay"]),
        ("stripe-oxxo", ["oxxo"]),
    ],
)
def test_variants_force_their_method_and_automatic_capture(identifier: str, types: list[str]) -> None:
    (cls,) = [c for c in services if c.identifier == identifier]
    params = _params(cls({"api_key": "sk_test_x", "automatic_payment_methods": True, "multicapture": True}))
    assert params["payment_method_types"] == types
    assert params["capture_method"] == "automatic"
    assert "automatic_payment_methods" not in params
    if identifier == "stripe-oxxo":
        assert params["payment_method_options"] == {"oxxo": {"expires_after_days": 3}}
    else:
        assert "payment_method_options" not in params


def test_oxxo_expiry_follows_the_option() -> None:
    (cls,) = [c for c in services if c.identifier == "stripe-oxxo"]
    params = _params(cls({"api_key": "sk_test_x", "oxxo_expires_days": 5}))
    assert params["payment_method_options"]["oxxo"]["expires_after_days"] == 5


def test_automatic_payment_methods_only_without_explicit_types() -> None:
    provider = _provider(automatic_payment_methods=True)
    assert _params(provider)["automatic_payment_methods"] == {"enabled": True}
    params = _params(provider, {"payment_method_types": ["card"]})
    assert params["payment_method_types"] == ["card"]
    assert "automatic_payment_methods" not in params


def test_payment_method_configuration_precedence() -> None:
    provider = _provider(payment_method_configuration="pmc_option")
    assert _params(provider)["payment_method_configuration"] == "pmc_option"
    assert (
        _params(provider, {"payment_method_configuration": "pmc_data"})["payment_method_configuration"]
        == "pmc_data"
    )
    assert "payment_method_configuration" not in _params(provider, {"payment_method_types": ["card"]})
    (ideal,) = [c for c in services if c.identifier == "stripe-ideal"]
    assert "payment_method_configuration" not in _params(
        ideal({"api_key": "sk_test_x", "payment_method_configuration": "pmc_option"})
    )
    assert "payment_method_configuration" not in _params(_provider())


def test_multicapture_is_requested_for_manual_card_intents_when_enabled() -> None:
    assert "payment_method_options" not in _params(_provider())
    on = _provider(multicapture=True)
    assert _params(on)["payment_method_options"] == {"card": {"request_multicapture": "if_available"}}
    assert "payment_method_options" not in _params(on, {"capture_method": "automatic"})
    assert "payment_method_options" not in _params(on, {"payment_method_types": ["sepa_debit"]})
    mine = _params(on, {"payment_method_options": {"card": {"request_multicapture": "never"}}})
    assert mine["payment_method_options"] == {"card": {"request_multicapture": "never"}}


def test_every_money_field_of_an_intent_in_major_units() -> None:
    """PaymentIntent money fields are in the smallest unit at Stripe (`amount`, `amount_capturable`,
    `amount_received`, `application_fee_amount`, `transfer_data.amount`, `amount_details.tip.amount`,
    `next_action.display_bank_transfer_instructions.amount_remaining`)."""
    from paymod.providers.stripe.provider import _in_major_units

    intent = {
        "currency": "ugx",
        "amount": 500_000,
        "amount_capturable": 0,
        "amount_received": 300_000,
        "application_fee_amount": 10_000,
        "transfer_data": {"destination": "acct_1", "amount": 200_000},
        "amount_details": {"tip": {"amount": 5_000}},
        "next_action": {"display_bank_transfer_instructions": {"amount_remaining": 200_000}},
        "status": "succeeded",
    }
    out = _in_major_units(intent)
    assert (out["amount"], out["amount_capturable"], out["amount_received"]) == (
        Decimal(5000),
        Decimal(0),
        Decimal(3000),
    )
    assert out["application_fee_amount"] == Decimal(100)
    assert out["transfer_data"]["amount"] == Decimal(2000)
    assert out["amount_details"]["tip"]["amount"] == Decimal(50)
    assert out["next_action"]["display_bank_transfer_instructions"]["amount_remaining"] == Decimal(2000)
