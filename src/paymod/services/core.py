"""What every topic of the module shares: its parts, the generic reads, the collection's derived
status and its guards, and dropping sessions at their providers.

The topics (`collections`, `sessions`, `authorization`, `payments`, ...) are mixins over `ModuleCore`;
`PaymentModule` (`payment_module`) composes them and assembles the parts.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain import rules
from paymod.domain.errors import ConflictError, InvalidDataError, NotAllowedError
from paymod.durable.engine import Runner, Workflow
from paymod.persistence import entities as e
from paymod.persistence import outbox
from paymod.persistence import tables as t
from paymod.persistence.database import Database
from paymod.persistence.ledger import CollectionFacts, Ledger, NewRow
from paymod.persistence.processes import Heartbeat
from paymod.persistence.repository import Entity, FindConfig, Repository, Row, utc_now
from paymod.providers.base import PaymentProvider, ProviderInput
from paymod.providers.registry import ProviderRegistry
from paymod.services.events import Subscribers
from paymod.services.inputs import provider_context
from paymod.services.relations import load_relations

D = TypeVar("D", bound=BaseModel)
Filters = Mapping[str, Any]
Config = FindConfig | Mapping[str, Any] | None

log = logging.getLogger("paymod")


@dataclass(frozen=True, slots=True)
class ModuleOptions:
    """`webhook_delay` in seconds and `webhook_retries`; unlike Medusa, 0 means 0."""

    webhook_delay: float = 5.0
    webhook_retries: int = 3

    @classmethod
    def of(cls, options: Mapping[str, Any] | None) -> ModuleOptions:
        options = dict(options or {})
        delay = options.pop("webhook_delay", 5.0)
        retries = options.pop("webhook_retries", 3)
        if options:
            raise InvalidDataError(f"Unknown module option(s): {', '.join(sorted(options))}")
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise InvalidDataError("webhook_delay must be a number of seconds >= 0")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise InvalidDataError("webhook_retries must be an integer >= 0")
        return cls(webhook_delay=float(delay), webhook_retries=retries)


class ModuleCore:
    """The module's parts (set by `PaymentModule.__init__`) and the helpers every topic uses."""

    database: Database
    providers: ProviderRegistry
    options: ModuleOptions
    subscribers: Subscribers
    ledger: Ledger
    #: This process's heartbeat, which claims (runs, authorizations) name as their owner; None
    #: for a module built without `connect` (claims then lapse with their lease only).
    heartbeat: Heartbeat | None
    runner: Runner
    flows: dict[str, Workflow]
    _repos: dict[str, Repository]

    @property
    def process_id(self) -> str | None:
        return None if self.heartbeat is None else self.heartbeat.id

    @staticmethod
    def _emit(conn: AsyncConnection, name: str, id: str, collection_id: str | None = None) -> None:
        """Writes `payment.<name>` with payload `{id}` to the outbox, in this transaction."""
        outbox.emit(conn, f"payment.{name}", {"id": id}, collection_id)

    def provider(self, provider_id: str) -> PaymentProvider:
        return self.providers.get(provider_id)

    def _repo(self, entity: Entity) -> Repository:
        return self._repos[entity.name]

    # -- generic reads --------------------------------------------------------------------
    async def _retrieve(self, entity: Entity, dto: type[D], id: str, config: Config = None) -> D:
        if not isinstance(id, str) or not id:
            raise InvalidDataError(f"{entity.name} id must be a non-empty string")
        cfg = FindConfig.of(config)
        async with self._reader(cfg) as conn:
            row = await self._repo(entity).get(conn, id, with_deleted=cfg.with_deleted)
            await load_relations(conn, self._repos, entity.name, [row], cfg.relations)
        return dto.model_validate(row)

    def _reader(self, cfg: FindConfig) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """One statement needs no transaction; a read with relations takes one snapshot for all on
        SQLite (`Database.read`)."""
        return self.database.read() if cfg.relations else self.database.single()

    async def _list(self, entity: Entity, dto: type[D], filters: Filters | None, config: Config) -> list[D]:
        cfg = FindConfig.of(config)
        async with self._reader(cfg) as conn:
            rows = await self._repo(entity).find(conn, filters, cfg)
            await load_relations(conn, self._repos, entity.name, rows, cfg.relations)
        return [dto.model_validate(r) for r in rows]

    async def _list_and_count(
        self, entity: Entity, dto: type[D], filters: Filters | None, config: Config
    ) -> tuple[list[D], int]:
        cfg = FindConfig.of(config)
        async with self.database.read() as conn:
            repo = self._repo(entity)
            rows = await repo.find(conn, filters, cfg)
            count = await repo.count(conn, filters, with_deleted=cfg.with_deleted)
            await load_relations(conn, self._repos, entity.name, rows, cfg.relations)
        return [dto.model_validate(r) for r in rows], count

    async def _recompute_collection(
        self,
        conn: AsyncConnection,
        collection_id: str,
        *,
        locked: bool = False,
        facts: CollectionFacts | None = None,
        new_row: NewRow | None = None,
    ) -> Row:
        """Re-derives status and totals under a lock on the collection row (serializes recomputes).

        `locked`: this transaction holds the collection's lock already (the facts are read again, as
        the transaction changed them since), or `facts`: it holds the lock and knows the facts after
        its own writes (`CollectionFacts.changed`), which are not read again. `new_row`: a row the
        transaction adds to the collection, written with the totals (`Ledger.store_collection_totals`)."""
        if facts is None:
            facts = (
                await self.ledger.collection_facts(conn, collection_id)
                if locked
                else await self.ledger.lock_collection(conn, collection_id)
            )
        if facts is None:
            raise self._repo(e.PAYMENT_COLLECTION).not_found(collection_id)
        totals = rules.derive_collection(
            amount=facts.amount,
            currency_code=facts.currency_code,
            sessions=facts.sessions,
            payments=facts.payments,
        )
        self._emit(conn, "payment-collection.updated", collection_id, collection_id)
        row = await self.ledger.store_collection_totals(conn, collection_id, totals, new_row=new_row)
        if row is None:
            raise self._repo(e.PAYMENT_COLLECTION).not_found(collection_id)
        return row

    # -- the collection's guards (run under its lock) -------------------------------------
    # Sessions are created, replaced and deleted, authorized, and the amount or currency changed only
    # under the collection's row lock, where each operation checks again what it checked before its
    # provider call. A request that loses a race gets 409 `conflict` (retrying it is safe) or the
    # refusal the collection's state now calls for (400 `not_allowed`).

    @staticmethod
    def _check_no_authorization_in_flight(facts: CollectionFacts) -> None:
        if any(s.authorizing for s in facts.sessions):
            raise ConflictError(
                f"A payment of payment collection {facts.id} is being authorized. "
                "Retry the request once the authorization finished."
            )

    def _check_replaceable(self, facts: CollectionFacts) -> None:
        """The store's checkout replaces sessions only while nothing is, or is being, authorized."""
        if any(not p.canceled for p in facts.payments):
            raise NotAllowedError(
                f"Payment collection {facts.id} has an authorized payment; "
                "cancel it before creating a new payment session."
            )
        self._check_no_authorization_in_flight(facts)

    async def _soft_delete_sessions(
        self, conn: AsyncConnection, session_ids: Sequence[str], collection_id: str
    ) -> list[Row]:
        """Soft-deletes sessions (a session is never hard-deleted: a payment may point at it); returns
        them, for their providers to drop once this transaction committed."""
        if not session_ids:
            return []
        table = t.payment_session
        now = utc_now()
        found = await conn.execute(
            update(table)
            .where(table.c.id.in_(session_ids), table.c.deleted_at.is_(None))
            .values(deleted_at=now, updated_at=now)
            .returning(table.c.id, table.c.provider_id, table.c.data)
        )
        dropped = [dict(r) for r in found.mappings()]
        for row in dropped:
            self._emit(conn, "payment-session.deleted", row["id"], collection_id)
        return dropped

    async def _drop_at_providers(self, sessions: Sequence[Row]) -> None:
        """Asks each dropped session's provider to drop its side, after the drop committed.

        Best effort: an unauthorized payment at a provider holds no money, and a failure here must not
        undo what the database already decided; it is logged."""
        for session in sessions:
            try:
                provider = self.provider(session["provider_id"])
                await provider.delete_payment(
                    ProviderInput(
                        data=dict(session["data"] or {}),
                        context=provider_context(None, f"{session['id']}:delete"),
                    )
                )
            except Exception:
                log.warning(
                    "the provider of payment session %s could not drop it", session["id"], exc_info=True
                )

    @staticmethod
    def _check_session_currency(currency_code: str, collection_currency: str) -> None:
        if currency_code != collection_currency:
            raise InvalidDataError(
                f"Payment session currency {currency_code} does not match the payment collection currency "
                f"{collection_currency}."
            )

    @staticmethod
    async def _quietly(call: Any) -> None:
        """Best-effort compensation: its failure must not hide the error being handled."""
        try:
            await call
        except Exception:
            log.warning("compensation failed", exc_info=True)
