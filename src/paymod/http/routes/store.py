"""Store routes (publishable API key): what a shopper's checkout calls."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from paymod.http import fields as f
from paymod.http import schemas as s
from paymod.http.auth import Shopper
from paymod.http.fields import Page, fields_query, listing, page_params
from paymod.http.idempotency import flow_key
from paymod.http.json import JSONResponse
from paymod.http.routes import payment_methods as methods
from paymod.http.routes.common import (
    PROVIDER_READ,
    PROVIDER_WRITE,
    READ,
    READ_ONE,
    ModuleDep,
    document,
    get_options,
    post_options,
    router,
    selection_config,
)
from paymod.http.state import AppState, app_state
from paymod.services.dto import PaymentCollectionDTO
from paymod.services.payment_module import PaymentModule
from paymod.workflows import payment_collection as flows

store = router("/store", "store")


async def _collection(
    module: PaymentModule, id: str, written: PaymentCollectionDTO | None = None
) -> dict[str, Any]:
    """The collection's document: the one the module's transaction wrote whole, or read again."""
    selection, config = selection_config(f.STORE_PAYMENT_COLLECTION, None)
    return document(selection, written or await module.retrieve_payment_collection(id, config))


@store.get("/payment-providers", **get_options(s.PaymentProviderList, READ))
async def list_payment_providers(
    region_id: Annotated[str, Query(min_length=1, description="The shopper's region")],
    shopper: Shopper,
    module: ModuleDep,
    page: Annotated[Page, Depends(page_params(20, f.PAYMENT_PROVIDER))],
) -> JSONResponse:
    """The payment providers enabled in a region."""
    selection = f.parse_fields(f.PAYMENT_PROVIDER, page.fields)
    items, count = await module.list_and_count_payment_providers(
        {"region_id": region_id}, page.config(f.PAYMENT_PROVIDER, selection)
    )
    return JSONResponse(listing("payment_providers", [document(selection, p) for p in items], count, page))


@store.get("/payment-collections/{id}", **get_options(s.PaymentCollectionResponse, READ_ONE))
async def retrieve_payment_collection(
    id: str,
    shopper: Shopper,
    module: ModuleDep,
    fields: Annotated[str | None, fields_query(f.STORE_PAYMENT_COLLECTION)] = None,
) -> JSONResponse:
    selection, config = selection_config(f.STORE_PAYMENT_COLLECTION, fields)
    collection = await module.retrieve_payment_collection(id, config)
    return JSONResponse({"payment_collection": document(selection, collection)})


@store.post(
    "/payment-collections/{id}/payment-sessions", **post_options(s.PaymentCollectionResponse, PROVIDER_WRITE)
)
async def create_payment_session(
    id: str, body: s.CreatePaymentSession, shopper: Shopper, module: ModuleDep
) -> JSONResponse:
    """Starts paying with a provider; replaces the collection's earlier sessions."""
    session = await flows.create_payment_sessions(
        module, id, provider_id=body.provider_id, data=body.data, context=body.context
    )
    return JSONResponse({"payment_collection": await _collection(module, id, session.payment_collection)})


@store.post("/payment-collections/{id}/authorize", **post_options(s.Authorization, (*PROVIDER_WRITE, 402)))
async def authorize_payment_collection(
    id: str, shopper: Shopper, module: ModuleDep, body: s.AuthorizePaymentCollection | None = None
) -> JSONResponse:
    """Completes the checkout: authorizes the session (the given one, or the latest).

    200 with `payment` when authorized; 200 with `payment_session` and `action_required: true` when
    the customer must act first (its `data` says how); 402 when the provider declines.
    Send an `Idempotency-Key`: a retry then returns the same answer and never authorizes twice.
    """
    collection_selection = f.parse_fields(f.STORE_PAYMENT_COLLECTION, None)
    result = await flows.authorize_payment_collection(
        module,
        id,
        session_id=body.session_id if body else None,
        context=body.context if body else None,
        relations=f.relation_paths(collection_selection),
    )
    answer: dict[str, Any] = {
        "payment_collection": document(collection_selection, result.payment_collection),
        "action_required": result.action_required,
    }
    if result.payment is not None:
        answer["payment"] = document(f.parse_fields(f.PAYMENT, None), result.payment)
    if result.payment_session is not None:
        answer["payment_session"] = document(
            f.parse_fields(f.STORE_PAYMENT_SESSION, None), result.payment_session
        )
    return JSONResponse(answer)


# -- saved payment methods of the shopper's account holder --------------------------------------
ShoppersKey = Annotated[HTTPAuthorizationCredentials | None, Security(methods.ephemeral_key)]
TrustedCustomerId = Annotated[
    str | None,
    Query(
        min_length=1,
        description="only when the server trusts it (`[store] trust_customer_id`): the customer the holder "
        "belongs to",
    ),
]


@store.get("/account-holders/{id}/payment-methods", **get_options(s.PaymentMethodList, PROVIDER_READ))
async def list_saved_payment_methods(
    id: str,
    shopper: Shopper,
    state: Annotated[AppState, Depends(app_state)],
    key: ShoppersKey,
    customer_id: TrustedCustomerId = None,
) -> JSONResponse:
    """The payment methods saved at the provider for this account holder (its ephemeral key required)."""
    holder = await methods.shoppers_holder(state, id, key, customer_id)
    return await methods.list_methods(state.module, holder)


@store.post("/account-holders/{id}/payment-methods", **post_options(s.PaymentMethodResponse, PROVIDER_WRITE))
async def save_payment_method(
    id: str,
    body: s.StoreSavePaymentMethod,
    request: Request,
    shopper: Shopper,
    state: Annotated[AppState, Depends(app_state)],
    key: ShoppersKey,
) -> JSONResponse:
    """Saves a payment method for later (Stripe: a SetupIntent; confirm it on the client)."""
    holder = await methods.shoppers_holder(state, id, key, body.customer_id)
    return await methods.save_method(
        state.module, holder, body.data, flow_key(request.headers, request.url.path)
    )


@store.delete("/account-holders/{id}/payment-methods/{method_id}", **get_options(s.Deleted, PROVIDER_READ))
async def delete_saved_payment_method(
    id: str,
    method_id: str,
    shopper: Shopper,
    state: Annotated[AppState, Depends(app_state)],
    key: ShoppersKey,
    customer_id: TrustedCustomerId = None,
) -> JSONResponse:
    """Removes a saved payment method (Stripe: detaches it from the customer)."""
    holder = await methods.shoppers_holder(state, id, key, customer_id)
    return await methods.delete_method(state.module, holder, method_id)
