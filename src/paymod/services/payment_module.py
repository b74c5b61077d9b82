"""`PaymentModule`: Medusa's payment module service, in snake_case, async.

Every change that moves money runs in one transaction holding row locks on the payment and the
collection; provider calls are made outside those transactions. A collection's status and totals
are derived by `domain.rules.derive_collection` after every authorize, capture, refund and cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar, overload

from pydantic import BaseModel
from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from ulid import ULID

from paymod.domain import rules
from paymod.domain.errors import (
    ConflictError,
    DuplicateError,
    InvalidDataError,
    NotAllowedError,
    NotFoundError,
    PaymodError,
    RetryableProviderError,
)
from paymod.domain.ids import ACCOUNT_HOLDER, PAYMENT_SESSION, new_id
from paymod.domain.money import AmountError, normalize_currency_code, round_amount, to_amount
from paymod.domain.statuses import PaymentAction, PaymentCollectionStatus, PaymentSessionStatus
from paymod.observability.metrics import measured_flow
from paymod.persistence import entities as e
from paymod.persistence import outbox
from paymod.persistence import tables as t
from paymod.persistence.database import DEFAULT_DATABASE_URL, Database
from paymod.persistence.ledger import CollectionFacts, Ledger
from paymod.persistence.processes import Heartbeat
from paymod.persistence.repository import Entity, FindConfig, Repository, Row, utc_now
from paymod.providers.base import (
    AccountHolderInput,
    CapturePaymentInput,
    CapturePaymentOutput,
    InitiatePaymentInput,
    PaymentMethodInput,
    PaymentProvider,
    ProviderContext,
    ProviderInput,
    RefundPaymentInput,
    UpdatePaymentInput,
    WebhookPayload,
)
from paymod.providers.registry import ProviderConfig, ProviderRegistry, load_providers
from paymod.services.dto import (
    AccountHolderDTO,
    CaptureDTO,
    PaymentCollectionDTO,
    PaymentDTO,
    PaymentMethodDTO,
    PaymentProviderDTO,
    PaymentSessionDTO,
    RefundDTO,
    RefundReasonDTO,
    WebhookActionAndData,
    WebhookActionData,
)
from paymod.services.events import Subscriber, Subscribers
from paymod.durable.engine import Runner, Step, StepContext, Workflow, fault_point
from paymod.durable.store import DatabaseRunStore

D = TypeVar("D", bound=BaseModel)
Filters = Mapping[str, Any]
Config = FindConfig | Mapping[str, Any] | None

_AUTHORIZED = {PaymentSessionStatus.AUTHORIZED, PaymentSessionStatus.CAPTURED}
#: How long an authorization may claim its session at most (its process dying frees it at once).
AUTHORIZATION_CLAIM = timedelta(minutes=5)


class _Refused(Exception):
    """The collection refuses a payment the provider authorized: it is canceled there, `error` raised."""

    def __init__(self, error: PaymodError) -> None:
        super().__init__(error.message)
        self.error = error


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


def _as_mapping(value: Any, what: str) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    if not isinstance(value, Mapping):
        raise InvalidDataError(f"{what} must be an object")
    return dict(value)


def _batch(data: Any, what: str) -> tuple[bool, list[dict[str, Any]]]:
    """Medusa's calling convention: one object in, one out; a list in, a list out."""
    if isinstance(data, Mapping | BaseModel):
        return True, [_as_mapping(data, what)]
    if isinstance(data, list | tuple):
        return False, [_as_mapping(item, what) for item in data]
    raise InvalidDataError(f"{what} must be an object or a list of objects")


def _required(data: Mapping[str, Any], entity: str, field: str) -> Any:
    value = data.get(field)
    if value is None or value == "":
        raise InvalidDataError(f"Value for {entity}.{field} is required, 'undefined' found")
    return value


def _amount(value: Any, field: str = "amount", *, positive: bool = False, signed: bool = False) -> Decimal:
    """Parses an amount; `signed` leaves the sign to the domain rule (which has Medusa's message)."""
    try:
        amount = to_amount(value, field)
    except AmountError as exc:
        raise InvalidDataError(str(exc), code="invalid_amount") from None
    if signed:
        return amount
    if amount < 0 or (positive and amount == 0):
        raise InvalidDataError(f"{field} must be {'greater than 0' if positive else 'at least 0'}")
    return amount


def _currency(value: Any) -> str:
    try:
        return normalize_currency_code(value)
    except AmountError as exc:
        raise InvalidDataError(str(exc), code="invalid_currency_code") from None


def _optional_object(data: Mapping[str, Any], field: str) -> dict[str, Any] | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidDataError(f"{field} must be an object")
    return dict(value)


