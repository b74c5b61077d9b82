"""Admin routes for payments: list, retrieve, capture, refund, cancel; and the payment providers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from paymod.domain.statuses import PaymentStatus
from paymod.http import fields as f
from paymod.http import schemas as s
from paymod.http.auth import Admin
from paymod.http.fields import listing
from paymod.http.idempotency import flow_key
from paymod.http.json import JSONResponse
from paymod.http.routes.admin_params import (
    CreatedAt,
    Ids,
    PaymentFields,
    PaymentPage,
    ProviderPage,
)
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
    search_term,
    selection_config,
)
from paymod.http.routes.refund_reasons import refund_reason_id
from paymod.services.dto import PaymentDTO
from paymod.services.payments import encode_payment_cursor

admin = router("/admin", "admin")


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


def _cursor_after(items: list[PaymentDTO]) -> str | None:
    last = items[-1] if items else None
    return (
        None if last is None or last.created_at is None else encode_payment_cursor(last.created_at, last.id)
    )


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
    status: Annotated[list[PaymentStatus] | None, Query(description="One or more payment statuses")] = None,
    after: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=500,
            pattern="^[A-Za-z0-9_-]+$",
            description="A `next_cursor`: the page after it, as fast at any depth (`order` by `created_at` "
            "or `-created_at` only, no `offset`; `count` is then null)",
        ),
    ] = None,
    count: Annotated[bool, Query(description="false: skip counting the matches (`count` is null)")] = True,
) -> JSONResponse:
    selection = f.parse_fields(f.PAYMENT, page.fields)
    filters = filters_of(
        id=id,
        payment_session_id=payment_session_id,
        payment_collection_id=payment_collection_id,
        provider_id=provider_id,
        status=[s.value for s in status] if status else None,
        created_at=created,
        q=search_term(module, q) if q else None,
    )
    config = page.config(f.PAYMENT, selection)
    by_date = set(config["order"]) <= {"created_at"}
    total: int | None = None
    cursor: str | None = None
    if after is not None or (not count and by_date and not page.offset):
        # Keyset pages: each reads only its own rows through the (filter, created_at, id) indexes.
        items, cursor = await module.list_payments_page(filters, config, after=after)
    elif count:
        items, total = await module.list_and_count_payments(filters, config)
        if by_date and page.offset + len(items) < total:
            cursor = _cursor_after(items)
    else:
        items = await module.list_payments(filters, config)
        if by_date and len(items) == page.limit:
            cursor = _cursor_after(items)
    body = listing("payments", [document(selection, p) for p in items], total, page)
    return JSONResponse({**body, "next_cursor": cursor})


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
        values["refund_reason_id"] = await refund_reason_id(module, values["refund_reason_id"])
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


__all__ = ["admin"]
