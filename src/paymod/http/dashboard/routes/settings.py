"""The settings pages: API keys, refund reasons, and the providers enabled per region."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from paymod.domain.errors import NotFoundError, PaymodError
from paymod.http.dashboard.routes.common import (
    Form,
    SignedIn,
    dashboard,
    form_text,
    render,
    see_other,
    sessions_of,
)
from paymod.http.dashboard.sessions import Operator
from paymod.http.errors import status_of
from paymod.http.state import state_of
from paymod.persistence import dashboard_queries as q


# -- API keys -----------------------------------------------------------------------------------
@dashboard.get("/api-keys", response_class=HTMLResponse)
async def api_keys(request: Request, operator: SignedIn) -> Response:
    return await _api_keys_page(request, operator)


async def _api_keys_page(
    request: Request, operator: Operator, *, created: Any = None, error: str | None = None, status: int = 200
) -> Response:
    keys = await state_of(request).api_keys.list()
    keys.sort(key=lambda k: k.created_at, reverse=True)
    return render(
        request,
        "api_keys.html",
        operator,
        status=status,
        page="api_keys",
        keys=keys,
        created=created,
        error=error,
    )


@dashboard.post("/api-keys", response_class=HTMLResponse)
async def create_api_key(request: Request, operator: SignedIn, form: Form) -> Response:
    try:
        created = await state_of(request).api_keys.create(
            form_text(form, "type"), form_text(form, "title") or None
        )
    except PaymodError as exc:
        return await _api_keys_page(request, operator, error=exc.message, status=status_of(exc))
    return await _api_keys_page(request, operator, created=created)


@dashboard.post("/api-keys/{id}/revoke")
async def revoke_api_key(request: Request, id: str, operator: SignedIn, form: Form) -> Response:
    state = state_of(request)
    try:
        await state.api_keys.revoke(id)
    except NotFoundError:
        return render(request, "not_found.html", operator, status=404, what="API key", id=id)
    await sessions_of(request).end_sessions_of(id)
    if id == operator.api_key_id:
        return see_other("/sign-in")
    return see_other("/api-keys", notice="key_revoked")


# -- refund reasons and regions -----------------------------------------------------------------
@dashboard.get("/refund-reasons", response_class=HTMLResponse)
async def refund_reasons(request: Request, operator: SignedIn) -> Response:
    return await _reasons_page(request, operator)


async def _reasons_page(
    request: Request, operator: Operator, *, error: str | None = None, status: int = 200
) -> Response:
    reasons = await state_of(request).module.list_refund_reasons({}, {"order": {"label": "ASC"}})
    return render(
        request,
        "refund_reasons.html",
        operator,
        status=status,
        page="refund_reasons",
        reasons=reasons,
        error=error,
    )


@dashboard.post("/refund-reasons", response_class=HTMLResponse)
async def create_refund_reason(request: Request, operator: SignedIn, form: Form) -> Response:
    values = {
        "label": form_text(form, "label"),
        "code": form_text(form, "code"),
        "description": form_text(form, "description") or None,
    }
    try:
        await state_of(request).module.create_refund_reasons(values)
    except PaymodError as exc:
        return await _reasons_page(request, operator, error=exc.message, status=status_of(exc))
    return see_other("/refund-reasons", notice="reason_created")


@dashboard.post("/refund-reasons/{id}/delete")
async def delete_refund_reason(request: Request, id: str, operator: SignedIn, form: Form) -> Response:
    module = state_of(request).module
    try:
        await module.retrieve_refund_reason(id)
    except NotFoundError:
        return render(request, "not_found.html", operator, status=404, what="refund reason", id=id)
    await module.soft_delete_refund_reasons(id)
    return see_other("/refund-reasons", notice="reason_deleted")


@dashboard.get("/regions", response_class=HTMLResponse)
async def regions(request: Request, operator: SignedIn) -> Response:
    return await _regions_page(request, operator)


async def _regions_page(
    request: Request, operator: Operator, *, error: str | None = None, status: int = 200
) -> Response:
    module = state_of(request).module
    found = await q.regions(module.database)
    providers = await module.list_payment_providers({})
    return render(
        request,
        "regions.html",
        operator,
        status=status,
        page="regions",
        regions=found,
        providers=providers,
        error=error,
    )


@dashboard.post("/regions", response_class=HTMLResponse)
async def link_region(request: Request, operator: SignedIn, form: Form) -> Response:
    region_id, provider_id = form_text(form, "region_id"), form_text(form, "provider_id")
    if not region_id or not provider_id:
        return await _regions_page(request, operator, error="Give a region id and a provider.", status=400)
    try:
        await state_of(request).module.add_region_payment_providers(region_id, [provider_id])
    except PaymodError as exc:
        return await _regions_page(request, operator, error=exc.message, status=status_of(exc))
    return see_other("/regions", notice="region_updated")


@dashboard.post("/regions/{id}/remove")
async def unlink_region(request: Request, id: str, operator: SignedIn, form: Form) -> Response:
    try:
        await state_of(request).module.remove_region_payment_providers(id, [form_text(form, "provider_id")])
    except PaymodError as exc:
        return await _regions_page(request, operator, error=exc.message, status=status_of(exc))
    return see_other("/regions", notice="region_updated")