def _optional_text(data: Mapping[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is not None and not isinstance(value, str):
        raise InvalidDataError(f"{field} must be a string")
    return value


def _context(
    context: Mapping[str, Any] | None, idempotency_key: str | None, *, resumed: bool = False
) -> ProviderContext:
    context = dict(context or {})
    return ProviderContext(
        idempotency_key=context.pop("idempotency_key", None) or idempotency_key,
        customer=context.pop("customer", None),
        account_holder=context.pop("account_holder", None),
        extra=context,
        resumed=resumed,
    )


#: Longer ids than this are no provider's (Stripe's are under 70 characters) and would not fit an index.
MAX_WEBHOOK_ID_LENGTH = 255


def _webhook_text(value: object, what: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidDataError(f"The webhook's {what} must be a string.", code="invalid_webhook")
    if len(value) > MAX_WEBHOOK_ID_LENGTH or not value.isprintable():
        raise InvalidDataError(
            f"The webhook's {what} must be at most {MAX_WEBHOOK_ID_LENGTH} printable characters.",
            code="invalid_webhook",
        )
    return value


def _linkable(entity: str) -> dict[str, Any]:
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in entity).lstrip("_")
    return {
        "linkable": f"{snake}_id",
        "primary_key": "id",
        "service_name": "payment",
        "field": snake.split("_")[0] + "".join(w.title() for w in snake.split("_")[1:]),
        "entity": entity,
    }


class PaymentModule:
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
        #: This process's heartbeat, which claims (runs, authorizations) name as their owner; None
        #: for a module built without `connect` (claims then lapse with their lease only).
        self.heartbeat: Heartbeat | None = None
        self.runner = Runner(DatabaseRunStore(database, owner=lambda: self.process_id))
        self.flows = self._flows()

    @property
    def process_id(self) -> str | None:
        return None if self.heartbeat is None else self.heartbeat.id

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

    async def _sync_providers(self) -> None:
        """Registers configured providers as enabled and disables those no longer configured."""
        ids = self.providers.ids
        now = utc_now()
        table = t.payment_provider
        async with self.database.write() as conn:
            existing = set((await conn.execute(select(table.c.id))).scalars())
            new = [
                {"id": i, "is_enabled": True, "created_at": now, "updated_at": now}
                for i in ids
                if i not in existing
            ]
            if new:
                await conn.execute(insert(table), new)
            await conn.execute(
                update(table)
                .where(table.c.id.in_(ids), table.c.is_enabled.is_(False))
                .values(is_enabled=True, updated_at=now)
            )
            await conn.execute(
                update(table)
                .where(table.c.id.not_in(ids), table.c.is_enabled.is_(True))
                .values(is_enabled=False, updated_at=now)
            )

    def subscribe(self, name: str, handler: Subscriber) -> None:
        """Calls `handler(event)` for each `name` event ("*": all), at least once, from the worker."""
        self.subscribers.subscribe(name, handler)

    @staticmethod
    def _emit(conn: AsyncConnection, name: str, id: str, collection_id: str | None = None) -> None:
        """Writes `payment.<name>` with payload `{id}` to the outbox, in this transaction."""
        outbox.emit(conn, f"payment.{name}", {"id": id}, collection_id)

    def provider(self, provider_id: str) -> PaymentProvider:
        return self.providers.get(provider_id)

    def _repo(self, entity: Entity) -> Repository:
        return self._repos[entity.name]

    # -- generic reads --------------------------------------------------------------------
    async def _load(
        self, conn: AsyncConnection, entity: str, rows: list[Row], relations: Sequence[str]
    ) -> None:
        tree: dict[str, list[str]] = {}
        for path in relations:
            head, _, rest = path.partition(".")
            tree.setdefault(head, [])
            if rest:
                tree[head].append(rest)
        for name, nested in tree.items():
            relation = e.RELATIONS[entity].get(name)
            if relation is None:
                raise InvalidDataError(f"{entity} has no relation {name!r}")
            keys = sorted({r[relation.local] for r in rows if r.get(relation.local) is not None})
            repo = self._repos[relation.target]
            if not keys:
                children: list[Row] = []
            elif relation.through is not None:
                assert relation.through_target is not None
                pivot = relation.through
                stmt = select(pivot.c[relation.remote], pivot.c[relation.through_target]).where(
                    pivot.c[relation.remote].in_(keys)
                )
                links = (await conn.execute(stmt)).all()
                targets = await repo.find(conn, {"id": sorted({link[1] for link in links})}) if links else []
                by_id = {c["id"]: c for c in targets}
                children = [{**by_id[link[1]], "__parent": link[0]} for link in links if link[1] in by_id]
            else:
                children = await repo.find(conn, {relation.remote: keys})
            if nested:
                await self._load(conn, relation.target, children, nested)
            remote = "__parent" if relation.through is not None else relation.remote
            grouped: dict[Any, list[Row]] = {}
            for child in children:
                grouped.setdefault(child[remote], []).append(child)
            for row in rows:
                found = grouped.get(row.get(relation.local), [])
                row[name] = found if relation.many else (found[0] if found else None)

    async def _retrieve(self, entity: Entity, dto: type[D], id: str, config: Config = None) -> D:
        if not isinstance(id, str) or not id:
            raise InvalidDataError(f"{entity.name} id must be a non-empty string")
        cfg = FindConfig.of(config)
        async with self._reader(cfg) as conn:
            row = await self._repo(entity).get(conn, id, with_deleted=cfg.with_deleted)
            await self._load(conn, entity.name, [row], cfg.relations)
        return dto.model_validate(row)

    def _reader(self, cfg: FindConfig) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """One statement needs no transaction; a read with relations takes one snapshot for all."""
        return self.database.read() if cfg.relations else self.database.single()

    async def _list(self, entity: Entity, dto: type[D], filters: Filters | None, config: Config) -> list[D]:
        cfg = FindConfig.of(config)
        async with self._reader(cfg) as conn:
            rows = await self._repo(entity).find(conn, filters, cfg)
            await self._load(conn, entity.name, rows, cfg.relations)
        return [dto.model_validate(r) for r in rows]

    async def _list_and_count(
        self, entity: Entity, dto: type[D], filters: Filters | None, config: Config
    ) -> tuple[list[D], int]:
        cfg = FindConfig.of(config)
        async with self.database.read() as conn:
            repo = self._repo(entity)
            rows = await repo.find(conn, filters, cfg)
            count = await repo.count(conn, filters, with_deleted=cfg.with_deleted)
            await self._load(conn, entity.name, rows, cfg.relations)
        return [dto.model_validate(r) for r in rows], count

    # -- payment collections --------------------------------------------------------------
    @overload
    async def create_payment_collections(self, data: Mapping[str, Any]) -> PaymentCollectionDTO: ...
    @overload
    async def create_payment_collections(
        self, data: Sequence[Mapping[str, Any]]
    ) -> list[PaymentCollectionDTO]: ...
    async def create_payment_collections(
        self, data: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> PaymentCollectionDTO | list[PaymentCollectionDTO]:
        single, items = _batch(data, "payment collection")
        rows = [self._collection_values(item) for item in items]
        async with self.database.write() as conn:
            created = await self._repo(e.PAYMENT_COLLECTION).insert(conn, rows)
            for row in created:
                self._emit(conn, "payment-collection.created", row["id"], row["id"])
        result = [
            PaymentCollectionDTO.model_validate(
                {**row, "payment_providers": [], "payment_sessions": [], "payments": []}
            )
            for row in created
        ]
        return result[0] if single else result

    def _collection_values(self, data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
        unknown = set(data) - {"id", "currency_code", "amount", "metadata", "status"}
        if unknown:
            raise InvalidDataError(f"Unknown payment collection field(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        if not partial or "currency_code" in data:
            values["currency_code"] = _currency(_required(data, "PaymentCollection", "currency_code"))
        if not partial or "amount" in data:
            values["amount"] = _amount(_required(data, "PaymentCollection", "amount"))
        if "metadata" in data:
            values["metadata"] = _optional_object(data, "metadata")
        if data.get("id"):
            values["id"] = str(data["id"])
        if "status" in data:
            try:
                values["status"] = PaymentCollectionStatus(data["status"]).value
            except ValueError:
                raise InvalidDataError(f"Invalid payment collection status {data['status']!r}") from None
        return values

    @overload
    async def update_payment_collections(
        self, id_or_selector: str, data: Mapping[str, Any]
    ) -> PaymentCollectionDTO: ...
    @overload
    async def update_payment_collections(
        self, id_or_selector: Filters, data: Mapping[str, Any]
    ) -> list[PaymentCollectionDTO]: ...
    async def update_payment_collections(
        self, id_or_selector: str | Filters, data: Mapping[str, Any]
    ) -> PaymentCollectionDTO | list[PaymentCollectionDTO]:
        """Updates one collection by id (returns it) or every collection a selector matches (a list).

        A change of amount or currency runs under the collection's lock: refused while it would leave
        the live payments above the amount (or in another currency), or while an authorization is in
        flight; the sessions without a payment, initiated for the old amount, are dropped (as Medusa
        does when a cart's total changes) and the status is derived again.
        """
        values = self._collection_values(_as_mapping(data, "update"), partial=True)
        values.pop("id", None)
        repo = self._repo(e.PAYMENT_COLLECTION)
        dropped: list[Row] = []
        async with self.database.write() as conn:
            if isinstance(id_or_selector, str):
                ids = [id_or_selector]
            else:
                ids = sorted(r["id"] for r in await repo.find(conn, id_or_selector))
                if not ids:
                    return []
            rows = []
            for collection_id in ids:
                row, gone = await self._update_collection(conn, collection_id, values)
                dropped.extend(gone)
                rows.append(row)
        await self._drop_at_providers(dropped)
        if isinstance(id_or_selector, str):
            return PaymentCollectionDTO.model_validate(rows[0])
        return [PaymentCollectionDTO.model_validate(r) for r in rows]

    async def _update_collection(
        self, conn: AsyncConnection, collection_id: str, values: dict[str, Any]
    ) -> tuple[Row, list[Row]]:
        """One collection's update in the caller's transaction; returns the row and the sessions dropped."""
        repo = self._repo(e.PAYMENT_COLLECTION)
        dropped: list[Row] = []
        if "amount" in values or "currency_code" in values:
            facts = await self.ledger.lock_collection(conn, collection_id)
            new_amount = values.get("amount", facts.amount)
            new_currency = values.get("currency_code", facts.currency_code)
            if (new_amount, new_currency) != (facts.amount, facts.currency_code):
                rules.check_amount_change(
                    collection_id=collection_id,
                    currency_code=facts.currency_code,
                    payments=facts.payments,
                    new_amount=new_amount,
                    new_currency_code=new_currency,
                )
                self._check_no_authorization_in_flight(facts)
                stale = [s.id for s in facts.sessions if facts.live_payment_of(s.id) is None]
                dropped = await self._soft_delete_sessions(conn, stale, collection_id)
                await repo.update(conn, collection_id, values)
                row = await self._recompute_collection(conn, collection_id, locked=True)
                return row, dropped
        row = (
            await repo.update(conn, collection_id, values) if values else await repo.get(conn, collection_id)
        )
        self._emit(conn, "payment-collection.updated", collection_id, collection_id)
        return row, dropped

    @overload
    async def upsert_payment_collections(self, data: Mapping[str, Any]) -> PaymentCollectionDTO: ...
    @overload
    async def upsert_payment_collections(
        self, data: Sequence[Mapping[str, Any]]
    ) -> list[PaymentCollectionDTO]: ...
    async def upsert_payment_collections(
        self, data: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> PaymentCollectionDTO | list[PaymentCollectionDTO]:
        single, items = _batch(data, "payment collection")
        repo = self._repo(e.PAYMENT_COLLECTION)
        results: list[Row] = []
        dropped: list[Row] = []
        async with self.database.write() as conn:
            for item in items:
                existing = None
                if item.get("id"):
                    found = await repo.find(conn, {"id": item["id"]})
                    existing = found[0] if found else None
                if existing is not None:
                    values = self._collection_values(item, partial=True)
                    values.pop("id", None)
                    row, gone = await self._update_collection(conn, existing["id"], values)
                    dropped.extend(gone)
                    results.append(row)
                else:
                    created = (await repo.insert(conn, [self._collection_values(item)]))[0]
                    self._emit(conn, "payment-collection.created", created["id"], created["id"])
                    results.append(created)
        await self._drop_at_providers(dropped)
        dtos = [PaymentCollectionDTO.model_validate(r) for r in results]
        return dtos[0] if single else dtos

    async def delete_payment_collections(self, ids: str | Sequence[str]) -> None:
        """Hard delete, as Medusa's: sessions, payments, captures and refunds go with the collection,
        whatever they hold. To remove a collection nobody paid, `soft_delete_payment_collections`."""
        id_list = [ids] if isinstance(ids, str) else list(ids)
        async with self.database.write() as conn:
            for deleted in await self._repo(e.PAYMENT_COLLECTION).delete(conn, id_list):
                self._emit(conn, "payment-collection.deleted", deleted, deleted)

    async def soft_delete_payment_collections(self, ids: str | Sequence[str]) -> None:
        """Soft-deletes collections with their sessions (dropped at their providers too), under each
        collection's lock: refused while a collection has a payment that is not canceled, or an
        authorization in flight."""
        id_list = sorted([ids] if isinstance(ids, str) else set(ids))
        dropped: list[Row] = []
        async with self.database.write() as conn:
            for collection_id in id_list:
                facts = await self.ledger.lock_collection(conn, collection_id)
                if any(not p.canceled for p in facts.payments):
                    raise NotAllowedError(
                        f"Payment collection {collection_id} has a payment that is not canceled; "
                        "cancel it before deleting the collection."
                    )
                self._check_no_authorization_in_flight(facts)
                dropped.extend(
                    await self._soft_delete_sessions(conn, [s.id for s in facts.sessions], collection_id)
                )
                await self._recompute_collection(conn, collection_id, locked=True)
            await self._cascade_soft_delete(conn, id_list, restore=False)
            for id in id_list:
                self._emit(conn, "payment-collection.deleted", id, id)
        await self._drop_at_providers(dropped)

    async def restore_payment_collections(self, ids: str | Sequence[str]) -> None:
        id_list = [ids] if isinstance(ids, str) else list(ids)
        async with self.database.write() as conn:
            await self._cascade_soft_delete(conn, id_list, restore=True)
            for id in id_list:
                self._emit(conn, "payment-collection.restored", id, id)

    async def _cascade_soft_delete(self, conn: AsyncConnection, ids: list[str], *, restore: bool) -> None:
        now = None if restore else utc_now()
        state = (
            t.payment_collection.c.deleted_at.is_not(None)
            if restore
            else t.payment_collection.c.deleted_at.is_(None)
        )
        for table, column in (
            (t.payment_session, t.payment_session.c.payment_collection_id),
            (t.payment, t.payment.c.payment_collection_id),
        ):
            await conn.execute(update(table).where(column.in_(ids)).values(deleted_at=now))
        payment_ids = select(t.payment.c.id).where(t.payment.c.payment_collection_id.in_(ids))
        for table in (t.capture, t.refund):
            await conn.execute(
                update(table).where(table.c.payment_id.in_(payment_ids)).values(deleted_at=now)
            )
        await conn.execute(
            update(t.payment_collection)
            .where(t.payment_collection.c.id.in_(ids), state)
            .values(deleted_at=now)
        )

    @overload
    async def complete_payment_collections(self, ids: str) -> PaymentCollectionDTO: ...
    @overload
    async def complete_payment_collections(self, ids: list[str]) -> list[PaymentCollectionDTO]: ...
    async def complete_payment_collections(
        self, ids: str | Sequence[str]
    ) -> PaymentCollectionDTO | list[PaymentCollectionDTO]:
        """Stamps `completed_at` (Medusa's behaviour: no status change, no validation)."""
        id_list = [ids] if isinstance(ids, str) else list(ids)
        repo = self._repo(e.PAYMENT_COLLECTION)
        async with self.database.write() as conn:
            rows = [await repo.update(conn, i, {"completed_at": utc_now()}) for i in id_list]
            for row in rows:
                self._emit(conn, "payment-collection.updated", row["id"], row["id"])
        dtos = [PaymentCollectionDTO.model_validate(r) for r in rows]
        return dtos[0] if isinstance(ids, str) else dtos

    async def retrieve_payment_collection(self, id: str, config: Config = None) -> PaymentCollectionDTO:
        return await self._retrieve(e.PAYMENT_COLLECTION, PaymentCollectionDTO, id, config)

    async def list_payment_collections(
        self, filters: Filters | None = None, config: Config = None
    ) -> list[PaymentCollectionDTO]:
        return await self._list(e.PAYMENT_COLLECTION, PaymentCollectionDTO, filters, config)

    async def list_and_count_payment_collections(
        self, filters: Filters | None = None, config: Config = None
    ) -> tuple[list[PaymentCollectionDTO], int]:
        return await self._list_and_count(e.PAYMENT_COLLECTION, PaymentCollectionDTO, filters, config)

    # -- collection status ----------------------------------------------------------------
    async def _recompute_collection(
        self, conn: AsyncConnection, collection_id: str, *, locked: bool = False
    ) -> Row:
        """Re-derives status and totals under a lock on the collection row (serializes recomputes).

        `locked`: this transaction holds the collection's lock already (the facts are read again, as
        the transaction changed them since)."""
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
        values: dict[str, Any] = {
            "status": totals.status.value,
            "authorized_amount": totals.authorized_amount,
            "captured_amount": totals.captured_amount,
            "refunded_amount": totals.refunded_amount,
        }
        if totals.completed:
            values["completed_at"] = utc_now()
        self._emit(conn, "payment-collection.updated", collection_id, collection_id)
        return await self._repo(e.PAYMENT_COLLECTION).update(conn, collection_id, values)

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
                        data=dict(session["data"] or {}), context=_context(None, f"{session['id']}:delete")
                    )
                )
            except Exception:
                logging.getLogger("paymod").warning(
                    "the provider of payment session %s could not drop it", session["id"], exc_info=True
                )

    # -- payment sessions -----------------------------------------------------------------
    async def create_payment_session(
        self, payment_collection_id: str, data: Mapping[str, Any], *, replace: bool = False
    ) -> PaymentSessionDTO:
        """Creates a session and initiates the payment with its provider.

        The session id is minted first and is the provider's idempotency key; the row is written once
        the provider answered (a provider failure writes nothing), under the collection's lock, where
        what was checked before the call is checked again (otherwise the provider's side is undone).

        `replace`: the store's checkout (Medusa's create-payment-sessions). The session is for the
        collection's amount (unless `amount` is given) and replaces its other sessions in the same
        transaction; refused while the collection has a payment that is not canceled, or an
        authorization in flight. A session another request created meanwhile, or an amount changed
        meanwhile, makes this request a 409 `conflict`: racing requests leave exactly one session.
        """
        data = _as_mapping(data, "payment session")
        provider_id = _required(data, "PaymentSession", "provider_id")
        provider = self.provider(provider_id)
        # The store's checkout pays the collection in its own currency.
        currency_code = (
            None
            if replace and data.get("currency_code") is None
            else _currency(_required(data, "PaymentSession", "currency_code"))
        )
        input_data = _optional_object(data, "data") or {}
        context = _optional_object(data, "context")
        metadata = _optional_object(data, "metadata")
        async with self.database.single() as conn:
            seen = await self.ledger.collection_facts(conn, payment_collection_id, provider_id)
        if seen is None:
            raise self._repo(e.PAYMENT_COLLECTION).not_found(payment_collection_id)
        if not seen.provider_enabled:
            raise NotAllowedError(f"Payment provider {provider_id} is not enabled.")
        currency_code = currency_code or seen.currency_code
        if replace and data.get("amount") is None:
            amount = seen.amount
        else:
            amount = _amount(_required(data, "PaymentSession", "amount"))
        self._check_session_currency(currency_code, seen.currency_code)
        if replace:
            self._check_replaceable(seen)
        session_id = str(data.get("id") or new_id(PAYMENT_SESSION))
        result = await provider.initiate_payment(
            InitiatePaymentInput(
                data={**input_data, "session_id": session_id},
                context=_context(context, session_id),
                amount=amount,
                currency_code=currency_code,
            )
        )
        status = PaymentSessionStatus(result.status or PaymentSessionStatus.PENDING)
        replaced: list[Row] = []
        try:
            async with self.database.write() as conn:
                facts = await self.ledger.lock_collection(conn, payment_collection_id)
                self._check_session_currency(currency_code, facts.currency_code)
                if replace:
                    self._check_replaceable(facts)
                    seen_ids = {s.id for s in seen.sessions}
                    if facts.amount != seen.amount or any(s.id not in seen_ids for s in facts.sessions):
                        raise ConflictError(
                            f"Payment collection {payment_collection_id} changed while this payment session "
                            "was being created (another request won the race). Retry the request."
                        )
                    replaced = await self._soft_delete_sessions(
                        conn, [s.id for s in facts.sessions], payment_collection_id
                    )
                rows = await self._repo(e.PAYMENT_SESSION).insert(
                    conn,
                    [
                        {
                            "id": session_id,
                            "payment_collection_id": payment_collection_id,
                            "provider_id": provider_id,
                            "amount": amount,
                            "currency_code": currency_code,
                            "data": {**input_data, **(result.data or {})},
                            "context": context,
                            "metadata": metadata,
                            "status": status.value,
                        }
                    ],
                )
                self._emit(conn, "payment-session.created", session_id, payment_collection_id)
                await self._recompute_collection(conn, payment_collection_id, locked=True)
        except BaseException:
            # Unlike Medusa, the provider gets its own data back, so it can cancel what it created.
            await self._quietly(provider.delete_payment(ProviderInput(data=dict(result.data or {}))))
            raise
        await self._drop_at_providers(replaced)
        return PaymentSessionDTO.model_validate(rows[0])

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
            logging.getLogger("paymod").warning("compensation failed", exc_info=True)

    async def update_payment_session(self, data: Mapping[str, Any]) -> PaymentSessionDTO:
        """Updates amount, currency, data, status, context or metadata through the provider.

        The provider sees the stored data merged with the new data (Medusa sends only the new data).
        The row is written under the collection's lock, refused if the session was authorized, or
        is being authorized, meanwhile.
        """
        data = _as_mapping(data, "payment session")
        session_id = _required(data, "PaymentSession", "id")
        async with self.database.read() as conn:
            session = await self._repo(e.PAYMENT_SESSION).get(conn, session_id)
            collection = await self._repo(e.PAYMENT_COLLECTION).get(conn, session["payment_collection_id"])
            has_payment = await self._repo(e.PAYMENT).count(conn, {"payment_session_id": session_id}) > 0
        if has_payment:
            raise NotAllowedError(f"Payment session {session_id} is authorized and cannot be updated.")
        currency_code = (
            _currency(data["currency_code"]) if data.get("currency_code") else session["currency_code"]
        )
        self._check_session_currency(currency_code, collection["currency_code"])
        amount = _amount(data["amount"]) if data.get("amount") is not None else session["amount"]
        status = None
        if data.get("status") is not None:
            try:
                status = PaymentSessionStatus(data["status"])
            except ValueError:
                raise InvalidDataError(f"Invalid payment session status {data['status']!r}") from None
        context = _optional_object(data, "context")
        merged = {**session["data"], **(_optional_object(data, "data") or {})}
        result = await self.provider(session["provider_id"]).update_payment(
            UpdatePaymentInput(
                data=merged,
                # Each update is its own operation at the provider (Stripe replays a key's first answer).
                context=_context(
                    context or session["context"],
                    _optional_text(data, "idempotency_key") or f"{session_id}:update:{ULID()}",
                ),
                amount=amount,
                currency_code=currency_code,
            )
        )
        values: dict[str, Any] = {
            "amount": amount,
            "currency_code": currency_code,
            "data": result.data if result.data is not None else merged,
            "status": (status or result.status or PaymentSessionStatus(session["status"])).value,
        }
        if context is not None:
            values["context"] = context
        if "metadata" in data:
            values["metadata"] = _optional_object(data, "metadata")
        async with self.database.write() as conn:
            facts = await self.ledger.lock_collection(conn, session["payment_collection_id"])
            current = facts.session(session_id)
            if current is None:
                raise self._repo(e.PAYMENT_SESSION).not_found(session_id)
            if facts.live_payment_of(session_id) is not None or current.authorizing:
                raise ConflictError(
                    f"Payment session {session_id} was authorized, or is being authorized, while it was "
                    "being updated."
                )
            self._check_session_currency(currency_code, facts.currency_code)
            row = await self._repo(e.PAYMENT_SESSION).update(conn, session_id, values)
            self._emit(conn, "payment-session.updated", session_id, row["payment_collection_id"])
            await self._recompute_collection(conn, row["payment_collection_id"], locked=True)
        return PaymentSessionDTO.model_validate(row)

    async def delete_payment_session(self, id: str) -> None:
        """Deletes a session (soft: its row stays for the payments that may point at it) and asks its
        provider to drop the payment. Refused while the session has a payment that is not canceled, or
        is being authorized; the provider's part is best effort, after the deletion committed."""
        async with self.database.single() as conn:
            session = await self._repo(e.PAYMENT_SESSION).get(conn, id)
        collection_id = session["payment_collection_id"]
        async with self.database.write() as conn:
            facts = await self.ledger.lock_collection(conn, collection_id)
            current = facts.session(id)
            if current is None:
                raise self._repo(e.PAYMENT_SESSION).not_found(id)
            if facts.live_payment_of(id) is not None:
                raise NotAllowedError(f"Payment session {id} has an active payment and cannot be deleted.")
            if current.authorizing:
                raise ConflictError(f"Payment session {id} is being authorized. Retry once it finished.")
            dropped = await self._soft_delete_sessions(conn, [id], collection_id)
            await self._recompute_collection(conn, collection_id, locked=True)
        await self._drop_at_providers(dropped)

    async def record_payment_session_status(self, id: str, status: str) -> PaymentSessionDTO:
        """Records what a provider reported about a session (a webhook), without calling it back.

        An authorized session keeps its status: a late `failed` or `requires_more` changes nothing.
        """
        try:
            new_status = PaymentSessionStatus(status)
        except ValueError:
            raise InvalidDataError(f"Invalid payment session status {status!r}") from None
        sessions = self._repo(e.PAYMENT_SESSION)
        async with self.database.write() as conn:
            session = await sessions.get(conn, id, lock=True)
            if session["authorized_at"] is None and session["status"] != new_status.value:
                session = await sessions.update(conn, id, {"status": new_status.value})
                self._emit(conn, "payment-session.updated", id, session["payment_collection_id"])
        return PaymentSessionDTO.model_validate(session)

    async def retrieve_payment_session(self, id: str, config: Config = None) -> PaymentSessionDTO:
        return await self._retrieve(e.PAYMENT_SESSION, PaymentSessionDTO, id, config)

    async def list_payment_sessions(
        self, filters: Filters | None = None, config: Config = None
    ) -> list[PaymentSessionDTO]:
        return await self._list(e.PAYMENT_SESSION, PaymentSessionDTO, filters, config)

    async def list_and_count_payment_sessions(
        self, filters: Filters | None = None, config: Config = None
    ) -> tuple[list[PaymentSessionDTO], int]:
        return await self._list_and_count(e.PAYMENT_SESSION, PaymentSessionDTO, filters, config)

    # -- authorization --------------------------------------------------------------------
    @measured_flow("authorize", outcome=lambda payment: "pending" if payment is None else None)
    async def authorize_payment_session(
        self, id: str, context: Mapping[str, Any] | None = None
    ) -> PaymentDTO | None:
        """Authorizes a session with its provider and creates its payment.

        Idempotent: an authorized session returns its existing payment without a provider call.
        Returns None when the provider answers `pending_authorization`; raises `NotAllowedError` for
        any other non-authorized status, after recording it on the session.

        Under the collection's lock, first the session is claimed (the collection must be able to take
        its payment: the live payments, the authorizations in flight and this one stay within its
        amount), then the provider is asked, then the payment is written, checked again. A session
        deleted or replaced meanwhile, or a payment that no longer fits, is canceled at the provider.
        """
        if not isinstance(id, str) or not id:
            raise InvalidDataError("PaymentSession id must be a non-empty string")
        claimed = await self._claim_authorization(id)
        if isinstance(claimed, str):
            return await self.retrieve_payment(
                claimed, {"relations": ["captures", "refunds", "payment_session"]}
            )
        session = claimed
        provider = self.provider(session["provider_id"])
        try:
            result = await provider.authorize_payment(
                ProviderInput(data=dict(session["data"]), context=_context(context, id))
            )
        except RetryableProviderError:
            raise  # the provider may have authorized: the claim stays until it lapses
        except BaseException:
            await self._quietly(self._release_authorization(id))
            raise
        fault_point("after-provider-authorize")
        status = PaymentSessionStatus(result.status)
        data = dict(result.data if result.data is not None else session["data"])
        if status not in _AUTHORIZED:
            collection_id = session["payment_collection_id"]
            async with self.database.write() as conn:
                await self.ledger.lock_collection(conn, collection_id)
                await self._repo(e.PAYMENT_SESSION).update_where(
                    conn,
                    (t.payment_session.c.id == id) & t.payment_session.c.authorized_at.is_(None),
                    {"status": status.value, "data": data, "authorizing_until": None, "authorizing_by": None},
                )
                self._emit(conn, "payment-session.updated", id, collection_id)
                await self._recompute_collection(conn, collection_id, locked=True)
            if status == PaymentSessionStatus.PENDING_AUTHORIZATION:
                return None
            raise NotAllowedError(f"Session: {id} was not authorized with the provider.")
        try:
            recorded = await self._record_authorization(
                session, data, captured=status == PaymentSessionStatus.CAPTURED
            )
        except _Refused as refused:
            await self._quietly(
                provider.cancel_payment(ProviderInput(data=data, context=_context(context, f"{id}:cancel")))
            )
            raise refused.error from None
        except PaymodError:
            raise
        except Exception:
            await self._quietly(
                provider.cancel_payment(ProviderInput(data=data, context=_context(context, f"{id}:cancel")))
            )
            raise
        if isinstance(recorded, PaymentDTO):
            return recorded
        return await self.retrieve_payment(
            recorded, {"relations": ["captures", "refunds", "payment_session"]}
        )

    async def _claim_authorization(self, session_id: str) -> Row | str:
        """Claims the session for an authorization (under the collection's lock); the session row, or
        the id of its payment when it has one already."""
        async with self.database.single() as conn:
            found = await self.ledger.session_and_payment(conn, session_id)
        if found is None:
            raise self._repo(e.PAYMENT_SESSION).not_found(session_id)
        session, existing_id = found
        if existing_id is not None and session["authorized_at"] is not None:
            return existing_id
        table = t.payment_session
        async with self.database.write() as conn:
            facts = await self.ledger.lock_collection(conn, session["payment_collection_id"])
            current = facts.session(session_id)
            if current is None:
                raise self._repo(e.PAYMENT_SESSION).not_found(session_id)
            live = facts.live_payment_of(session_id)
            if live is not None:
                return live.id
            self._check_payment_fits(facts, current)
            now = utc_now()
            claimed = await conn.execute(
                update(table)
                .where(table.c.id == session_id)
                .values(authorizing_until=now + AUTHORIZATION_CLAIM, authorizing_by=self.process_id)
                .returning(*table.c)
            )
            return dict(claimed.mappings().one())

    @staticmethod
    def _check_payment_fits(facts: CollectionFacts, session: rules.SessionFacts) -> None:
        rules.check_payment_fits(
            collection_id=facts.id,
            collection_amount=facts.amount,
            currency_code=facts.currency_code,
            payments=facts.payments,
            in_flight=[s.amount for s in facts.sessions if s.authorizing and s.id != session.id],
            amount=session.amount,
        )

    async def _release_authorization(self, session_id: str) -> None:
        table = t.payment_session
        async with self.database.write() as conn:
            await conn.execute(
                update(table)
                .where(table.c.id == session_id, table.c.authorizing_by == self.process_id)
                .values(authorizing_until=None, authorizing_by=None)
            )

    async def _record_authorization(
        self, session: Row, data: dict[str, Any], *, captured: bool
    ) -> PaymentDTO | str:
        """Marks the session authorized and writes its payment, once, under the collection's lock.

        Returns the new payment (built from the rows written) or, when the session had a payment
        already (a concurrent authorization won), that payment's id. Raises `_Refused` when the
        session was deleted or replaced meanwhile, or its payment no longer fits the collection."""
        session_id = session["id"]
        collection_id = session["payment_collection_id"]
        try:
            async with self.database.write() as conn:
                facts = await self.ledger.lock_collection(conn, collection_id)
                live = facts.live_payment_of(session_id)
                if live is not None:
                    return live.id
                current = facts.session(session_id)
                if current is None:
                    raise _Refused(
                        ConflictError(
                            f"Payment session {session_id} was deleted or replaced while it was being "
                            "authorized; the authorization was canceled."
                        )
                    )
                try:
                    self._check_payment_fits(facts, current)
                except NotAllowedError as exc:
                    raise _Refused(exc) from None
                now = utc_now()
                locked = await self.ledger.authorize_session(conn, session_id, data, now)
                if locked is None:
                    return await self._live_payment_id(conn, session_id)
                payment = (
                    await self._repo(e.PAYMENT).insert(
                        conn,
                        [
                            {
                                # A payment holds what the provider can move: whole minor units.
                                "amount": round_amount(locked["amount"], locked["currency_code"]),
                                "currency_code": locked["currency_code"],
                                "provider_id": locked["provider_id"],
                                "payment_collection_id": collection_id,
                                "payment_session_id": session_id,
                                "data": data,
                                "captured_at": now if captured else None,
                            }
                        ],
                    )
                )[0]
                self._emit(conn, "payment-session.updated", session_id, collection_id)
                self._emit(conn, "payment.created", payment["id"], collection_id)
                captures: list[Row] = []
                if captured:
                    # The provider captured on authorization: book it without asking it to capture again.
                    captures = await self._repo(e.CAPTURE).insert(
                        conn, [{"payment_id": payment["id"], "amount": payment["amount"]}]
                    )
                    self._emit(conn, "capture.created", captures[0]["id"], collection_id)
                    self._emit(conn, "captured", payment["id"], collection_id)
                await self._recompute_collection(conn, collection_id, locked=True)
            return PaymentDTO.model_validate(
                {**payment, "captures": captures, "refunds": [], "payment_session": locked}
            )
        except DuplicateError:
            # A concurrent authorization of the same session won the unique index: return its payment.
            async with self.database.single() as conn:
                return await self._live_payment_id(conn, session_id)

    async def _live_payment_id(self, conn: AsyncConnection, session_id: str) -> str:
        found = await self.ledger.session_and_payment(conn, session_id)
        if found is None:
            raise self._repo(e.PAYMENT_SESSION).not_found(session_id)
        if found[1] is None:
            raise ConflictError(f"Payment session {session_id} changed while it was being authorized.")
        return found[1]

    # -- payments -------------------------------------------------------------------------
    async def retrieve_payment(self, id: str, config: Config = None) -> PaymentDTO:
        return await self._retrieve(e.PAYMENT, PaymentDTO, id, config)

    async def list_payments(self, filters: Filters | None = None, config: Config = None) -> list[PaymentDTO]:
        return await self._list(e.PAYMENT, PaymentDTO, filters, config)

    async def list_and_count_payments(
        self, filters: Filters | None = None, config: Config = None
    ) -> tuple[list[PaymentDTO], int]:
        return await self._list_and_count(e.PAYMENT, PaymentDTO, filters, config)

    async def update_payment(self, data: Mapping[str, Any]) -> PaymentDTO:
        """Updates a payment's `metadata` (no provider call)."""
        data = _as_mapping(data, "payment")
        payment_id = _required(data, "Payment", "id")
        unknown = set(data) - {"id", "metadata"}
        if unknown:
            raise InvalidDataError(f"Unknown payment field(s): {', '.join(sorted(unknown))}")
        repo = self._repo(e.PAYMENT)
        async with self.database.write() as conn:
            if "metadata" in data:
                row = await repo.update(conn, payment_id, {"metadata": _optional_object(data, "metadata")})
            else:
                row = await repo.get(conn, payment_id)
            self._emit(conn, "payment.updated", payment_id, row["payment_collection_id"])
        return PaymentDTO.model_validate(row)

    # Capture, refund and cancel are durable flows (paymod.durable.engine): each books its row under
    # the payment's lock (one transaction with its recovery point), calls the provider with a key that
    # survives a crash, then records the outcome. A retry with the same `idempotency_key` replays the
    # result or resumes the run; without a key, each call is a new run (the reconciler still sees it).

    def _flows(self) -> dict[str, Workflow]:
        return {
            "capture-payment": Workflow(
                "capture-payment",
                [
                    Step("book-capture", self._book_capture, self._unbook_capture, local=True),
                    Step("provider-capture", self._provider_capture),
                    Step("finish-capture", self._finish_capture, local=True),
                ],
            ),
            "refund-payment": Workflow(
                "refund-payment",
                [
                    Step("book-refund", self._book_refund, self._unbook_refund, local=True),
                    Step("provider-refund", self._provider_refund),
                    Step("finish-refund", self._finish_refund, local=True),
                ],
            ),
            "cancel-payment": Workflow(
                "cancel-payment",
                [
                    Step("book-cancel", self._book_cancel, self._unbook_cancel, local=True),
                    Step("provider-cancel", self._provider_cancel),
                    Step("finish-cancel", self._finish_cancel, local=True),
                ],
            ),
        }

    async def _run_flow(
        self,
        name: str,
        input: dict[str, Any],
        key: str | None,
        *,
        implicit_key: str | None = None,
        scratch: dict[str, Any] | None = None,
    ) -> Any:
        """Runs a flow under the caller's key (None: a new run); under an implicit key (one cancel per
        payment), a concurrent caller waits for the running flow instead of getting a conflict."""
        if key is not None or implicit_key is None:
            return await self.runner.run(self.flows[name], input, key=key, scratch=scratch)
        for attempt in range(50):
            try:
                return await self.runner.run(self.flows[name], input, key=implicit_key, scratch=scratch)
            except ConflictError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        raise AssertionError("unreachable")

    async def _run_payment_flow(self, name: str, input: dict[str, Any], key: str | None) -> PaymentDTO:
        """Runs a capture or refund flow; the payment with its captures and refunds as the flow left
        it, or as stored when the run was replayed or finished by another call."""
        scratch: dict[str, Any] = {}
        await self._run_flow(name, input, key, scratch=scratch)
        if "result" in scratch:
            return PaymentDTO.model_validate(scratch["result"])
        return await self.retrieve_payment(input["payment_id"], {"relations": ["captures", "refunds"]})

    @staticmethod
    def _conn(ctx: StepContext) -> AsyncConnection:
        assert ctx.conn is not None, "a local step runs in a transaction"
        return ctx.conn

    async def capture_payment(self, data: Mapping[str, Any]) -> PaymentDTO:
        """Captures `amount` (default: what remains) of an authorized payment; returns the payment with
        its captures and refunds.

        The guard runs under a row lock on the payment and books the capture before the provider
        is called (so concurrent captures see it); a provider refusal removes it again. The provider
        is told the amount, with the capture's id as its idempotency key, which a resumed run reuses.

        `captured_total` (paymod's, for provider webhooks) asks for the payment's captures to add up
        to that total, computed under the lock: replaying the same report captures nothing twice.
        `remaining_capturable` (idem) says what the provider still holds: 0 closes the payment.

        When the provider answers that nothing stays capturable after a partial capture (Stripe
        without multicapture releases the rest), the payment is closed: `released_amount` records what
        was released and the payment is canceled for the rest, so the collection reads
        `partially_captured`.
        """
        data = _as_mapping(data, "capture")
        payment_id = _required(data, "Payment", "payment_id")
        requested = None if data.get("amount") is None else _amount(data["amount"], signed=True)
        captured_total = None if data.get("captured_total") is None else _amount(data["captured_total"])
        remaining = data.get("remaining_capturable")
        remaining = None if remaining is None else _amount(remaining)
        input = {
            "payment_id": payment_id,
            "amount": None if requested is None else str(requested),
            "captured_total": None if captured_total is None else str(captured_total),
            "remaining_capturable": None if remaining is None else str(remaining),
            "captured_by": _optional_text(data, "captured_by") or _optional_text(data, "created_by"),
            "is_captured": bool(data.get("is_captured", False)),
        }
        return await self._run_payment_flow("capture-payment", input, _optional_text(data, "idempotency_key"))

    async def _book_capture(self, ctx: StepContext) -> dict[str, Any]:
        conn, input = self._conn(ctx), ctx.input
        payment_id = input["payment_id"]
        locked = await self.ledger.lock_payment(conn, payment_id)
        payment, captured = locked.row, locked.captures
        ctx.scratch["payment"] = payment
        requested = None if input["amount"] is None else Decimal(input["amount"])
        closes = input.get("remaining_capturable") is not None and Decimal(input["remaining_capturable"]) == 0
        if input["captured_total"] is not None:
            # The provider reports what it moved (whole minor units), and may report more than was
            # authorized to us: never book past the amount.
            currency = payment["currency_code"]
            reported = round_amount(Decimal(input["captured_total"]), currency)
            requested = min(reported, round_amount(payment["amount"], currency)) - rules.total(captured)
            if requested <= 0:
                return self._noop_capture(payment, captured, closes)
        plan = rules.plan_capture(
            payment_id=payment_id,
            payment_amount=payment["amount"],
            currency_code=payment["currency_code"],
            captured=captured,
            requested=requested,
            canceled=payment["canceled_at"] is not None,
            already_fully_captured=payment["captured_at"] is not None,
        )
        if plan is None:
            return self._noop_capture(payment, captured, closes)
        capture = await self._repo(e.CAPTURE).insert(
            conn, [{"payment_id": payment_id, "amount": plan.amount, "created_by": input["captured_by"]}]
        )
        return {
            "noop": False,
            "close": closes,
            "capture_id": capture[0]["id"],
            "amount": str(plan.amount),
            "captured_after": str(rules.total(captured) + plan.amount),
            "payment_amount": str(round_amount(payment["amount"], payment["currency_code"])),
            "fully_captured": plan.fully_captured,
            "provider_id": payment["provider_id"],
            "currency_code": payment["currency_code"],
            "data": payment["data"],
            "payment_collection_id": payment["payment_collection_id"],
        }

    @staticmethod
    def _noop_capture(payment: Row, captured: Sequence[Decimal], closes: bool) -> dict[str, Any]:
        """Nothing to book; a provider that closed the authorization still closes the payment."""
        if not closes or payment["captured_at"] is not None or payment["canceled_at"] is not None:
            return {"noop": True}
        return {
            "noop": True,
            "close": True,
            "captured_after": str(rules.total(captured)),
            "payment_amount": str(round_amount(payment["amount"], payment["currency_code"])),
            "fully_captured": False,
            "payment_collection_id": payment["payment_collection_id"],
        }

    async def _unbook_capture(self, ctx: StepContext, booked: Any) -> None:
        if booked and not booked["noop"]:
            async with self.database.write() as conn:
                await self._repo(e.CAPTURE).delete(conn, [booked["capture_id"]])

    async def _provider_capture(self, ctx: StepContext) -> dict[str, Any]:
        booked = ctx.outputs["book-capture"]
        if booked["noop"] or ctx.input["is_captured"]:
            return {"data": None}
        result = await self.provider(booked["provider_id"]).capture_payment(
            CapturePaymentInput(
                data=dict(booked["data"] or {}),
                context=_context(None, booked["capture_id"], resumed=ctx.resumed),
                amount=Decimal(booked["amount"]),
                currency_code=booked["currency_code"],
            )
        )
        remaining = result.remaining_capturable if isinstance(result, CapturePaymentOutput) else None
        return {"data": result.data, "remaining_capturable": None if remaining is None else str(remaining)}

    async def _finish_capture(self, ctx: StepContext) -> str:
        conn, booked = self._conn(ctx), ctx.outputs["book-capture"]
        payment_id = ctx.input["payment_id"]
        provider = ctx.outputs["provider-capture"]
        remaining = provider.get("remaining_capturable")
        closes = booked.get("close", False) or (remaining is not None and Decimal(remaining) == 0)
        if booked["noop"] and not closes:
            return str(payment_id)
        values: dict[str, Any] = {}
        provider_data = provider["data"]
        if provider_data is not None and provider_data != booked.get("data"):
            values["data"] = provider_data
        if booked["fully_captured"]:
            values["captured_at"] = utc_now()
        elif closes:
            # The provider released what was not captured: the payment is closed, canceled for the rest.
            values["released_amount"] = Decimal(booked["payment_amount"]) - Decimal(booked["captured_after"])
            values["canceled_at"] = utc_now()
        if booked["noop"]:
            updated = await self._repo(e.PAYMENT).update_where(
                conn,
                (t.payment.c.id == payment_id)
                & t.payment.c.captured_at.is_(None)
                & t.payment.c.canceled_at.is_(None),
                values,
            )
            collection_id = booked["payment_collection_id"]
            if updated:
                self._emit(conn, "payment.updated", payment_id, collection_id)
                await self._recompute_collection(conn, collection_id)
            return str(payment_id)
        payment = ctx.scratch.get("payment")
        if values:
            updated = await self._repo(e.PAYMENT).update_where(
                conn, (t.payment.c.id == payment_id) & t.payment.c.captured_at.is_(None), values
            )
            payment = updated[0] if updated else None
        collection_id = booked["payment_collection_id"]
        self._emit(conn, "capture.created", booked["capture_id"], collection_id)
        self._emit(conn, "captured", payment_id, collection_id)
        await self._recompute_collection(conn, collection_id)
        await self._hand_back(ctx, conn, payment)
        return str(payment_id)

    async def _hand_back(self, ctx: StepContext, conn: AsyncConnection, payment: Row | None) -> None:
        """Leaves the payment as this flow wrote it, with its captures and refunds, for the caller (read
        in the flow's last transaction, so the caller does not read it again)."""
        if payment is None:
            return  # resumed in another call, or changed by a concurrent one: the caller reads it
        captures, refunds = await self.ledger.movements(conn, payment["id"])
        ctx.scratch["result"] = {**payment, "captures": captures, "refunds": refunds}

    async def refund_payment(self, data: Mapping[str, Any]) -> PaymentDTO:
        """Refunds `amount` (default: what remains refundable) of a captured payment; returns the payment
        with its captures and refunds.

        The amount is in whole minor units of the currency, and never more than what was captured
        and not yet refunded (compared at the currency's precision).
        """
        data = _as_mapping(data, "refund")
        payment_id = _required(data, "Payment", "payment_id")
        requested = None if data.get("amount") is None else _amount(data["amount"], signed=True)
        input = {
            "payment_id": payment_id,
            "amount": None if requested is None else str(requested),
            "refund_reason_id": _optional_text(data, "refund_reason_id"),
            "note": _optional_text(data, "note"),
            "created_by": _optional_text(data, "created_by"),
            "metadata": _optional_object(data, "metadata"),
        }
        return await self._run_payment_flow("refund-payment", input, _optional_text(data, "idempotency_key"))

    async def _book_refund(self, ctx: StepContext) -> dict[str, Any]:
        conn, input = self._conn(ctx), ctx.input
        payment_id = input["payment_id"]
        locked = await self.ledger.lock_payment(conn, payment_id)
        payment = locked.row
        ctx.scratch["payment"] = payment
        reason = None
        if input["refund_reason_id"] is not None:
            reason = await self._repo(e.REFUND_REASON).get(conn, input["refund_reason_id"])
        amount = rules.plan_refund(
            currency_code=payment["currency_code"],
            captured=locked.captures,
            refunded=locked.refunds,
            requested=None if input["amount"] is None else Decimal(input["amount"]),
        )
        refund = await self._repo(e.REFUND).insert(
            conn,
            [
                {
                    "payment_id": payment_id,
                    "amount": amount,
                    "refund_reason_id": input["refund_reason_id"],
                    "note": input["note"],
                    "created_by": input["created_by"],
                    "metadata": input["metadata"],
                }
            ],
        )
        return {
            "refund_id": refund[0]["id"],
            "amount": str(amount),
            "reason": reason["code"] if reason else None,
            "provider_id": payment["provider_id"],
            "currency_code": payment["currency_code"],
            "data": payment["data"],
            "payment_collection_id": payment["payment_collection_id"],
        }

    async def _unbook_refund(self, ctx: StepContext, booked: Any) -> None:
        if booked:
            async with self.database.write() as conn:
                await self._repo(e.REFUND).delete(conn, [booked["refund_id"]])

    async def _provider_refund(self, ctx: StepContext) -> dict[str, Any]:
        booked = ctx.outputs["book-refund"]
        result = await self.provider(booked["provider_id"]).refund_payment(
            RefundPaymentInput(
                data=dict(booked["data"] or {}),
                context=_context(None, booked["refund_id"], resumed=ctx.resumed),
                amount=Decimal(booked["amount"]),
                currency_code=booked["currency_code"],
                reason=booked["reason"],
                note=ctx.input["note"],
            )
        )
        return {"data": result.data}

    async def _finish_refund(self, ctx: StepContext) -> str:
        conn, booked = self._conn(ctx), ctx.outputs["book-refund"]
        payment_id = ctx.input["payment_id"]
        provider_data = ctx.outputs["provider-refund"]["data"]
        payment = ctx.scratch.get("payment")
        if provider_data is not None and provider_data != booked["data"]:
            payment = await self._repo(e.PAYMENT).update(conn, payment_id, {"data": provider_data})
        collection_id = booked["payment_collection_id"]
        self._emit(conn, "refund.created", booked["refund_id"], collection_id)
        self._emit(conn, "refunded", payment_id, collection_id)
        await self._recompute_collection(conn, collection_id)
        await self._hand_back(ctx, conn, payment)
        return str(payment_id)

    async def cancel_payment(self, id: str, *, idempotency_key: str | None = None) -> PaymentDTO:
        """Cancels a payment that is not fully captured, and updates its collection (unlike Medusa).

        The cancel is booked under the payment's lock before the provider is called, so a capture
        racing it either comes first (and a full capture makes the cancel fail) or sees the payment
        canceled; a provider refusal un-books it. A payment is canceled once: its run is keyed by it.
        """
        if not isinstance(id, str) or not id:
            raise InvalidDataError("Payment id must be a non-empty string")
        await self._run_flow(
            "cancel-payment", {"payment_id": id}, idempotency_key, implicit_key=f"cancel:{id}"
        )
        return await self.retrieve_payment(id)

    async def _book_cancel(self, ctx: StepContext) -> dict[str, Any]:
        conn, id = self._conn(ctx), ctx.input["payment_id"]
        locked = await self.ledger.lock_payment(conn, id)
        payment = locked.row
        if payment["canceled_at"] is not None:
            return {"noop": True}
        rules.check_cancel(
            payment_id=id,
            payment_amount=payment["amount"],
            currency_code=payment["currency_code"],
            captured=locked.captures,
            already_fully_captured=payment["captured_at"] is not None,
        )
        await self._repo(e.PAYMENT).update(conn, id, {"canceled_at": utc_now()})
        await self._recompute_collection(conn, payment["payment_collection_id"])
        return {
            "noop": False,
            "provider_id": payment["provider_id"],
            "data": payment["data"],
            "payment_collection_id": payment["payment_collection_id"],
        }

    async def _unbook_cancel(self, ctx: StepContext, booked: Any) -> None:
        if booked and not booked["noop"]:
            async with self.database.write() as conn:
                await self._repo(e.PAYMENT).update(conn, ctx.input["payment_id"], {"canceled_at": None})
                await self._recompute_collection(conn, booked["payment_collection_id"])

    async def _provider_cancel(self, ctx: StepContext) -> dict[str, Any]:
        booked = ctx.outputs["book-cancel"]
        if booked["noop"]:
            return {"data": None}
        id = ctx.input["payment_id"]
        result = await self.provider(booked["provider_id"]).cancel_payment(
            ProviderInput(
                data=dict(booked["data"] or {}), context=_context(None, f"{id}:cancel", resumed=ctx.resumed)
            )
        )
        return {"data": result.data}

    async def _finish_cancel(self, ctx: StepContext) -> str:
        conn, id = self._conn(ctx), ctx.input["payment_id"]
        if ctx.outputs["book-cancel"]["noop"]:
            return str(id)
        provider_data = ctx.outputs["provider-cancel"]["data"]
        row = (
            await self._repo(e.PAYMENT).update(conn, id, {"data": provider_data})
            if provider_data is not None
            else await self._repo(e.PAYMENT).get(conn, id)
        )
        self._emit(conn, "payment.updated", id, row["payment_collection_id"])
        return str(id)

    # -- captures, refunds ----------------------------------------------------------------
    async def retrieve_capture(self, id: str, config: Config = None) -> CaptureDTO:
        return await self._retrieve(e.CAPTURE, CaptureDTO, id, config)

    async def list_captures(self, filters: Filters | None = None, config: Config = None) -> list[CaptureDTO]:
        return await self._list(e.CAPTURE, CaptureDTO, filters, config)

    async def list_and_count_captures(
        self, filters: Filters | None = None, config: Config = None
    ) -> tuple[list[CaptureDTO], int]:
        return await self._list_and_count(e.CAPTURE, CaptureDTO, filters, config)

    async def retrieve_refund(self, id: str, config: Config = None) -> RefundDTO:
        return await self._retrieve(e.REFUND, RefundDTO, id, config)

    async def list_refunds(self, filters: Filters | None = None, config: Config = None) -> list[RefundDTO]:
        return await self._list(e.REFUND, RefundDTO, filters, config)

    async def list_and_count_refunds(
        self, filters: Filters | None = None, config: Config = None
    ) -> tuple[list[RefundDTO], int]:
        return await self._list_and_count(e.REFUND, RefundDTO, filters, config)

    # -- refund reasons -------------------------------------------------------------------
    def _refund_reason_values(self, data: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
        unknown = set(data) - {"id", "label", "code", "description", "metadata"}
        if unknown:
            raise InvalidDataError(f"Unknown refund reason field(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for field in ("label", "code"):
            if not partial or field in data:
                value = _required(data, "RefundReason", field)
                if not isinstance(value, str):
                    raise InvalidDataError(f"{field} must be a string")
                values[field] = value
        if "description" in data:
            values["description"] = _optional_text(data, "description")
        if "metadata" in data:
            values["metadata"] = _optional_object(data, "metadata")
        if data.get("id") and not partial:
            values["id"] = str(data["id"])
        return values

    @overload
    async def create_refund_reasons(self, data: Mapping[str, Any]) -> RefundReasonDTO: ...
    @overload
    async def create_refund_reasons(self, data: Sequence[Mapping[str, Any]]) -> list[RefundReasonDTO]: ...
    async def create_refund_reasons(
        self, data: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> RefundReasonDTO | list[RefundReasonDTO]:
        single, items = _batch(data, "refund reason")
        rows = [self._refund_reason_values(i, partial=False) for i in items]
        async with self.database.write() as conn:
            created = await self._repo(e.REFUND_REASON).insert(conn, rows)
            for row in created:
                self._emit(conn, "refund-reason.created", row["id"])
        dtos = [RefundReasonDTO.model_validate(r) for r in created]
        return dtos[0] if single else dtos

    @overload
    async def update_refund_reasons(self, data: Mapping[str, Any]) -> RefundReasonDTO: ...
    @overload
    async def update_refund_reasons(self, data: Sequence[Mapping[str, Any]]) -> list[RefundReasonDTO]: ...
    async def update_refund_reasons(
        self, data: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> RefundReasonDTO | list[RefundReasonDTO]:
        single, items = _batch(data, "refund reason")
        repo = self._repo(e.REFUND_REASON)
        rows = []
        if items:
            async with self.database.write() as conn:
                for item in items:
                    reason_id = _required(item, "RefundReason", "id")
                    values = self._refund_reason_values(item, partial=True)
                    rows.append(
                        await repo.update(conn, reason_id, values)
                        if values
                        else await repo.get(conn, reason_id)
                    )
                    self._emit(conn, "refund-reason.updated", reason_id)
        dtos = [RefundReasonDTO.model_validate(r) for r in rows]
        return dtos[0] if single else dtos

    async def delete_refund_reasons(self, ids: str | Sequence[str]) -> None:
        await self._remove_refund_reasons(ids, "delete", "deleted")

    async def soft_delete_refund_reasons(self, ids: str | Sequence[str]) -> None:
        await self._remove_refund_reasons(ids, "soft_delete", "deleted")

    async def restore_refund_reasons(self, ids: str | Sequence[str]) -> None:
        await self._remove_refund_reasons(ids, "restore", "restored")

    async def _remove_refund_reasons(self, ids: str | Sequence[str], how: str, event: str) -> None:
        repo = self._repo(e.REFUND_REASON)
        async with self.database.write() as conn:
            done = await getattr(repo, how)(conn, [ids] if isinstance(ids, str) else list(ids))
            for id in done:
                self._emit(conn, f"refund-reason.{event}", id)

    async def retrieve_refund_reason(self, id: str, config: Config = None) -> RefundReasonDTO:
        return await self._retrieve(e.REFUND_REASON, RefundReasonDTO, id, config)

    async def list_refund_reasons(
        self, filters: Filters | None = None, config: Config = None
    ) -> list[RefundReasonDTO]:
        return await self._list(e.REFUND_REASON, RefundReasonDTO, filters, config)

    async def list_and_count_refund_reasons(
        self, filters: Filters | None = None, config: Config = None
    ) -> tuple[list[RefundReasonDTO], int]:
        return await self._list_and_count(e.REFUND_REASON, RefundReasonDTO, filters, config)

    # -- providers and regions ------------------------------------------------------------
    async def retrieve_payment_provider(self, id: str, config: Config = None) -> PaymentProviderDTO:
        return await self._retrieve(e.PAYMENT_PROVIDER, PaymentProviderDTO, id, config)

    async def list_payment_providers(
        self, filters: Filters | None = None, config: Config = None
    ) -> list[PaymentProviderDTO]:
        return (await self.list_and_count_payment_providers(filters, config))[0]

    async def list_and_count_payment_providers(
        self, filters: Filters | None = None, config: Config = None
    ) -> tuple[list[PaymentProviderDTO], int]:
        """Lists providers; a `region_id` filter keeps those enabled for that region."""
        filters = dict(filters or {})
        region_id = filters.pop("region_id", None)
        if region_id is not None:
            link = t.region_payment_provider
            region_ids = list(region_id) if isinstance(region_id, list | tuple) else [region_id]
            async with self.database.read() as conn:
                linked = (
                    await conn.execute(
                        select(link.c.payment_provider_id).where(link.c.region_id.in_(region_ids))
                    )
                ).scalars()
                linked_ids = sorted(set(linked))
            filters = {"$and": [filters, {"id": linked_ids}]} if filters else {"id": linked_ids}
        return await self._list_and_count(e.PAYMENT_PROVIDER, PaymentProviderDTO, filters, config)

    async def add_region_payment_providers(self, region_id: str, provider_ids: Sequence[str]) -> list[str]:
        """Enables providers for a region (`region_payment_provider`); returns the region's providers."""
        if not isinstance(region_id, str) or not region_id:
            raise InvalidDataError("region_id must be a non-empty string")
        link = t.region_payment_provider
        async with self.database.write() as conn:
            known = set(
                (
                    await conn.execute(
                        select(t.payment_provider.c.id).where(t.payment_provider.c.id.in_(provider_ids))
                    )
                ).scalars()
            )
            missing = [p for p in provider_ids if p not in known]
            if missing:
                raise NotFoundError(f"PaymentProvider with id: {', '.join(missing)} was not found")
            present = set(
                (
                    await conn.execute(
                        select(link.c.payment_provider_id).where(link.c.region_id == region_id)
                    )
                ).scalars()
            )
            new = [p for p in dict.fromkeys(provider_ids) if p not in present]
            if new:
                now = utc_now()
                await conn.execute(
                    insert(link),
                    [{"region_id": region_id, "payment_provider_id": p, "created_at": now} for p in new],
                )
            return sorted(present | set(new))

    async def remove_region_payment_providers(self, region_id: str, provider_ids: Sequence[str]) -> list[str]:
        link = t.region_payment_provider
        async with self.database.write() as conn:
            await conn.execute(
                link.delete().where(
                    link.c.region_id == region_id, link.c.payment_provider_id.in_(provider_ids)
                )
            )
            rows = await conn.execute(select(link.c.payment_provider_id).where(link.c.region_id == region_id))
            return sorted(rows.scalars())

    # -- account holders ------------------------------------------------------------------
    async def create_account_holder(self, data: Mapping[str, Any]) -> AccountHolderDTO | None:
        """Creates the customer's record at a provider, idempotently per (provider, customer).

        A second call for the same customer returns the existing holder, also when two calls race
        (Medusa fails on its unique index, #15593). None when the provider has no account holders.
        """
        data = _as_mapping(data, "account holder")
        provider_id = _required(data, "AccountHolder", "provider_id")
        context = _optional_object(data, "context") or {}
        if context.get("account_holder"):
            return AccountHolderDTO.model_validate(context["account_holder"])
        customer = context.get("customer")
        if not isinstance(customer, Mapping) or not customer.get("id"):
            raise InvalidDataError("Missing customer data while creating account holder.")
        customer_id = str(customer["id"])
        provider = self.provider(provider_id)
        holders = self._repo(e.ACCOUNT_HOLDER)
        async with self.database.read() as conn:
            found = await holders.find(conn, {"provider_id": provider_id, "customer_id": customer_id})
        if found:
            return AccountHolderDTO.model_validate(found[0])
        try:
            # The customer id keys the provider call, so a retry or a racing call gets the same record.
            result = await provider.create_account_holder(
                AccountHolderInput(context=_context(context, customer_id))
            )
        except NotImplementedError:
            return None
        if not result.id:
            return None
        table = t.account_holder
        now = utc_now()
        values = {
            "id": data.get("id") or new_id(ACCOUNT_HOLDER),
            "provider_id": provider_id,
            "external_id": result.id,
            "customer_id": customer_id,
            "email": customer.get("email"),
            "data": result.data or {},
            "metadata": _optional_object(data, "metadata"),
            "created_at": now,
            "updated_at": now,
        }
        dialect_insert = pg_insert if self.database.is_postgresql else sqlite_insert
        async with self.database.write() as conn:
            # A concurrent call may have written the holder first: keep its row.
            inserted = await conn.execute(dialect_insert(table).values(values).on_conflict_do_nothing())
            if inserted.rowcount:
                self._emit(conn, "account-holder.created", values["id"])
            rows = await holders.find(
                conn,
                {
                    "provider_id": provider_id,
                    "$or": [{"external_id": result.id}, {"customer_id": customer_id}],
                },
            )
        return AccountHolderDTO.model_validate(rows[0])

    async def update_account_holder(self, data: Mapping[str, Any]) -> AccountHolderDTO:
        data = _as_mapping(data, "account holder")
        holder_id = _required(data, "AccountHolder", "id")
        context = _optional_object(data, "context") or {}
        repo = self._repo(e.ACCOUNT_HOLDER)
        async with self.database.read() as conn:
            holder = await repo.get(conn, holder_id)
        context.setdefault("account_holder", AccountHolderDTO.model_validate(holder).model_dump(mode="json"))
        values: dict[str, Any] = {}
        try:
            result = await self.provider(holder["provider_id"]).update_account_holder(
                AccountHolderInput(
                    context=_context(
                        context, _optional_text(data, "idempotency_key") or f"{holder_id}:update:{ULID()}"
                    )
                )
            )
            if result.data:
                values["data"] = result.data
        except NotImplementedError:
            pass
        if "metadata" in data:
            values["metadata"] = _optional_object(data, "metadata")
        async with self.database.write() as conn:
            row = await repo.update(conn, holder_id, values) if values else await repo.get(conn, holder_id)
            self._emit(conn, "account-holder.updated", holder_id)
        return AccountHolderDTO.model_validate(row)

    async def delete_account_holder(self, id: str) -> None:
        repo = self._repo(e.ACCOUNT_HOLDER)
        async with self.database.read() as conn:
            holder = await repo.get(conn, id)
        with contextlib.suppress(NotImplementedError):
            await self.provider(holder["provider_id"]).delete_account_holder(
                AccountHolderInput(
                    context=_context(
                        {"account_holder": AccountHolderDTO.model_validate(holder).model_dump(mode="json")},
                        f"{id}:delete",
                    )
                )
            )
        async with self.database.write() as conn:
            await repo.delete(conn, [id])
            self._emit(conn, "account-holder.deleted", id)

    async def retrieve_account_holder(self, id: str, config: Config = None) -> AccountHolderDTO:
        return await self._retrieve(e.ACCOUNT_HOLDER, AccountHolderDTO, id, config)

    async def list_account_holders(
        self, filters: Filters | None = None, config: Config = None
    ) -> list[AccountHolderDTO]:
        return await self._list(e.ACCOUNT_HOLDER, AccountHolderDTO, filters, config)

    async def list_and_count_account_holders(
        self, filters: Filters | None = None, config: Config = None
    ) -> tuple[list[AccountHolderDTO], int]:
        return await self._list_and_count(e.ACCOUNT_HOLDER, AccountHolderDTO, filters, config)

    # -- payment methods (live at the provider) -------------------------------------------
    async def list_payment_methods(
        self, data: Mapping[str, Any], config: Config = None
    ) -> list[PaymentMethodDTO]:
        data = _as_mapping(data, "payment method filter")
        provider_id = _required(data, "PaymentMethod", "provider_id")
        context = _optional_object(data, "context") or {}
        try:
            found = await self.provider(provider_id).list_payment_methods(
                PaymentMethodInput(context=_context(context, None))
            )
        except NotImplementedError:
            return []
        return [PaymentMethodDTO(id=m.id, data=m.data, provider_id=provider_id) for m in found]

    async def list_and_count_payment_methods(
        self, data: Mapping[str, Any], config: Config = None
    ) -> tuple[list[PaymentMethodDTO], int]:
        methods = await self.list_payment_methods(data, config)
        return methods, len(methods)

    @overload
    async def create_payment_methods(self, data: Mapping[str, Any]) -> PaymentMethodDTO: ...
    @overload
    async def create_payment_methods(self, data: Sequence[Mapping[str, Any]]) -> list[PaymentMethodDTO]: ...
    async def create_payment_methods(
        self, data: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> PaymentMethodDTO | list[PaymentMethodDTO]:
        single, items = _batch(data, "payment method")
        results = []
        for item in items:
            provider_id = _required(item, "PaymentMethod", "provider_id")
            context = _optional_object(item, "context") or {}
            try:
                saved = await self.provider(provider_id).save_payment_method(
                    PaymentMethodInput(
                        data=_optional_object(item, "data") or {},
                        context=_context(context, _optional_text(item, "idempotency_key")),
                    )
                )
            except NotImplementedError:
                raise NotAllowedError(
                    f"Provider {provider_id} does not support saving payment methods"
                ) from None
            results.append(PaymentMethodDTO(id=saved.id, data=saved.data, provider_id=provider_id))
        return results[0] if single else results

    async def delete_payment_methods(self, data: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        for item in _batch(data, "payment method")[1]:
            provider_id = _required(item, "PaymentMethod", "provider_id")
            method_id = _required(item, "PaymentMethod", "id")
            context = _optional_object(item, "context") or {}
            try:
                await self.provider(provider_id).delete_payment_method(
                    PaymentMethodInput(
                        data={**(_optional_object(item, "data") or {}), "id": method_id},
                        context=_context(context, _optional_text(item, "idempotency_key")),
                    )
                )
            except NotImplementedError:
                raise NotAllowedError(
                    f"Provider {provider_id} does not support deleting payment methods"
                ) from None

    # -- webhooks -------------------------------------------------------------------------
    async def get_webhook_action_and_data(self, data: Mapping[str, Any]) -> WebhookActionAndData:
        """Verifies a provider's webhook and says what it asks for: `{action, data: {session_id, amount}}`."""
        data = _as_mapping(data, "webhook")
        provider = data.get("provider")
        if not isinstance(provider, str) or not provider:
            raise InvalidDataError("provider must be a non-empty string")
        payload = _optional_object(data, "payload") or {}
        raw = payload.get("raw_data", payload.get("rawData", b""))
        if isinstance(raw, str):
            raw = raw.encode()
        if not isinstance(raw, bytes | bytearray):
            raise InvalidDataError("payload.raw_data must be bytes")
        provider_id = self.providers.resolve_webhook_provider(provider)
        result = await self.provider(provider_id).get_webhook_action_and_data(
            WebhookPayload(
                data=payload.get("data") or {},
                raw_data=bytes(raw),
                headers={str(k): str(v) for k, v in (payload.get("headers") or {}).items()},
            )
        )
        # A provider's signature says who sent the event, not that its fields are sane: a signed event
        # with an amount of NaN or an id of 3 KB is refused here, before anything is stored.
        session_id = _webhook_text(result.session_id, "session id")
        event_id = _webhook_text(result.event_id, "event id")
        amount = None
        if result.amount is not None:
            try:
                amount = to_amount(result.amount, "amount")
            except AmountError as exc:
                raise InvalidDataError(f"The webhook's {exc}.", code="invalid_webhook") from None
        remaining = None
        if result.remaining_capturable is not None:
            try:
                remaining = to_amount(result.remaining_capturable, "remaining capturable amount")
            except AmountError as exc:
                raise InvalidDataError(f"The webhook's {exc}.", code="invalid_webhook") from None
        return WebhookActionAndData(
            action=PaymentAction(result.action).value,
            data=(
                WebhookActionData(session_id=session_id, amount=amount, remaining_capturable=remaining)
                if session_id
                else None
            ),
            event_id=event_id,
        )


__all__ = ["ModuleOptions", "PaymentModule"]
