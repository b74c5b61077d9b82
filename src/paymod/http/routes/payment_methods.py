"""Saved payment methods of an account holder, live at its provider (shared by store and admin)."""

from __future__ import annotations

from typing import Any

from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from paymod.domain.errors import InvalidDataError, NotFoundError
from paymod.http.errors import UnauthorizedError
from paymod.http.json import JSONResponse
from paymod.http.state import AppState
from paymod.services.dto import AccountHolderDTO
from paymod.services.payment_module import PaymentModule

#: The storefront's proof that the signed-in customer owns the account holder: an ephemeral key the
#: merchant's backend asked for (`POST /admin/account-holders/{id}/ephemeral-keys`).
ephemeral_key = HTTPBearer(
    auto_error=False,
    scheme_name="ephemeral_key",
    description="An ephemeral key for the account holder (`Authorization: Bearer ek_...`), which the "
    "merchant's backend gets from `POST /admin/account-holders/{id}/ephemeral-keys`",
)


async def holder_for(module: PaymentModule, id: str, customer_id: str | None) -> AccountHolderDTO:
    """The holder; with `customer_id` (store routes) it must belong to that customer, else 404."""
    holder = await module.retrieve_account_holder(id)
    if customer_id is not None and holder.customer_id != customer_id:
        # Same answer as a missing holder: a storefront learns nothing about other customers.
        raise NotFoundError(f"AccountHolder with id: {id} was not found")
    return holder


async def shoppers_holder(
    state: AppState,
    id: str,
    credentials: HTTPAuthorizationCredentials | None,
    customer_id: str | None,
) -> AccountHolderDTO:
    """The holder a store request may act on: the one its ephemeral key was made for (401 otherwise,
    whether the holder exists or not), or, where the server trusts it, the customer id's."""
    if state.settings.store.trust_customer_id:
        if customer_id is None:
            raise InvalidDataError("customer_id: Field required")
        return await holder_for(state.module, id, customer_id)
    secret = credentials.credentials if credentials is not None else ""
    if not await state.ephemeral_keys.grants(secret, id):
        raise UnauthorizedError(
            "An ephemeral key for this account holder is required: Authorization: Bearer ek_..."
        )
    return await holder_for(state.module, id, None)


def _context(holder: AccountHolderDTO) -> dict[str, Any]:
    return {"account_holder": holder.model_dump(mode="json")}


async def list_methods(module: PaymentModule, holder: AccountHolderDTO) -> JSONResponse:
    methods = await module.list_payment_methods(
        {"provider_id": holder.provider_id, "context": _context(holder)}
    )
    items = [m.model_dump(mode="json") for m in methods]
    return JSONResponse({"payment_methods": items, "count": len(items), "offset": 0, "limit": len(items)})


async def save_method(
    module: PaymentModule, holder: AccountHolderDTO, data: dict[str, Any], idempotency_key: str | None
) -> JSONResponse:
    saved = await module.create_payment_methods(
        {
            "provider_id": holder.provider_id,
            "data": data,
            "context": _context(holder),
            "idempotency_key": idempotency_key,
        }
    )
    return JSONResponse({"payment_method": saved.model_dump(mode="json")})


async def delete_method(module: PaymentModule, holder: AccountHolderDTO, method_id: str) -> JSONResponse:
    await module.delete_payment_methods(
        {"provider_id": holder.provider_id, "id": method_id, "context": _context(holder)}
    )
    return JSONResponse({"id": method_id, "object": "payment_method", "deleted": True})
