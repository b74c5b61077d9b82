"""`PaymentModule`: Medusa's payment module service, in snake_case, async.

A thin facade over one mixin per topic (each a module of this package, over `core.ModuleCore`):
collections, sessions, authorization, payments (the money flows, with their steps in
`payment_steps`), account holders and payment methods, refund reasons, providers and regions. Here:
assembling the parts, the lifecycle (connect, heartbeat, close) and the event subscriptions.

Every change that moves money runs in one transaction holding row locks on the payment and the
collection; provider calls are made outside those transactions. A collection's status and totals
are derived by `domain.rules.derive_collection` after every authorize, capture, refund and cancel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from paymod.durable.engine import Runner
from paymod.durable.store import DatabaseRunStore
from paymod.persistence import entities as e
from paymod.persistence.database import DEFAULT_DATABASE_URL, Database
from paymod.persistence.ledger import Ledger
from paymod.persistence.processes import Heartbeat
from paymod.persistence.repository import Repository
from paymod.providers.registry import ProviderConfig, ProviderRegistry, load_providers
from paymod.services.account_holders import AccountHoldersMixin
from paymod.services.authorization import AuthorizationMixin
from paymod.services.authorization_expiry import AuthorizationExpiryMixin
from paymod.services.collections import CollectionsMixin
from paymod.services.core import ModuleOptions
from paymod.services.disputes import DisputesMixin
from paymod.services.events import Subscriber, Subscribers
from paymod.services.payments import PaymentsMixin
from paymod.services.provider_authorizations import ProviderAuthorizationsMixin
from paymod.services.provider_refunds import ProviderRefundsMixin
from paymod.services.provider_sync import ProviderSyncMixin
from paymod.services.providers import ProvidersMixin
from paymod.services.refund_reasons import RefundReasonsMixin
from paymod.services.sessions import SessionsMixin


def _linkable(entity: str) -> dict[str, Any]:
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in entity).lstrip("_")
    return {
        "linkable": f"{snake}_id",
        "primary_key": "id",
        "service_name": "payment",
        "field": snake.split("_")[0] + "".join(w.title() for w in snake.split("_")[1:]),
        "entity": entity,
    }


class PaymentModule(
    CollectionsMixin,
    SessionsMixin,
    AuthorizationMixin,
    PaymentsMixin,
    ProviderRefundsMixin,
    AuthorizationExpiryMixin,
    ProviderAuthorizationsMixin,
    DisputesMixin,
    ProviderSyncMixin,
    AccountHoldersMixin,
    RefundReasonsMixin,
    ProvidersMixin,
):
    """The payment module. Build it with `await PaymentModule.connect(...)`."""

    #: Medusa's linkable keys, for backends that link other modules' records (cart, order) to ours.
    LINKABLE: Mapping[str, Mapping[str, Any]] = {
        name: _linkable(name)
        for name in (
            "PaymentCollection",
            "PaymentSession",
            "Payment",
            "Capture",
            "Refund",
            "RefundReason",
            "AccountHolder",
            "PaymentProvider",
        )
    }

    def __init__(self, database: Database, providers: ProviderRegistry, options: ModuleOptions) -> None:
        self.database = database
        self.providers = providers
        self.options = options
        self._repos = {name: Repository(entity, database.dialect) for name, entity in e.ENTITIES.items()}
        self.subscribers = Subscribers()
        self.ledger = Ledger(database.dialect)
        self.heartbeat = None
        self.runner = Runner(DatabaseRunStore(database, owner=lambda: self.process_id))
        self.flows = self._flows()

    # -- lifecycle ------------------------------------------------------------------------
    @classmethod
    async def connect(
        cls,
        database_url: str | None = None,
        *,
        providers: Sequence[ProviderConfig] = (),
        options: Mapping[str, Any] | None = None,
        migrate: bool = True,
        pool_size: int = 10,
        sync_providers: bool = True,
        process_kind: str = "library",
    ) -> PaymentModule:
        """Connects, migrates (unless `migrate=False`) and registers the configured providers.

        `sync_providers=False` leaves the provider table alone: for tools (a CLI run) whose
        configuration may differ from the running servers'. The module keeps this process's
        heartbeat (`process_kind`: serve, worker, cli or library) until it is closed.
        """
        registry = load_providers(providers)
        module_options = ModuleOptions.of(options)
        database = Database(database_url or DEFAULT_DATABASE_URL, pool_size=pool_size)
        try:
            if migrate:
                # Imported here: Alembic is only needed to migrate (about 10 MB and 0.2 s to import).
                from paymod.persistence.migrate import upgrade

                await upgrade(database.engine)
            module = cls(database, registry, module_options)
            if sync_providers:
                await module._sync_providers()
            await module.start_heartbeat(process_kind)
        except BaseException:
            await database.close()
            raise
        return module

    async def start_heartbeat(self, kind: str) -> None:
        """Starts this process's heartbeat (`connect` does): the claims it makes then name it, and a
        crash of this process frees them within seconds."""
        if self.heartbeat is None:
            heartbeat = Heartbeat(self.database, kind)
            await heartbeat.start()
            self.heartbeat = heartbeat

    async def close(self) -> None:
        if self.heartbeat is not None:
            await self.heartbeat.stop()
            self.heartbeat = None
        await self.providers.close()
        await self.database.close()

    async def __aenter__(self) -> PaymentModule:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def subscribe(self, name: str, handler: Subscriber) -> None:
        """Calls `handler(event)` for each `name` event ("*": all), at least once, from the worker."""
        self.subscribers.subscribe(name, handler)


__all__ = ["ModuleOptions", "PaymentModule"]
