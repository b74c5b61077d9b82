"""Refund reasons: CRUD, soft delete and restore."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, overload

from paymod.domain.errors import (
    InvalidDataError,
)
from paymod.persistence import entities as e
from paymod.services.core import Config, Filters, ModuleCore
from paymod.services.dto import (
    RefundReasonDTO,
)
from paymod.services.inputs import (
    batch,
    optional_object,
    optional_text,
    required,
)


class RefundReasonsMixin(ModuleCore):
    """Refund reasons (Medusa's `*RefundReasons` methods)."""

    def _refund_reason_values(self, data: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
        unknown = set(data) - {"id", "label", "code", "description", "metadata"}
        if unknown:
            raise InvalidDataError(f"Unknown refund reason field(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for field in ("label", "code"):
            if not partial or field in data:
                value = required(data, "RefundReason", field)
                if not isinstance(value, str):
                    raise InvalidDataError(f"{field} must be a string")
                values[field] = value
        if "description" in data:
            values["description"] = optional_text(data, "description")
        if "metadata" in data:
            values["metadata"] = optional_object(data, "metadata")
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
        single, items = batch(data, "refund reason")
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
        single, items = batch(data, "refund reason")
        repo = self._repo(e.REFUND_REASON)
        rows = []
        if items:
            async with self.database.write() as conn:
                for item in items:
                    reason_id = required(item, "RefundReason", "id")
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
