"""PayPal's rules without a server: amounts, options, status and event tables, error translation, the
verification request."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest

from paymod.domain.errors import InvalidDataError, ProviderError, RetryableProviderError
from paymod.domain.statuses import PaymentAction, PaymentSessionStatus
from paymod.providers.base import WebhookPayload
from paymod.providers.paypal import PayPalProvider
from paymod.providers.paypal.amounts import money, to_value
from paymod.providers.paypal.errors import PayPalFailure, translate
from paymod.providers.paypal.mapping import (
    EVENTS,
    event_action,
    order_status,
    refundable_captures,
    session_id,
)
from paymod.providers.paypal.options import PayPalOptions

S = PaymentSessionStatus
OPTIONS = {"client_id": "id", "client_secret": "s3cr3t-value"}


@pytest.mark.parametrize(
    ("amount", "currency", "value"),
    [
        ("10", "usd", "10.00"),
        ("10.5", "EUR", "10.50"),
        ("10.005", "usd", "10.01"),  # half up, once
        ("0.01", "gbp", "0.01"),
        ("500", "jpy", "500"),
        ("1500", "HUF", "1500"),
        ("1500.00", "twd", "1500"),
    ],
)
def test_amounts_are_paypal_decimal_strings_in_the_currency_precision(
    amount: str, currency: str, value: str
) -> None:
    assert to_value(Decimal(amount), currency) == value


@pytest.mark.parametrize(("amount", "currency"), [("500.5", "JPY"), ("100.50", "HUF"), ("0.01", "TWD")])
def test_fractions_of_currencies_without_decimals_at_paypal_are_refused(amount: str, currency: str) -> None:
    with pytest.raises(InvalidDataError) as caught:
        to_value(Decimal(amount), currency)
    assert caught.value.code == "invalid_amount"


def test_a_currency_paypal_does_not_take_is_refused() -> None:
    with pytest.raises(InvalidDataError) as caught:
        money(Decimal(10), "kwd")
    assert caught.value.code == "invalid_currency"


def test_options_are_validated_and_the_secret_never_prints() -> None:
    options = PayPalOptions.parse({**OPTIONS, "intent": "capture", "environment": "LIVE", "timeout": "7"})
    assert (options.intent, options.environment, options.timeout) == ("CAPTURE", "live", 7.0)
    assert "s3cr3t-value" not in repr(options) and "s3cr3t-value" not in str(options)
    assert PayPalProvider({**OPTIONS, "environment": "live"}).base_url == "https://api-m.paypal.com"
    assert PayPalProvider(OPTIONS).base_url == "https://api-m.sandbox.paypal.com"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"client_id": "id"}, "client_secret"),
        ({**OPTIONS, "intent": "sale"}, "intent"),
        ({**OPTIONS, "environment": "prod"}, "environment"),
        ({**OPTIONS, "api_base": "ftp://x"}, "api_base"),
        ({**OPTIONS, "webhook_secret": "x"}, "Unknown PayPal option `webhook_secret`"),
        ({**OPTIONS, "timeout": 0}, "timeout"),
    ],
)
def test_wrong_options_are_refused_naming_the_option(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PayPalProvider.validate_options(options)


def _order(status: str, **payments: Any) -> dict[str, Any]:
    return {"status": status, "purchase_units": [{"custom_id": "payses_1", "payments": payments}]}


@pytest.mark.parametrize(
    ("order", "status"),
    [
        (_order("CREATED"), S.REQUIRES_MORE),
        (_order("PAYER_ACTION_REQUIRED"), S.REQUIRES_MORE),
        (_order("APPROVED"), S.PENDING),
        (_order("VOIDED"), S.CANCELED),
        (_order("COMPLETED", authorizations=[{"status": "CREATED"}]), S.AUTHORIZED),
        (_order("COMPLETED", authorizations=[{"status": "PARTIALLY_CAPTURED"}]), S.AUTHORIZED),
        (_order("COMPLETED", authorizations=[{"status": "CAPTURED"}]), S.CAPTURED),
        (_order("COMPLETED", authorizations=[{"status": "VOIDED"}]), S.CANCELED),
        (_order("COMPLETED", authorizations=[{"status": "DENIED"}]), S.ERROR),
        (_order("COMPLETED", authorizations=[{"status": "PENDING"}]), S.PENDING),
        (_order("COMPLETED", captures=[{"status": "COMPLETED"}]), S.CAPTURED),
        (_order("COMPLETED", captures=[{"status": "DECLINED"}]), S.ERROR),
        (_order("COMPLETED", captures=[{"status": "PENDING"}]), S.PENDING),
    ],
)
def test_order_statuses_map_onto_session_statuses(order: dict[str, Any], status: S) -> None:
    assert order_status(order) == status


def test_every_event_paymod_subscribes_to_has_its_action() -> None:
    assert event_action("CHECKOUT.ORDER.APPROVED") == PaymentAction.AUTHORIZED
    assert event_action("PAYMENT.AUTHORIZATION.CREATED") == PaymentAction.AUTHORIZED
    assert event_action("PAYMENT.AUTHORIZATION.VOIDED") == PaymentAction.CANCELED
    assert event_action("PAYMENT.CAPTURE.COMPLETED") == PaymentAction.SUCCESSFUL
    assert event_action("PAYMENT.CAPTURE.PENDING") == PaymentAction.PENDING
    assert event_action("PAYMENT.CAPTURE.DENIED") == PaymentAction.FAILED
    assert event_action("PAYMENT.CAPTURE.DECLINED") == PaymentAction.FAILED
    assert event_action("PAYMENT.CAPTURE.REFUNDED") == PaymentAction.REFUNDED
    assert event_action("PAYMENT.CAPTURE.REVERSED") == PaymentAction.REFUNDED
    for name in ("CREATED", "UPDATED", "RESOLVED"):
        assert event_action(f"CUSTOMER.DISPUTE.{name}") == PaymentAction.DISPUTED
    assert event_action("BILLING.SUBSCRIPTION.CREATED") == PaymentAction.NOT_SUPPORTED
    assert len(EVENTS) == 12


def test_the_session_is_found_by_the_purchase_units_custom_id_or_reference_id() -> None:
    assert session_id({"purchase_units": [{"reference_id": "payses_9", "custom_id": "x"}]}) == "payses_9"
    assert session_id({"custom_id": "payses_2"}) == "payses_2"
    assert session_id({"custom_id": "order-17"}) is None


def test_refundable_money_is_counted_per_capture_from_the_refunds_links() -> None:
    order = _order(
        "COMPLETED",
        captures=[
            {"id": "C1", "status": "PARTIALLY_REFUNDED", "amount": {"value": "30.00"}},
            {"id": "C2", "status": "REFUNDED", "amount": {"value": "20.00"}},
            {"id": "C3", "status": "COMPLETED", "amount": {"value": "50.00"}},
        ],
        refunds=[
            {"status": "COMPLETED", "amount": {"value": "10.00"}, "links": [{"rel": "up", "href": "x/C1"}]},
            {"status": "COMPLETED", "amount": {"value": "20.00"}, "links": [{"rel": "up", "href": "x/C2"}]},
            {"status": "FAILED", "amount": {"value": "5.00"}, "links": [{"rel": "up", "href": "x/C3"}]},
        ],
    )
    assert refundable_captures(order) == [("C1", Decimal(20)), ("C3", Decimal(50))]


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (422, {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "AUTHORIZATION_VOIDED"}]}, ProviderError,
         "authorization_voided"),
        (404, {"name": "RESOURCE_NOT_FOUND", "details": [{"issue": "INVALID_RESOURCE_ID"}]}, ProviderError,
         "invalid_resource_id"),
        (400, {"name": "INVALID_REQUEST"}, ProviderError, "invalid_request"),
        (401, {"error": "invalid_client"}, ProviderError, "authentication_error"),
        (500, {"name": "INTERNAL_SERVER_ERROR"}, RetryableProviderError, "internal_server_error"),
        (503, {}, RetryableProviderError, "paypal_unavailable"),
        (429, {"name": "RATE_LIMIT_REACHED"}, RetryableProviderError, "rate_limit_reached"),
        (409, {"details": [{"issue": "PREVIOUS_REQUEST_IN_PROGRESS"}]}, RetryableProviderError,
         "previous_request_in_progress"),
    ],
)  # fmt: skip
def test_paypal_errors_become_paymods(status: int, body: dict[str, Any], kind: type, code: str) -> None:
    error = translate(PayPalFailure.parse(status, json.dumps(body)))
    assert type(error) is kind
    assert error.code == code


async def test_the_verification_request_carries_the_event_byte_for_byte() -> None:
    provider = PayPalProvider({**OPTIONS, "webhook_id": "WH-1"})
    raw = b'{"id":"WH-9","resource":{"amount":{"value":"10.10"}},  "event_type":"X"}'
    headers = {
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        "PAYPAL-CERT-URL": "https://api-m.paypal.com/cert",
        "PAYPAL-TRANSMISSION-ID": "t-1",
        "PAYPAL-TRANSMISSION-SIG": "sig",
        "PAYPAL-TRANSMISSION-TIME": "2026-01-01T00:00:00Z",
    }
    body = provider._verification_body(WebhookPayload(data={}, raw_data=raw, headers=headers))
    assert body.endswith(b'"webhook_event":' + raw + b"}")
    assert json.loads(body)["webhook_id"] == "WH-1"
    with pytest.raises(ProviderError) as caught:
        provider._verification_body(WebhookPayload(data={}, raw_data=raw, headers={}))
    assert caught.value.code == "invalid_signature"
    await provider.close()


def test_without_the_sdk_the_provider_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['paypalserversdk'] = None\n"  # as if paypal-server-sdk were not installed
        "from paymod.providers.registry import ProviderRegistry\n"
        "try:\n"
        "    ProviderRegistry([{'resolve': 'paymod.providers.paypal', 'options': {}}])\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.startswith("InvalidDataError")
    assert "pip install 'paymod[paypal]'" in done.stdout
