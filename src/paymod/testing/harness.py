"""A fresh module on its own SQLite database, with the driver's provider, for each test of the kit."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from paymod.persistence.database import Database
from paymod.persistence.migrate import upgrade
from paymod.services.payment_module import PaymentModule
from paymod.testing.driver import Harness, ProviderDriver

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
