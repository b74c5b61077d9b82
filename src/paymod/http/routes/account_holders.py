"""Admin routes for account holders, their saved payment methods and shoppers' ephemeral keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request

from paymod.domain.errors import NotAllowedError
from paymod.http import fields as f
from paymod.http import schemas as s
from paymod.http.auth import Admin
from paymod.http.fields import Selection, listing
from paymod.http.idempotency import flow_key
from paymod.http.json import JSONResponse
from paymod.http.routes import payment_methods as methods
from paymod.http.routes.admin_params import AccountHolderFields, AccountHolderPage, Ids
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
    router,
)
from paymod.http.state import AppState, app_state
from paymod.services.access import EPHEMERAL_KEY_TTL as DEFAULT_EPHEMERAL_TTL

admin = router("/admin", "admin")


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
