"""Admin routes (secret API key): collections, sessions, payments, providers, refund reasons,
region links and account holders."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request

from paymod.domain.errors import InvalidDataError, NotAllowedError, NotFoundError
from paymod.http import fields as f
from paymod.http import schemas as s
from paymod.http.auth import Admin
from paymod.http.fields import Page, Selection, fields_query, listing, page_params
from paymod.http.idempotency import flow_key
from paymod.http.json import JSONResponse
from paymod.http.routes import payment_methods as methods
from paymod.http.routes.common import (
    PROVIDER_READ,
    PROVIDER_WRITE,
    READ,
    READ_ONE,
    WRITE,
    ModuleDep,
    document,
    filters_of,
    get_options,
    post_options,
    range_filter,
    router,
    search_term,
    selection_config,
)
from paymod.http.state import AppState, app_state
from paymod.services.access import EPHEMERAL_KEY_TTL as DEFAULT_EPHEMERAL_TTL
from paymod.services.dto import PaymentDTO
from paymod.services.payment_module import PaymentModule
from paymod.workflows import payment_collection as flows

admin = router("/admin", "admin")

Ids = Annotated[list[str] | None, Query(description="One or more ids")]
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


async def created_at(
    gte: Annotated[s.DateTime | None, Query(alias="created_at[$gte]")] = None,
    lte: Annotated[s.DateTime | None, Query(alias="created_at[$lte]")] = None,
) -> dict[str, Any] | None:
    return range_filter(gte=gte, lte=lte)


CreatedAt = Annotated[dict[str, Any] | None, Depends(created_at)]
CollectionPage = Annotated[Page, Depends(page_params(20, f.PAYMENT_COLLECTION))]
PaymentPage = Annotated[Page, Depends(page_params(20, f.PAYMENT))]
ProviderPage = Annotated[Page, Depends(page_params(20, f.PAYMENT_PROVIDER))]
RefundReasonPage = Annotated[Page, Depends(page_params(15, f.REFUND_REASON))]
AccountHolderPage = Annotated[Page, Depends(page_params(20, f.ACCOUNT_HOLDER))]
CollectionFields = Annotated[str | None, fields_query(f.PAYMENT_COLLECTION)]
PaymentFields = Annotated[str | None, fields_query(f.PAYMENT)]
RefundReasonFields = Annotated[str | None, fields_query(f.REFUND_REASON)]
AccountHolderFields = Annotated[str | None, fields_query(f.ACCOUNT_HOLDER)]


# -- payment collections ----------------------------------------------------------------------
async def _collection_response(module: ModuleDep, id: str) -> JSONResponse:
    selection, config = selection_config(f.PAYMENT_COLLECTION, None)
    collection = await module.retrieve_payment_collection(id, config)
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
    await flows.create_payment_sessions(
        module, id, provider_id=body.provider_id, data=body.data, context=body.context
    )
    return await _collection_response(module, id)


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


# -- payments ---------------------------------------------------------------------------------
async def _payment_response(module: ModuleDep, id: str) -> JSONResponse:
    selection, config = selection_config(f.PAYMENT, None)
    payment = await module.retrieve_payment(id, config)
    return JSONResponse({"payment": document(selection, payment)})


async def _payment_document(module: ModuleDep, payment: PaymentDTO) -> JSONResponse:
    """A payment the module returned with its captures and refunds: the default selection, unless a
    refund has a reason (the selection nests the reason, which the module does not load)."""
    if any(r.refund_reason_id for r in payment.refunds or []):
        return await _payment_response(module, payment.id)
    return JSONResponse({"payment": document(f.default_selection(f.PAYMENT), payment)})


@admin.get("/payments", **get_options(s.PaymentList, READ))
async def list_payments(
    actor: Admin,
    module: ModuleDep,
    page: PaymentPage,
    created: CreatedAt,
    id: Ids = None,
    payment_session_id: Ids = None,
    payment_collection_id: Ids = None,
    provider_id: Ids = None,
    q: Annotated[str | None, Query(max_length=200, description="Matches ids")] = None,
) -> JSONResponse:
    selection = f.parse_fields(f.PAYMENT, page.fields)
    filters = filters_of(
        id=id,
        payment_session_id=payment_session_id,
        payment_collection_id=payment_collection_id,
        provider_id=provider_id,
        created_at=created,
        q=search_term(module, q) if q else None,
    )
    items, count = await module.list_and_count_payments(filters, page.config(f.PAYMENT, selection))
    return JSONResponse(listing("payments", [document(selection, p) for p in items], count, page))


@admin.get("/payments/payment-providers", **get_options(s.PaymentProviderList, READ))
async def list_payment_providers(
    actor: Admin,
    module: ModuleDep,
    page: ProviderPage,
    id: Ids = None,
    is_enabled: bool | None = None,
) -> JSONResponse:
    selection = f.parse_fields(f.PAYMENT_PROVIDER, page.fields)
    items, count = await module.list_and_count_payment_providers(
        filters_of(id=id, is_enabled=is_enabled), page.config(f.PAYMENT_PROVIDER, selection)
    )
    return JSONResponse(listing("payment_providers", [document(selection, p) for p in items], count, page))


@admin.get("/payments/{id}", **get_options(s.PaymentResponse, READ_ONE))
async def retrieve_payment(
    id: str, actor: Admin, module: ModuleDep, fields: PaymentFields = None
) -> JSONResponse:
    selection, config = selection_config(f.PAYMENT, fields)
    payment = await module.retrieve_payment(id, config)
    return JSONResponse({"payment": document(selection, payment)})


@admin.post("/payments/{id}/capture", **post_options(s.PaymentResponse, PROVIDER_WRITE))
async def capture_payment(
    id: str, request: Request, actor: Admin, module: ModuleDep, body: s.CapturePayment | None = None
) -> JSONResponse:
    """Captures `amount`, or what remains uncaptured."""
    amount = body.amount if body else None
    key = flow_key(request.headers, request.url.path)
    payment = await module.capture_payment(
        {"payment_id": id, "amount": amount, "captured_by": actor.key_id, "idempotency_key": key}
    )
    return await _payment_document(module, payment)


@admin.post("/payments/{id}/refund", **post_options(s.PaymentResponse, PROVIDER_WRITE))
async def refund_payment(
    id: str, request: Request, actor: Admin, module: ModuleDep, body: s.RefundPayment | None = None
) -> JSONResponse:
    """Refunds `amount`, or what remains refundable; `refund_reason_id` is a reason's id or its code."""
    values = body.model_dump(exclude_none=True) if body else {}
    if "refund_reason_id" in values:
        values["refund_reason_id"] = await _refund_reason_id(module, values["refund_reason_id"])
    key = flow_key(request.headers, request.url.path)
    payment = await module.refund_payment(
        {"payment_id": id, "created_by": actor.key_id, "idempotency_key": key, **values}
    )
    return await _payment_document(module, payment)


