"""Admin routes for refund reasons (CRUD); a reason is named by its id or its code."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from paymod.domain.errors import InvalidDataError, NotFoundError
from paymod.http import fields as f
from paymod.http import schemas as s
from paymod.http.auth import Admin
from paymod.http.fields import Selection, listing
from paymod.http.json import JSONResponse
from paymod.http.routes.admin_params import CreatedAt, Ids, RefundReasonFields, RefundReasonPage
from paymod.http.routes.common import (
    READ,
    READ_ONE,
    WRITE,
    ModuleDep,
    document,
    filters_of,
    get_options,
    post_options,
    router,
    search_term,
)
from paymod.services.payment_module import PaymentModule

admin = router("/admin", "admin")


async def refund_reason_id(module: PaymentModule, id_or_code: str) -> str:
    """The id of the refund reason `id_or_code` names: its id, or else its code (as the CLI takes
    it). Codes are not unique: a code several live reasons share is refused, naming their ids."""
    found = await module.list_refund_reasons({"$or": [{"id": id_or_code}, {"code": id_or_code}]})
    by_id = [r for r in found if r.id == id_or_code]
    if by_id:
        return by_id[0].id
    if not found:
        raise NotFoundError(f"RefundReason with id or code: {id_or_code} was not found")
    if len(found) > 1:
        ids = ", ".join(sorted(r.id for r in found))
        raise InvalidDataError(
            f"refund_reason_id: {len(found)} refund reasons have the code {id_or_code!r} ({ids}); use an id"
        )
    return found[0].id


def _refund_reason(reason: Any, selection: Selection | None = None) -> JSONResponse:
    chosen = selection or f.default_selection(f.REFUND_REASON)
    return JSONResponse({"refund_reason": document(chosen, reason)})


@admin.get("/refund-reasons", **get_options(s.RefundReasonList, READ))
async def list_refund_reasons(
    actor: Admin,
    module: ModuleDep,
    page: RefundReasonPage,
    created: CreatedAt,
    id: Ids = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Searches label, code and description")
    ] = None,
) -> JSONResponse:
    selection = f.parse_fields(f.REFUND_REASON, page.fields)
    filters = filters_of(id=id, created_at=created, q=search_term(module, q) if q else None)
    items, count = await module.list_and_count_refund_reasons(
        filters, page.config(f.REFUND_REASON, selection)
    )
    return JSONResponse(listing("refund_reasons", [document(selection, r) for r in items], count, page))


@admin.post("/refund-reasons", **post_options(s.RefundReasonResponse, (400, 401, 409, 413)))
async def create_refund_reason(body: s.CreateRefundReason, actor: Admin, module: ModuleDep) -> JSONResponse:
    return _refund_reason(await module.create_refund_reasons(body.model_dump(exclude_unset=True)))


@admin.get("/refund-reasons/{id}", **get_options(s.RefundReasonResponse, READ_ONE))
async def retrieve_refund_reason(
    id: str, actor: Admin, module: ModuleDep, fields: RefundReasonFields = None
) -> JSONResponse:
    selection = f.parse_fields(f.REFUND_REASON, fields)
    return _refund_reason(await module.retrieve_refund_reason(id), selection)


@admin.post("/refund-reasons/{id}", **post_options(s.RefundReasonResponse, WRITE))
async def update_refund_reason(
    id: str, body: s.UpdateRefundReason, actor: Admin, module: ModuleDep
) -> JSONResponse:
    values = body.model_dump(exclude_unset=True)
    for required in ("label", "code"):
        if required in values and values[required] is None:
            raise InvalidDataError(f"{required}: must not be null")
    return _refund_reason(await module.update_refund_reasons({"id": id, **values}))


@admin.delete("/refund-reasons/{id}", **get_options(s.Deleted, (400, 401, 404, 409)))
async def delete_refund_reason(id: str, actor: Admin, module: ModuleDep) -> JSONResponse:
    await module.retrieve_refund_reason(id)
    await module.soft_delete_refund_reasons(id)
    return JSONResponse({"id": id, "object": "refund_reason", "deleted": True})


__all__ = ["admin", "refund_reason_id"]
