"""`Harness`: a fresh module on its own SQLite database, with the driver's provider, for one test."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from paymod.domain.statuses import PaymentSessionStatus
from paymod.persistence.database import Database
from paymod.persistence.migrate import upgrade
from paymod.providers.base import PaymentProvider, WebhookPayload
from paymod.services.dto import PaymentDTO, PaymentSessionDTO
from paymod.services.payment_module import PaymentModule
from paymod.testing.driver import ProviderDriver, Scenario
from paymod.webhooks.inbox import receive_webhook
from paymod.webhooks.worker import Worker

#: Migrated SQLite files by directory: migrating once per run and copying the file per test keeps the
#: kit fast (a migration takes longer than most of its tests).
_templates: dict[Path, Path] = {}


async def _migrated_copy(template_dir: Path, target: Path) -> None:
    template = _templates.get(template_dir)
    if template is None:
        template = template_dir / "conformance-template.db"
        database = Database(f"sqlite:///{template}")
        try:
            await upgrade(database.engine)
        finally:
            await database.close()
        _templates[template_dir] = template
    shutil.copyfile(template, target)


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
        """`tenths`/10 of the driver's amount, at cent precision."""
        return (self.driver.amount * tenths / 10).quantize(Decimal("0.01"))

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


@asynccontextmanager
async def open_harness(driver: ProviderDriver, directory: Path, template_dir: Path) -> AsyncIterator[Harness]:
    """A module on a fresh SQLite database in `directory`, with the driver's provider registered."""
    target = directory / "conformance.db"
    await _migrated_copy(template_dir, target)
    config = driver.provider_config()
    # Webhooks are processed as soon as a worker looks, and a failing one is retried once.
    options = {"webhook_delay": 0, "webhook_retries": 1, **driver.module_options()}
    module = await PaymentModule.connect(
        f"sqlite:///{target}", providers=[config] if config else [], options=options, migrate=False
    )
    async with module:
        harness = Harness(module, driver)
        await driver.setup(harness)
        yield harness
