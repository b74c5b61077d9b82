"""Provider webhooks received (with replay), and the webhook endpoints events are delivered to."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from paymod.domain.errors import NotFoundError, PaymodError
from paymod.http.dashboard.routes.common import Form, SignedIn, dashboard, form_text, render, see_other
from paymod.http.dashboard.sessions import Operator
from paymod.http.errors import status_of
from paymod.http.state import state_of
from paymod.persistence import dashboard_queries as q
from paymod.webhooks import inbox, outbox


@dashboard.get("/webhooks", response_class=HTMLResponse)
async def webhook_events(request: Request, operator: SignedIn) -> Response:
    module = state_of(request).module
    status = request.query_params.get("status") or None
    status = status if status in ("pending", "processed", "ignored", "failed") else None
    try:
        offset = max(int(request.query_params.get("offset", "0")), 0)
    except ValueError:
        offset = 0
    limit = 50
    events = await inbox.list_webhook_events(module, status=status, limit=limit + 1, offset=offset)
    return render(
        request,
        "webhooks.html",
        operator,
        page="webhooks",
        events=events[:limit],
        event_status=status,
        next_offset=offset + limit if len(events) > limit else None,
        offset=offset,
    )


@dashboard.post("/webhooks/{id}/replay")
async def replay_webhook_event(request: Request, id: str, operator: SignedIn, form: Form) -> Response:
    state = state_of(request)
    try:
        await inbox.replay_webhook_event(state.module, id)
    except NotFoundError:
        return render(request, "not_found.html", operator, status=404, what="webhook event", id=id)
    if state.worker is not None:
        state.worker.wake()
    return see_other("/webhooks", notice="replayed_webhook")


@dashboard.get("/endpoints", response_class=HTMLResponse)
async def endpoints(request: Request, operator: SignedIn) -> Response:
    return await _endpoints_page(request, operator)


async def _endpoints_page(
    request: Request,
    operator: Operator,
    *,
    created: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    module = state_of(request).module
    rows = await outbox.list_webhook_endpoints(module)
    deliveries = await q.recent_deliveries(module.database, [r["id"] for r in rows])
    documents = [outbox.webhook_endpoint_document(r) for r in rows]
    return render(
        request,
        "endpoints.html",
        operator,
        status=status,
        page="endpoints",
        endpoints=documents,
        deliveries=deliveries,
        created=created,
        error=error,
    )


@dashboard.post("/endpoints", response_class=HTMLResponse)
async def create_endpoint(request: Request, operator: SignedIn, form: Form) -> Response:
    events = [e.strip() for e in form_text(form, "events").replace(",", " ").split() if e.strip()] or ["*"]
    try:
        row = await outbox.create_webhook_endpoint(
            state_of(request).module,
            form_text(form, "url"),
            events=events,
            description=form_text(form, "description") or None,
        )
    except PaymodError as exc:
        return await _endpoints_page(request, operator, error=exc.message, status=status_of(exc))
    # The secret is shown on this answer only (not stored in a page anyone can reload).
    return await _endpoints_page(
        request, operator, created=outbox.webhook_endpoint_document(row, secret=True)
    )


@dashboard.post("/endpoints/{id}/delete")
async def delete_endpoint(request: Request, id: str, operator: SignedIn, form: Form) -> Response:
    try:
        await outbox.delete_webhook_endpoint(state_of(request).module, id)
    except NotFoundError:
        return render(request, "not_found.html", operator, status=404, what="webhook endpoint", id=id)
    return see_other("/endpoints", notice="endpoint_deleted")
