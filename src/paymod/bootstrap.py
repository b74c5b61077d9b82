"""The composition root: the one place that turns `Settings` into running parts.

Everything that starts paymod from settings comes here: `paymod serve` (the HTTP app's state, its
in-process worker), `paymod worker`, every CLI command, the demo and the dashboard. What each gets:

* `connect(settings)`: the module as a server runs it: migrated (unless told not to), providers
  registered, configured regions linked. `PaymentModule.connect` stays the module's own constructor
  (the services layer cannot import this module); this one feeds it the settings.
* `operator_module(settings)`: the module for an operator's command: the database must exist and be
  migrated, and nothing about it changes (no migration, no provider sync), since the command's
  settings may differ from those of the running servers.
* `components(settings, module, worker)`: what the HTTP routes share (`paymod.http.state.AppState`).
* `new_worker(settings, module)`: the worker of `[worker]`.

Only this module and the edges above it (`paymod.http`, `paymod.cli`, `paymod.http.dashboard`) import it.
Heavy parts (the worker's HTTP client, Alembic) are imported where they are used, so a CLI command
loads only what it needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from paymod.config import Settings
from paymod.domain.errors import PaymodError
from paymod.persistence.database import Database, normalize_url
from paymod.services.access import AccessStores, ApiKeyStore, EphemeralKeyStore, IdempotencyStore
from paymod.services.payment_module import PaymentModule

if TYPE_CHECKING:
    from paymod.webhooks.worker import Worker


class SetupError(PaymodError):
    """Something the operator can fix (an unmigrated or unreachable database, ...): one line."""

    type = "setup_error"


@dataclass(frozen=True)
class Components:
    """The parts a running service shares: settings, the module, the access stores and the worker."""

    settings: Settings
    module: PaymentModule
    api_keys: ApiKeyStore
    idempotency: IdempotencyStore
    ephemeral_keys: EphemeralKeyStore
    #: The in-process worker, while the app runs one (`[worker] enabled`, `paymod serve --no-worker`).
    worker: Worker | None = None


def components(settings: Settings, module: PaymentModule, worker: Worker | None = None) -> Components:
    stores = AccessStores.of(module)
    return Components(settings, module, stores.api_keys, stores.idempotency, stores.ephemeral_keys, worker)


# -- the module -----------------------------------------------------------------------------------
async def link_regions(module: PaymentModule, settings: Settings) -> None:
    """Enables the configured providers in the configured regions (links added by API stay)."""
    for region in settings.regions:
        if region.providers:
            await module.add_region_payment_providers(region.id, region.providers)


async def connect(settings: Settings, *, process_kind: str = "serve", migrate: bool = True) -> PaymentModule:
    """The module a server runs: migrated unless `migrate` is false, the configured providers
    registered (and those no longer configured disabled), the configured regions linked."""
    module = await PaymentModule.connect(
        settings.database_url,
        providers=settings.provider_configs(),
        options=settings.module_options(),
        migrate=migrate,
        pool_size=settings.database_pool_size,
        process_kind=process_kind,
    )
    try:
        await link_regions(module, settings)
    except BaseException:
        await module.close()
        raise
    return module


@asynccontextmanager
async def operator_module(settings: Settings, kind: str = "cli") -> AsyncIterator[PaymentModule]:
    """The module without `connect`'s side effects: operators' commands neither migrate nor
    enable or disable providers (which would change what a running server offers). It keeps the
    process's heartbeat, so what a killed command claimed is free again within seconds."""
    from paymod.providers.registry import load_providers
    from paymod.services.payment_module import ModuleOptions

    providers = load_providers(settings.provider_configs())
    module = PaymentModule(
        await open_database(settings), providers, ModuleOptions.of(settings.module_options())
    )
    try:
        await module.start_heartbeat(kind)
        yield module
    finally:
        await module.close()


def new_worker(settings: Settings, module: PaymentModule) -> Worker:
    """A worker with the configured pace and retention; it delivers to `module.subscribers`."""
    from paymod.webhooks.worker import worker_for

    return worker_for(settings.worker, module)


# -- the database ---------------------------------------------------------------------------------
def shown_url(database_url: str) -> str:
    """The database URL without its password, for printing."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


def _reason(exc: BaseException) -> str:
    """The first line of a connection failure, without SQLAlchemy's wrapping."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip() or type(cause).__name__
    return text.splitlines()[0]


async def _reachable(database: Database, shown: str) -> None:
    from sqlalchemy.exc import DBAPIError

    try:
        async with database.read():
            pass
    except (DBAPIError, OSError) as exc:
        await database.close()
        raise SetupError(f"cannot reach the database {shown}: {_reason(exc)}") from None


async def open_database(settings: Settings, *, create: bool = False) -> Database:
    """The settings' database; unless `create`, it must exist and be migrated.

    Without this check a command on a fresh checkout would leave an empty SQLite file behind and fail
    deep inside with `no such table`.
    """
    from sqlalchemy import inspect
    from sqlalchemy.exc import ArgumentError

    shown = shown_url(settings.database_url)
    try:
        url = normalize_url(settings.database_url)
    except (ArgumentError, ValueError) as exc:
        raise SetupError(f"PAYMOD_DATABASE_URL: {exc}") from None
    if not create and url.drivername.startswith("sqlite") and url.database:
        path = Path(url.database)
        if not await asyncio.to_thread(path.exists):
            raise SetupError(f"no database at {path}: run `paymod migrate` to create it")
    try:
        database = Database(url, pool_size=settings.database_pool_size)
    except ValueError as exc:
        raise SetupError(str(exc)) from None
    await _reachable(database, shown)
    if create:
        return database
    try:
        async with database.read() as conn:
            migrated = await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version"))
            revision = (
                (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalar()
                if migrated
                else None
            )
    except BaseException:
        await database.close()
        raise
    if revision is None:
        await database.close()
        raise SetupError(f"the database {shown} is not migrated: run `paymod migrate` first")
    return database


@asynccontextmanager
async def database(settings: Settings, *, create: bool = False) -> AsyncIterator[Database]:
    """`open_database`, closed on the way out."""
    opened = await open_database(settings, create=create)
    try:
        yield opened
    finally:
        await opened.close()


async def migrate(settings: Settings) -> None:
    """Applies the migrations to the settings' database (creating a SQLite file if needed)."""
    from paymod.persistence.migrate import upgrade

    async with database(settings, create=True) as opened:
        await upgrade(opened.engine)


__all__ = [
    "Components",
    "SetupError",
    "components",
    "connect",
    "database",
    "link_regions",
    "migrate",
    "new_worker",
    "open_database",
    "operator_module",
    "shown_url",
]
