"""`ProviderDriver`: what the conformance kit needs to know about one provider, and how to steer it.

A driver names the provider's configuration, declares what the provider can do (`capabilities`,
`webhooks`) and fills the few hooks that differ between providers: the session data for each
scenario, finishing a customer action, losing a capture's answer, a signed webhook, and the
idempotency keys the provider saw. Every hook has a default that suits a provider without the
capability, so a driver only writes what its provider declares. Hooks get the test's `Harness`: the
module under test and the steps every test takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from paymod.domain.money import minor_unit, round_amount
from paymod.domain.statuses import PaymentAction, PaymentSessionStatus
from paymod.providers.base import PaymentProvider, WebhookPayload
from paymod.services.dto import AccountHolderDTO, PaymentDTO, PaymentSessionDTO, WebhookActionAndData
from paymod.services.payment_module import PaymentModule
from paymod.webhooks.inbox import receive_webhook
from paymod.webhooks.worker import Worker


class Capability(StrEnum):
    """What a provider may support; the kit skips, naming it, what its driver does not declare."""

    PARTIAL_CAPTURE = "partial_capture"
    MULTIPLE_CAPTURES = "multiple_captures"
    REFUNDS = "refunds"
    MULTIPLE_REFUNDS = "multiple_refunds"
    CANCEL = "cancel"
    CUSTOMER_ACTION = "customer_action"
    DECLINE = "decline"
    #: A capture whose answer is lost after the provider did it (`ProviderDriver.lose_next_capture`).
    UNKNOWN_OUTCOME = "unknown_outcome"
    PAYMENT_STATUS = "payment_status"
    ACCOUNT_HOLDERS = "account_holders"
    SAVED_METHODS = "saved_methods"
    WEBHOOKS = "webhooks"
    #: The driver can tell which idempotency keys the provider saw (`ProviderDriver.idempotency_keys`).
    IDEMPOTENCY_KEYS = "idempotency_keys"


class Scenario(StrEnum):
    """What a new session is to do when it is authorized."""

    #: Authorizes when asked, with nothing more from the customer.
    SUCCESS = "success"
    #: Not paid yet: the customer has not confirmed anything (its amount can still change).
    OPEN = "open"
    CUSTOMER_ACTION = "customer_action"
    DECLINE = "decline"


class Operation(StrEnum):
    """The provider calls whose idempotency keys the kit checks (the provider's method names)."""

    INITIATE = "initiate_payment"
    AUTHORIZE = "authorize_payment"
    CAPTURE = "capture_payment"
    REFUND = "refund_payment"
    CANCEL = "cancel_payment"


class ProviderDriver:
    """Subclass it for your provider; `ProviderConformance` runs the kit against it."""

    #: The provider's id in the module, `pp_<identifier>_<id>` (`pp_system_default` for the built-in one).
    provider_id: str = ""
    capabilities: frozenset[Capability] = frozenset()
    #: The webhook actions `webhook()` can produce, each of which must map to that action and book it.
    webhooks: frozenset[PaymentAction] = frozenset()
    currency_code: str = "usd"
    #: The collection's amount; partial captures and refunds use fractions of it (3/10, 2/10, ...).
    amount: Decimal = Decimal("100.00")

    def provider_config(self) -> Mapping[str, Any] | None:
        """The module's provider configuration (`{"resolve", "id", "options"}`); None: built in."""
        return None

    def module_options(self) -> Mapping[str, Any]:
        """Extra `PaymentModule` options (the kit sets its own webhook pace)."""
        return {}

    async def setup(self, harness: Harness) -> None:
        """Called before each test with the new module (e.g. to wipe a local server)."""

    def session_data(self, scenario: Scenario) -> dict[str, Any]:
        """What to pass as the session's `data` for `scenario`."""
        return {}

    async def complete_customer_action(self, harness: Harness, session: PaymentSessionDTO) -> None:
        """What the customer does on a `requires_more` session (approve, pass 3-D Secure)."""
        raise NotImplementedError

    async def lose_next_capture(self, harness: Harness, payment: PaymentDTO) -> None:
        """Makes the next capture of `payment` happen at the provider with its answer lost, once: the
        module sees a retryable error, and a retry under the same key must book the capture once."""
        raise NotImplementedError

    async def webhook(
        self, harness: Harness, action: PaymentAction, session: PaymentSessionDTO, amount: Decimal
    ) -> WebhookPayload:
        """A signed, provider-shaped event that means `action` for `session` (`amount`: what it is
        about). For `captured`/`canceled`/`refunded` the session's payment is authorized; make the
        provider's own state match the event first if the provider checks it."""
        raise NotImplementedError

    def idempotency_keys(self, harness: Harness, operation: Operation) -> list[str | None]:
        """The idempotency key of each `operation` call the provider received so far, in order."""
        raise NotImplementedError

    async def captured_at_provider(self, harness: Harness, payment: PaymentDTO) -> Decimal | None:
        """What the provider itself holds as captured for `payment` (its own books, not paymod's), or
        None when the driver cannot tell; the kit compares it with what paymod booked."""
        return None

    def customer(self) -> dict[str, Any]:
        """The customer an account holder is created for."""
        return {
            "id": "cus_conformance_1",
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
        }

    async def save_payment_method(self, harness: Harness, holder: AccountHolderDTO) -> str:
        """Saves a payment method for `holder` as a storefront would; returns its id (as listed)."""
        saved = await harness.module.create_payment_methods(
            {
                "provider_id": self.provider_id,
                "data": {},
                "context": {"account_holder": holder.model_dump(mode="json")},
            }
        )
        return saved.id


@dataclass
class Harness:
    """The module under test, its driver, and the steps every test takes."""

    module: PaymentModule
    driver: ProviderDriver

    @property
    def provider_id(self) -> str:
        return self.driver.provider_id

    @property
    def provider(self) -> PaymentProvider:
        return self.module.provider(self.driver.provider_id)

    def share(self, tenths: int) -> Decimal:
        """`tenths`/10 of the driver's amount, rounded to its currency's precision."""
        return round_amount(self.driver.amount * tenths / 10, self.driver.currency_code)

    @property
    def cent(self) -> Decimal:
        """The currency's smallest unit (0.01 USD, 1 JPY): what "a cent too much" adds."""
        return minor_unit(self.driver.currency_code)

    async def session(self, scenario: Scenario = Scenario.SUCCESS) -> PaymentSessionDTO:
        """A new collection for the driver's amount with one session of the driver's provider."""
        collection = await self.module.create_payment_collections(
            {"currency_code": self.driver.currency_code, "amount": self.driver.amount}
        )
        return await self.module.create_payment_session(
            collection.id,
            {
                "provider_id": self.provider_id,
                "amount": self.driver.amount,
                "currency_code": self.driver.currency_code,
                "data": self.driver.session_data(scenario),
            },
        )

    async def authorized(self) -> tuple[PaymentSessionDTO, PaymentDTO]:
        """A session authorized the plain way, and its payment."""
        session = await self.session()
        payment = await self.module.authorize_payment_session(session.id)
        assert payment is not None, f"a {Scenario.SUCCESS} session was not authorized"
        return await self.module.retrieve_payment_session(session.id), payment

    async def payment(self, id: str) -> PaymentDTO:
        return await self.module.retrieve_payment(id, {"relations": ["captures", "refunds"]})

    async def read_webhook(self, payload: WebhookPayload) -> WebhookActionAndData:
        """What the provider says a webhook means, as the module asks it (verifying it first)."""
        return await self.module.get_webhook_action_and_data(
            {
                "provider": self.provider_id,
                "payload": {"data": payload.data, "raw_data": payload.raw_data, "headers": payload.headers},
            }
        )

    async def deliver(self, payload: WebhookPayload) -> None:
        """Receives a webhook as the HTTP route does, then lets a worker process it."""
        await receive_webhook(
            self.module, self.provider_id.removeprefix("pp_"), payload.raw_data, payload.headers
        )
        worker = Worker(self.module)
        try:
            for _ in range(20):
                if not await worker.run_once():
                    break
        finally:
            await worker.close()

    @staticmethod
    def is_authorized(session: PaymentSessionDTO) -> bool:
        return session.status in (PaymentSessionStatus.AUTHORIZED, PaymentSessionStatus.CAPTURED)
