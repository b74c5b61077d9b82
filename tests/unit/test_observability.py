"""Request ids, redaction, the log format and the metric hooks, without I/O."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY

from paymod.domain.errors import ProviderError
from paymod.observability.context import current_request_id, request_id_bound, sane_request_id
from paymod.observability.logs import CARD_MASK, MASK, configure_logging, redact_text, redact_value
from paymod.observability.metrics import instrument_provider, money_flow
from paymod.providers.base import CapturePaymentInput, ProviderContext, ProviderOutput
from paymod.providers.testing import TestingPaymentProvider


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The process's logging, configured as `paymod serve` does (JSON lines), into a buffer."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("debug", json=True, stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    "value", ["abc-123", "req_01JDX0S6V8W5", "0af7651916cd43dd8448eb211c80319c", "a" * 128, "k8s/pod:1@x+y="]
)
def test_a_sane_request_id_is_kept(value: str) -> None:
    assert sane_request_id(value) == value


@pytest.mark.parametrize(
    "value", [None, "", "a" * 129, "has space", "line\nbreak", 'quo"te', "é", "-leading-dash", "{json}"]
)
def test_an_insane_request_id_is_refused(value: str | None) -> None:
    assert sane_request_id(value) is None


def test_a_bound_request_id_is_current_only_inside_the_block() -> None:
    with request_id_bound("outer"):
        with request_id_bound("inner"):
            assert current_request_id() == "inner"
        assert current_request_id() == "outer"
    assert current_request_id() is None


def test_credentials_and_card_numbers_are_masked_in_text() -> None:
    text = (
        "Authorization: Bearer sk_live_abcdef123456 and Basic c2tfdGVzdDo= key sk_test_zzzzzzzz "
        "secret whsec_0123456789abcdef card 4242 4242 4242 4242 and 5555-5555-5555-4444"
    )

    redacted = redact_text(text)

    for secret in ("sk_live_abcdef123456", "c2tfdGVzdDo=", "sk_test_zzzzzzzz", "whsec_0123456789abcdef"):
        assert secret not in redacted
    assert "4242 4242 4242 4242" not in redacted and "5555-5555-5555-4444" not in redacted
    assert redacted.count(CARD_MASK) == 2
    assert "Bearer [redacted]" in redacted


def test_numbers_that_are_not_card_numbers_are_kept() -> None:
    # Fails the Luhn check; an amount with decimals; an id made of letters and digits.
    text = "1234567890123456 amount 12345678901234.56789 id pay_01JDX0S6V8W5ZQ4242424242424242"
    assert redact_text(text) == text


def test_sensitive_names_are_masked_at_any_depth() -> None:
    value = {
        "headers": {"Authorization": "anything", "x-publishable-api-key": "pk_1", "stripe-signature": "t=1"},
        "data": {"payment_method_data": {"card": {"number": "4242424242424242", "cvc": "123"}}},
        "amount": 10,
        "webhook_secret": "plain",
    }

    redacted = redact_value(value)

    assert redacted["headers"] == {
        "Authorization": MASK,
        "x-publishable-api-key": MASK,
        "stripe-signature": MASK,
    }
    assert redacted["data"]["payment_method_data"]["card"] == MASK
    assert redacted["amount"] == 10
    assert redacted["webhook_secret"] == MASK


def test_log_lines_are_json_with_the_request_id_and_no_secret(log_stream: io.StringIO) -> None:
    log = logging.getLogger("paymod.test")
    with request_id_bound("req_test_1"):
        log.info("calling with %s", "Bearer sk_live_abcdef123456", extra={"route": "/x", "api_key": "k"})
    try:
        raise ValueError("card 4111111111111111 refused")
    except ValueError:
        log.exception("failed")

    first, second = lines(log_stream)

    assert first["message"] == "calling with Bearer [redacted]"
    assert first["request_id"] == "req_test_1"
    assert first["route"] == "/x" and first["api_key"] == MASK
    assert first["level"] == "info" and first["logger"] == "paymod.test" and first["timestamp"]
    assert "request_id" not in second
    assert "4111111111111111" not in second["exception"] and CARD_MASK in second["exception"]


def test_readable_lines_when_not_json() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("info", json=False, stream=stream)
    try:
        logging.getLogger("paymod.test").info("hello", extra={"route": "/y"})
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()

    line = stream.getvalue()
    assert "hello" in line and "route=/y" in line
    with pytest.raises(ValueError):
        json.loads(line)


def test_a_money_flow_is_counted_by_outcome_and_logged(log_stream: io.StringIO) -> None:
    before_ok = sample("paymod_money_flows_total", kind="unit-test", outcome="succeeded")
    before_failed = sample("paymod_money_flows_total", kind="unit-test", outcome="provider_error")

    with request_id_bound("req_flow"), money_flow("unit-test"):
        pass
    with pytest.raises(ProviderError), money_flow("unit-test"):
        raise ProviderError("no")

    assert sample("paymod_money_flows_total", kind="unit-test", outcome="succeeded") == before_ok + 1
    assert sample("paymod_money_flows_total", kind="unit-test", outcome="provider_error") == before_failed + 1
    flows = [line for line in lines(log_stream) if line.get("flow") == "unit-test"]
    assert [(f["outcome"], f.get("request_id")) for f in flows] == [
        ("succeeded", "req_flow"),
        ("provider_error", None),
    ]


class _SuperCallingProvider(TestingPaymentProvider):
    async def capture_payment(self, input: CapturePaymentInput) -> ProviderOutput:
        return await super().capture_payment(input)


async def test_provider_calls_are_measured_on_the_instance_and_counted_once() -> None:
    provider = _SuperCallingProvider({})
    instrument_provider(provider, "pp_unit_test")
    instrument_provider(provider, "pp_unit_test")  # a second registration does not wrap twice
    before = sample(
        "paymod_provider_call_duration_seconds_count",
        provider="pp_unit_test",
        method="capture_payment",
        outcome="ok",
    )
    failed = sample(
        "paymod_provider_call_duration_seconds_count",
        provider="pp_unit_test",
        method="capture_payment",
        outcome="provider_error",
    )
    context = ProviderContext(idempotency_key="k")

    await provider.capture_payment(
        CapturePaymentInput(data={}, context=context, amount=Decimal(1), currency_code="usd")
    )
    with pytest.raises(ProviderError):
        await provider.capture_payment(
            CapturePaymentInput(
                data={"scenario": "capture_error"}, context=context, amount=Decimal(1), currency_code="usd"
            )
        )

    assert isinstance(provider, _SuperCallingProvider)
    assert provider.count("capture_payment") == 2
    assert (
        sample(
            "paymod_provider_call_duration_seconds_count",
            provider="pp_unit_test",
            method="capture_payment",
            outcome="ok",
        )
        == before + 1
    )
    assert (
        sample(
            "paymod_provider_call_duration_seconds_count",
            provider="pp_unit_test",
            method="capture_payment",
            outcome="provider_error",
        )
        == failed + 1
    )