@admin.post("/payments/{id}/cancel", **post_options(s.PaymentResponse, PROVIDER_WRITE))
async def cancel_payment(id: str, request: Request, actor: Admin, module: ModuleDep) -> JSONResponse:
    """Cancels a payment that is not fully captured (voids the authorization)."""
    await module.cancel_payment(id, idempotency_key=flow_key(request.headers, request.url.path))
    return await _payment_response(module, id)


# -- refund reasons ---------------------------------------------------------------------------
async def _refund_reason_id(module: PaymentModule, id_or_code: str) -> str:
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


# -- regions ----------------------------------------------------------------------------------
@admin.get("/regions/{id}/payment-providers", **get_options(s.PaymentProviderList, READ))
async def list_region_payment_providers(
    id: str, actor: Admin, module: ModuleDep, page: ProviderPage
) -> JSONResponse:
    """The providers enabled in a region."""
    selection = f.parse_fields(f.PAYMENT_PROVIDER, page.fields)
    items, count = await module.list_and_count_payment_providers(
        {"region_id": id}, page.config(f.PAYMENT_PROVIDER, selection)
    )
    return JSONResponse(listing("payment_providers", [document(selection, p) for p in items], count, page))


@admin.post("/regions/{id}/payment-providers", **post_options(s.RegionPaymentProvidersResponse, WRITE))
async def link_region_payment_providers(
    id: str, body: s.RegionPaymentProviders, actor: Admin, module: ModuleDep
) -> JSONResponse:
    """Enables (`add`) and disables (`remove`) providers in a region."""
    if set(body.add) & set(body.remove):
        raise InvalidDataError("A provider cannot be both added to and removed from a region")
    if body.add:
        await module.add_region_payment_providers(id, body.add)
    if body.remove:
        await module.remove_region_payment_providers(id, body.remove)
    providers = await module.list_payment_providers({"region_id": id})
    selection = f.parse_fields(f.PAYMENT_PROVIDER, None)
    return JSONResponse({"region_id": id, "payment_providers": [document(selection, p) for p in providers]})


# -- account holders --------------------------------------------------------------------------
def _account_holder(holder: Any, selection: Selection | None = None) -> JSONResponse:
    chosen = selection or f.default_selection(f.ACCOUNT_HOLDER)
    return JSONResponse({"account_holder": document(chosen, holder)})


