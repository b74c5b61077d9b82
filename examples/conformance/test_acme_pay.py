from typing import Any

from acme_pay import AcmePayProvider

from paymod.testing import Capability, Harness, Operation, ProviderConformance, ProviderDriver, Scenario


class AcmePayDriver(ProviderDriver):
    provider_id = "pp_acme_default"
    capabilities = frozenset(
        {
            Capability.PARTIAL_CAPTURE,
            Capability.MULTIPLE_CAPTURES,
            Capability.REFUNDS,
            Capability.MULTIPLE_REFUNDS,
            Capability.CANCEL,
            Capability.DECLINE,
            Capability.PAYMENT_STATUS,
            Capability.IDEMPOTENCY_KEYS,
        }
    )

    def provider_config(self) -> dict[str, Any]:
        return {"resolve": AcmePayProvider, "id": "default", "options": {}}

    def session_data(self, scenario: Scenario) -> dict[str, Any]:
        return {"card": "declined"} if scenario == Scenario.DECLINE else {}

    def idempotency_keys(self, harness: Harness, operation: Operation) -> list[str | None]:
        provider = harness.provider
        assert isinstance(provider, AcmePayProvider)
        return [key for name, key in provider.calls if name == operation.value]


class TestAcmePay(ProviderConformance):
    driver = AcmePayDriver()
