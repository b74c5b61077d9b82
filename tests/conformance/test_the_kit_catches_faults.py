"""The kit fails providers that get the contract wrong: each careless provider below breaks one rule,
and the kit's test for that rule fails against it (while the testing provider it derives from passes)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from paymod.domain.statuses import PaymentAction, PaymentSessionStatus
from paymod.providers.base import (
    AuthorizePaymentOutput,
    ProviderInput,
    StatusOutput,
    WebhookActionResult,
    WebhookPayload,
)
from paymod.providers.testing import SIGNATURE_HEADER, TestingPaymentProvider, sign
from paymod.testing import ProviderConformance
from paymod.testing.examples import TestingDriver
from paymod.testing.harness import open_harness


class CarelessProvider(TestingPaymentProvider):
    """The testing provider with one fault, named by the `fault` option."""

    identifier = "careless"

    @property
    def fault(self) -> str:
        return str(self.options.get("fault", ""))

    async def authorize_payment(self, input: ProviderInput) -> AuthorizePaymentOutput:
        result = await super().authorize_payment(input)
        if self.fault == "approves_declines":
            return AuthorizePaymentOutput(data=result.data, status=PaymentSessionStatus.AUTHORIZED)
        return result

    async def get_payment_status(self, input: ProviderInput) -> StatusOutput:
        if self.fault == "status_always_pending":
            return StatusOutput(data=dict(input.data), status=PaymentSessionStatus.PENDING)
        return await super().get_payment_status(input)

    async def get_webhook_action_and_data(self, payload: WebhookPayload) -> WebhookActionResult:
        if self.fault == "skips_signatures":
            # Whatever the signature says, the body is taken as signed.
            secret = str(self.options["webhook_secret"])
            payload = WebhookPayload(
                data=payload.data,
                raw_data=payload.raw_data,
                headers={SIGNATURE_HEADER: sign(payload.raw_data, secret)},
            )
        result = await super().get_webhook_action_and_data(payload)
        if self.fault == "captures_as_authorized" and result.action == PaymentAction.SUCCESSFUL:
            result.action = PaymentAction.AUTHORIZED
        if self.fault == "doubles_refunds":
            for refund in result.refunds:
                refund.amount = None if refund.amount is None else refund.amount * 2
        return result


class CarelessDriver(TestingDriver):
    provider_id = "pp_careless_default"

    def __init__(self, fault: str) -> None:
        self.fault = fault

    def provider_config(self) -> Mapping[str, Any]:
        return {
            "resolve": CarelessProvider,
            "id": "default",
            "options": {"webhook_secret": self.secret, "fault": self.fault},
        }


@pytest.mark.parametrize(
    ("fault", "kit_test"),
    [
        ("approves_declines", "test_a_declined_session_books_nothing"),
        ("status_always_pending", "test_the_provider_reports_an_authorized_payment_as_authorized"),
        ("skips_signatures", "test_a_webhook_with_a_tampered_body_is_refused"),
        ("captures_as_authorized", "test_a_captured_webhook_books_the_capture_once"),
        ("doubles_refunds", "test_a_refunded_webhook_books_the_refund_once"),
    ],
)
async def test_the_kit_fails_a_provider_that_breaks_the_rule(
    fault: str, kit_test: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    suite = ProviderConformance()
    for driver, fails in ((TestingDriver(), False), (CarelessDriver(fault), True)):
        directory = tmp_path / type(driver).__name__
        directory.mkdir()
        async with open_harness(driver, directory, tmp_path_factory.getbasetemp()) as kit:
            run = getattr(suite, kit_test)(kit)
            if not fails:
                await run
                continue
            with pytest.raises((AssertionError, pytest.fail.Exception)):
                await run