@admin.get("/account-holders", **get_options(s.AccountHolderList, READ))
async def list_account_holders(
    actor: Admin,
    module: ModuleDep,
    page: AccountHolderPage,
    id: Ids = None,
    provider_id: Ids = None,
    customer_id: Ids = None,
) -> JSONResponse:
    selection = f.parse_fields(f.ACCOUNT_HOLDER, page.fields)
    items, count = await module.list_and_count_account_holders(
        filters_of(id=id, provider_id=provider_id, customer_id=customer_id),
        page.config(f.ACCOUNT_HOLDER, selection),
    )
    return JSONResponse(listing("account_holders", [document(selection, h) for h in items], count, page))


@admin.post("/account-holders", **post_options(s.AccountHolderResponse, PROVIDER_WRITE))
async def create_account_holder(body: s.CreateAccountHolder, actor: Admin, module: ModuleDep) -> JSONResponse:
    """Creates the customer's record at the provider (idempotent per provider and customer)."""
    module.provider(body.provider_id)  # an unknown provider is a 404 before anything is called
    holder = await module.create_account_holder(
        {
            "provider_id": body.provider_id,
            "context": {"customer": body.customer.model_dump(exclude_none=True)},
            "metadata": body.metadata,
        }
    )
    if holder is None:
        raise NotAllowedError(f"Provider {body.provider_id} does not support account holders")
    return _account_holder(holder)


@admin.get("/account-holders/{id}", **get_options(s.AccountHolderResponse, READ_ONE))
async def retrieve_account_holder(
    id: str, actor: Admin, module: ModuleDep, fields: AccountHolderFields = None
) -> JSONResponse:
    selection = f.parse_fields(f.ACCOUNT_HOLDER, fields)
    return _account_holder(await module.retrieve_account_holder(id), selection)


@admin.post("/account-holders/{id}", **post_options(s.AccountHolderResponse, PROVIDER_WRITE))
async def update_account_holder(
    id: str, body: s.UpdateAccountHolder, actor: Admin, module: ModuleDep
) -> JSONResponse:
    values: dict[str, Any] = {"id": id}
    if body.customer is not None:
        values["context"] = {"customer": body.customer.model_dump(exclude_none=True)}
    if "metadata" in body.model_fields_set:
        values["metadata"] = body.metadata
    return _account_holder(await module.update_account_holder(values))


@admin.delete("/account-holders/{id}", **get_options(s.Deleted, (400, 401, 404, 409, 502, 503)))
async def delete_account_holder(id: str, actor: Admin, module: ModuleDep) -> JSONResponse:
    await module.delete_account_holder(id)
    return JSONResponse({"id": id, "object": "account_holder", "deleted": True})


@admin.post("/account-holders/{id}/ephemeral-keys", **post_options(s.EphemeralKeyResponse, WRITE))
async def create_ephemeral_key(
    id: str,
    actor: Admin,
    state: Annotated[AppState, Depends(app_state)],
    body: s.CreateEphemeralKey | None = None,
) -> JSONResponse:
    """A short-lived key for the storefront, scoped to this account holder's saved payment methods.

    Call it from your backend once the customer signed in, and hand the `secret` (shown only here) to
    the storefront: its `/store/account-holders/{id}/payment-methods` calls send it as
    `Authorization: Bearer ek_...`.
    """
    await state.module.retrieve_account_holder(id)
    ttl = (
        DEFAULT_EPHEMERAL_TTL
        if body is None or body.expires_in is None
        else timedelta(seconds=body.expires_in)
    )
    created = await state.ephemeral_keys.create(id, ttl)
    return JSONResponse(
        {
            "ephemeral_key": {
                "id": created.id,
                "object": "ephemeral_key",
                "account_holder_id": created.account_holder_id,
                "secret": created.secret,
                "expires_at": created.expires_at,
            }
        }
    )


@admin.get("/account-holders/{id}/payment-methods", **get_options(s.PaymentMethodList, PROVIDER_READ))
async def list_saved_payment_methods(id: str, actor: Admin, module: ModuleDep) -> JSONResponse:
    """The payment methods saved at the provider for this account holder."""
    return await methods.list_methods(module, await methods.holder_for(module, id, None))


@admin.post("/account-holders/{id}/payment-methods", **post_options(s.PaymentMethodResponse, PROVIDER_WRITE))
async def save_payment_method(
    id: str, body: s.SavePaymentMethod, request: Request, actor: Admin, module: ModuleDep
) -> JSONResponse:
    holder = await methods.holder_for(module, id, None)
    return await methods.save_method(module, holder, body.data, flow_key(request.headers, request.url.path))


@admin.delete("/account-holders/{id}/payment-methods/{method_id}", **get_options(s.Deleted, PROVIDER_READ))
async def delete_saved_payment_method(
    id: str, method_id: str, actor: Admin, module: ModuleDep
) -> JSONResponse:
    return await methods.delete_method(module, await methods.holder_for(module, id, None), method_id)


__all__ = ["admin"]
