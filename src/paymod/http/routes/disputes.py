"""Admin routes for disputes (chargebacks): list, retrieve, and answer one at its provider (submit
evidence, accept it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from paymod.http import fields as f
from paymod.http import schemas as s
from paymod.http.auth import Admin
from paymod.http.fields import listing
from paymod.http.json import JSONResponse
from paymod.http.routes.admin_params import CreatedAt, DisputeFields, DisputePage, Ids
from paymod.http.routes.common import (
    PROVIDER_WRITE,
    READ,
    READ_ONE,
    ModuleDep,
    document,
    filters_of,
    get_options,
    post_options,
    router,
)
from paymod.services.dto import DisputeDTO

admin = router("/admin", "admin")

Statuses = Annotated[list[s.DisputeStatusName] | None, Query(description="One or more statuses")]


def _dispute(dispute: DisputeDTO) -> JSONResponse:
    return JSONResponse({"dispute": document(f.default_selection(f.DISPUTE), dispute)})


@admin.get("/disputes", **get_options(s.DisputeList, READ))
async def list_disputes(
    actor: Admin,
    module: ModuleDep,
    page: DisputePage,
    created: CreatedAt,
    id: Ids = None,
    payment_id: Ids = None,
    provider_id: Ids = None,
    status: Statuses = None,
) -> JSONResponse:
    """Disputes, newest first unless ordered; `status` open ones are those not won, lost or
    warning_closed."""
    selection = f.parse_fields(f.DISPUTE, page.fields)
    filters = filters_of(
        id=id, payment_id=payment_id, provider_id=provider_id, status=status, created_at=created
    )
    items, count = await module.list_and_count_disputes(filters, page.config(f.DISPUTE, selection))
    return JSONResponse(listing("disputes", [document(selection, d) for d in items], count, page))


@admin.get("/disputes/{id}", **get_options(s.DisputeResponse, READ_ONE))
async def retrieve_dispute(
    id: str, actor: Admin, module: ModuleDep, fields: DisputeFields = None
) -> JSONResponse:
    selection = f.parse_fields(f.DISPUTE, fields)
    return JSONResponse({"dispute": document(selection, await module.retrieve_dispute(id))})


@admin.post("/disputes/{id}/evidence", **post_options(s.DisputeResponse, PROVIDER_WRITE))
async def submit_dispute_evidence(
    id: str, actor: Admin, module: ModuleDep, body: s.SubmitDisputeEvidence | None = None
) -> JSONResponse:
    """Saves evidence on an open dispute at its provider; `submit: true` sends it to the bank (final).
    Refused (`not_allowed`) when the dispute is closed or its provider takes no evidence."""
    body = body or s.SubmitDisputeEvidence()
    return _dispute(await module.submit_dispute_evidence(id, body.evidence, submit=body.submit))


@admin.post("/disputes/{id}/accept", **post_options(s.DisputeResponse, PROVIDER_WRITE))
async def accept_dispute(id: str, actor: Admin, module: ModuleDep) -> JSONResponse:
    """Accepts an open dispute at its provider: it is lost, and its amount no longer refundable."""
    return _dispute(await module.accept_dispute(id))


__all__ = ["admin"]
