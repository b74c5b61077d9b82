"""Provider loading: Medusa's module-options shape, ids, entry points and option validation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from paymod.domain.errors import InvalidDataError, NotFoundError, ProviderError
from paymod.domain.statuses import PaymentAction
from paymod.providers.base import PaymentProvider, ProviderContext, ProviderInput, WebhookPayload
from paymod.providers.registry import SYSTEM_PROVIDER_ID, ProviderRegistry
from paymod.providers.system import SystemPaymentProvider
from paymod.providers.testing import SIGNATURE_HEADER, TestingPaymentProvider, sign


class NeedsKey(PaymentProvider):
    identifier = "needs-key"

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        if not options.get("api_key"):
            raise ValueError("Required option `api_key` is missing")


class Anonymous(PaymentProvider):
    pass


def test_the_system_provider_is_always_registered() -> None:
    registry = ProviderRegistry()
    assert registry.ids == [SYSTEM_PROVIDER_ID]
    assert isinstance(registry.get("pp_system_default"), SystemPaymentProvider)


def test_a_module_path_registers_its_providers_as_pp_identifier_id() -> None:
    registry = ProviderRegistry([{"resolve": "paymod.providers.testing", "id": "default"}])
    assert registry.ids == ["pp_system_default", "pp_testing_default"]
    assert isinstance(registry.get("pp_testing_default"), TestingPaymentProvider)


def test_an_entry_point_name_resolves_like_a_module() -> None:
    registry = ProviderRegistry([{"resolve": "testing", "id": "x", "options": {"webhook_secret": "s"}}])
    provider = registry.get("pp_testing_x")
    assert provider.options == {"webhook_secret": "s"}


def test_a_provider_class_can_be_given_directly_and_without_id() -> None:
    registry = ProviderRegistry([{"resolve": NeedsKey, "options": {"api_key": "k"}}])
    assert "pp_needs-key" in registry


def test_invalid_options_are_refused_at_load_time() -> None:
    with pytest.raises(InvalidDataError, match="api_key"):
        ProviderRegistry([{"resolve": NeedsKey, "id": "a"}])


def test_a_provider_without_identifier_is_refused() -> None:
    with pytest.raises(InvalidDataError, match="without a provider identifier"):
        ProviderRegistry([{"resolve": Anonymous}])


@pytest.mark.parametrize("resolve", ["paymod.providers.does_not_exist", "", 42])
def test_an_unknown_resolve_is_refused(resolve: object) -> None:
    with pytest.raises(InvalidDataError):
        ProviderRegistry([{"resolve": resolve}])


def test_an_unknown_provider_id_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="pp_nope_default"):
        ProviderRegistry().get("pp_nope_default")


@pytest.mark.parametrize(
    ("segment", "provider_id"),
    [("testing_default", "pp_testing_default"), ("pp_testing_default", "pp_testing_default")],
)
def test_webhook_url_segments_accept_both_forms(segment: str, provider_id: str) -> None:
    assert ProviderRegistry().resolve_webhook_provider(segment) == provider_id


async def test_the_testing_provider_verifies_its_webhook_signature() -> None:
    provider = TestingPaymentProvider({"webhook_secret": "whsec"})
    body = json.dumps(
        {"id": "evt_1", "action": "captured", "session_id": "payses_1", "amount": "12.5"}
    ).encode()
    result = await provider.get_webhook_action_and_data(
        WebhookPayload(data={}, raw_data=body, headers={SIGNATURE_HEADER: sign(body, "whsec")})
    )
    assert (result.action, result.session_id, result.amount, result.event_id) == (
        PaymentAction.SUCCESSFUL,
        "payses_1",
        Decimal("12.5"),
        "evt_1",
    )
    for headers in (
        {SIGNATURE_HEADER: sign(body, "other")},
        {SIGNATURE_HEADER: sign(body + b" ", "whsec")},
        {},
    ):
        with pytest.raises(ProviderError) as info:
            await provider.get_webhook_action_and_data(
                WebhookPayload(data={}, raw_data=body, headers=headers)
            )
        assert info.value.code == "invalid_signature"


async def test_the_testing_provider_counts_calls_per_idempotency_key() -> None:
    provider = TestingPaymentProvider()
    for _ in range(2):
        await provider.authorize_payment(
            ProviderInput(data={}, context=ProviderContext(idempotency_key="k1"))
        )
    assert provider.calls[("authorize_payment", "k1")] == 2
    assert provider.count("authorize_payment") == 2
