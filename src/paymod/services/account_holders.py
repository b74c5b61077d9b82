"""Account holders (the customer's record at a provider) and the payment methods saved with it."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, overload

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from ulid import ULID

from paymod.domain.errors import (
    InvalidDataError,
    NotAllowedError,
)
from paymod.domain.ids import ACCOUNT_HOLDER, new_id
from paymod.persistence import entities as e
from paymod.persistence import tables as t
from paymod.persistence.repository import utc_now
from paymod.providers.base import (
    AccountHolderInput,
    PaymentMethodInput,
)
from paymod.services.core import Config, Filters, ModuleCore
from paymod.services.dto import (
    AccountHolderDTO,
    PaymentMethodDTO,
)
from paymod.services.inputs import (
    as_mapping,
    batch,
    optional_object,
    optional_text,
    provider_context,
    required,
)


class AccountHoldersMixin(ModuleCore):
    """Account holders and saved payment methods (these live at the provider)."""

    async def create_account_holder(self, data: Mapping[str, Any]) -> AccountHolderDTO | None:
        """Creates the customer's record at a provider, idempotently per (provider, customer).

        A second call for the same customer returns the existing holder, also when two calls race
        (Medusa fails on its unique index, #15593). None when the provider has no account holders.
        """
        data = as_mapping(data, "account holder")
        provider_id = required(data, "AccountHolder", "provider_id")
        context = optional_object(data, "context") or {}
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
                AccountHolderInput(context=provider_context(context, customer_id))
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
            "metadata": optional_object(data, "metadata"),
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
        data = as_mapping(data, "account holder")
        holder_id = required(data, "AccountHolder", "id")
        context = optional_object(data, "context") or {}
        repo = self._repo(e.ACCOUNT_HOLDER)
        async with self.database.read() as conn:
            holder = await repo.get(conn, holder_id)
        context.setdefault("account_holder", AccountHolderDTO.model_validate(holder).model_dump(mode="json"))
        values: dict[str, Any] = {}
        try:
            result = await self.provider(holder["provider_id"]).update_account_holder(
                AccountHolderInput(
                    context=provider_context(
                        context, optional_text(data, "idempotency_key") or f"{holder_id}:update:{ULID()}"
                    )
                )
            )
            if result.data:
                values["data"] = result.data
        except NotImplementedError:
            pass
        if "metadata" in data:
            values["metadata"] = optional_object(data, "metadata")
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
                    context=provider_context(
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
        data = as_mapping(data, "payment method filter")
        provider_id = required(data, "PaymentMethod", "provider_id")
        context = optional_object(data, "context") or {}
        try:
            found = await self.provider(provider_id).list_payment_methods(
                PaymentMethodInput(context=provider_context(context, None))
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
        single, items = batch(data, "payment method")
        results = []
        for item in items:
            provider_id = required(item, "PaymentMethod", "provider_id")
            context = optional_object(item, "context") or {}
            try:
                saved = await self.provider(provider_id).save_payment_method(
                    PaymentMethodInput(
                        data=optional_object(item, "data") or {},
                        context=provider_context(context, optional_text(item, "idempotency_key")),
                    )
                )
            except NotImplementedError:
                raise NotAllowedError(
                    f"Provider {provider_id} does not support saving payment methods"
                ) from None
            results.append(PaymentMethodDTO(id=saved.id, data=saved.data, provider_id=provider_id))
        return results[0] if single else results

    async def delete_payment_methods(self, data: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        for item in batch(data, "payment method")[1]:
            provider_id = required(item, "PaymentMethod", "provider_id")
            method_id = required(item, "PaymentMethod", "id")
            context = optional_object(item, "context") or {}
            try:
                await self.provider(provider_id).delete_payment_method(
                    PaymentMethodInput(
                        data={**(optional_object(item, "data") or {}), "id": method_id},
                        context=provider_context(context, optional_text(item, "idempotency_key")),
                    )
                )
            except NotImplementedError:
                raise NotAllowedError(
                    f"Provider {provider_id} does not support deleting payment methods"
                ) from None
