"""Payment collections: create, update (amount and currency under the lock), delete, complete, read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, overload

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain import rules
from paymod.domain.errors import (
    InvalidDataError,
    NotAllowedError,
)
from paymod.domain.ids import PAYMENT_COLLECTION, new_id
from paymod.domain.statuses import PaymentCollectionStatus
from paymod.persistence import entities as e
from paymod.persistence import tables as t
from paymod.persistence.repository import Row, utc_now
from paymod.services.core import Config, Filters, ModuleCore
from paymod.services.dto import (
    PaymentCollectionDTO,
)
from paymod.services.inputs import (
    as_mapping,
    batch,
    optional_object,
    parse_amount,
    parse_currency,
    required,
)


class CollectionsMixin(ModuleCore):
    """Payment collections (Medusa's `*PaymentCollections` methods)."""

    @overload
    async def create_payment_collections(self, data: Mapping[str, Any]) -> PaymentCollectionDTO: ...
    @overload
    async def create_payment_collections(
        self, data: Sequence[Mapping[str, Any]]
    ) -> list[PaymentCollectionDTO]: ...
    async def create_payment_collections(
        self, data: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> PaymentCollectionDTO | list[PaymentCollectionDTO]:
        single, items = batch(data, "payment collection")
        rows = [self._collection_values(item) for item in items]
        for row in rows:
            row.setdefault("id", new_id(PAYMENT_COLLECTION))
        # One collection is one statement (its row and its event): atomic without a transaction.
        write = self.database.write_one if len(rows) == 1 else self.database.write
        async with write() as conn:
            created = []
            for row in rows:
                self._emit(conn, "payment-collection.created", row["id"], row["id"])
                try:
                    created.append(await self.ledger.create_collection(conn, row))
                except IntegrityError as exc:
                    raise self._repo(e.PAYMENT_COLLECTION).integrity_error(exc, [row]) from exc
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
            values["currency_code"] = parse_currency(required(data, "PaymentCollection", "currency_code"))
        if not partial or "amount" in data:
            values["amount"] = parse_amount(required(data, "PaymentCollection", "amount"))
        if "metadata" in data:
            values["metadata"] = optional_object(data, "metadata")
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
        values = self._collection_values(as_mapping(data, "update"), partial=True)
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
        single, items = batch(data, "payment collection")
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
