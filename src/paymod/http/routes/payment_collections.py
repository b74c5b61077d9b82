"""Admin routes for payment collections: create, list, retrieve, update, delete, start a payment
session, mark as paid."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

from paymod.http import fields as f
from paymod.http import schemas as s
from paymod.http.auth import Admin
from paymod.http.fields import listing
from paymod.http.json import JSONResponse
from paymod.http.routes.admin_params import CollectionFields, CollectionPage, CreatedAt, Ids
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
    selection_config,
)
from paymod.services.dto import PaymentCollectionDTO
from paymod.workflows import payment_collection as flows

admin = router("/admin", "admin")


CollectionStatus = Literal[
    "not_paid",
    "awaiting",
    "authorized",
    "partially_authorized",
    "canceled",
    "failed",
    "partially_captured",
    "completed",
]


async def _collection_response(
    module: ModuleDep, id: str, written: PaymentCollectionDTO | None = None
) -> JSONResponse:
    """The collection's document: the one the module's transaction wrote whole, or read again."""
    selection, config = selection_config(f.PAYMENT_COLLECTION, None)
    collection = written or await module.retrieve_payment_collection(id, config)
    return JSONResponse({"payment_collection": document(selection, collection)})


@admin.post("/payment-collections", **post_options(s.PaymentCollectionResponse, (400, 401, 409, 413)))
async def create_payment_collection(
    body: s.CreatePaymentCollection, actor: Admin, module: ModuleDep
) -> JSONResponse:
    """Creates a payment collection: what the customer owes, in one currency."""
    created = await module.create_payment_collections(body.model_dump(exclude_none=True))
    # A new collection has no sessions or payments yet: the module's answer is the whole document.
    selection = f.parse_fields(f.PAYMENT_COLLECTION, None)
    return JSONResponse({"payment_collection": document(selection, created)})


@admin.get("/payment-collections", **get_options(s.PaymentCollectionList, READ))
async def list_payment_collections(
    actor: Admin,
    module: ModuleDep,
    page: CollectionPage,
    created: CreatedAt,
    id: Ids = None,
    status: Annotated[list[CollectionStatus] | None, Query()] = None,
    currency_code: Annotated[s.CurrencyCode | None, Query()] = None,
) -> JSONResponse:
    selection = f.parse_fields(f.PAYMENT_COLLECTION, page.fields)
    filters = filters_of(
        id=id,
        status=status,
        currency_code=currency_code,
        created_at=created,
    )
    items, count = await module.list_and_count_payment_collections(
        filters, page.config(f.PAYMENT_COLLECTION, selection)
    )
    return JSONResponse(listing("payment_collections", [document(selection, c) for c in items], count, page))


@admin.get("/payment-collections/{id}", **get_options(s.PaymentCollectionResponse, READ_ONE))
async def retrieve_payment_collection(
    id: str, actor: Admin, module: ModuleDep, fields: CollectionFields = None
) -> JSONResponse:
    selection, config = selection_config(f.PAYMENT_COLLECTION, fields)
    collection = await module.retrieve_payment_collection(id, config)
    return JSONResponse({"payment_collection": document(selection, collection)})


@admin.post("/payment-collections/{id}", **post_options(s.PaymentCollectionResponse, PROVIDER_WRITE))
async def update_payment_collection(
    id: str, body: s.UpdatePaymentCollection, actor: Admin, module: ModuleDep
) -> JSONResponse:
    """Updates metadata, or the amount and currency while nothing is authorized (sessions are dropped)."""
    values = {
        k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k == "metadata"
    }
    await flows.update_payment_collection(module, id, values)
    return await _collection_response(module, id)


@admin.delete("/payment-collections/{id}", **get_options(s.Deleted, (400, 401, 404, 409, 502, 503)))
async def delete_payment_collection(id: str, actor: Admin, module: ModuleDep) -> JSONResponse:
    """Deletes a collection that is `not_paid`."""
    await flows.delete_payment_collection(module, id)
    return JSONResponse({"id": id, "object": "payment-collection", "deleted": True})


@admin.post(
    "/payment-collections/{id}/payment-sessions", **post_options(s.PaymentCollectionResponse, PROVIDER_WRITE)
)
async def create_payment_session(
    id: str, body: s.CreatePaymentSession, actor: Admin, module: ModuleDep
) -> JSONResponse:
    """Creates a payment session with a provider, replacing the collection's earlier sessions."""
    session = await flows.create_payment_sessions(
        module, id, provider_id=body.provider_id, data=body.data, context=body.context
    )
    return await _collection_response(module, id, session.payment_collection)


@admin.post(
    "/payment-collections/{id}/mark-as-paid",
    **post_options(s.PaymentCollectionResponse, (*PROVIDER_WRITE, 402)),
)
async def mark_as_paid(
    id: str, actor: Admin, module: ModuleDep, body: s.MarkAsPaid | None = None
) -> JSONResponse:
    """Records a payment received outside paymod (by default under `pp_system_default`)."""
    await flows.mark_payment_collection_as_paid(
        module, id, provider_id=body.provider_id if body else None, captured_by=actor.key_id
    )
    return await _collection_response(module, id)


__all__ = ["admin"]
