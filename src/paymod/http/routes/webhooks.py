"""Admin routes (secret API key) for webhooks: the inbox of provider events (list, replay) and the
HTTP endpoints that receive paymod's events (create, list, delete)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Query

from paymod.http import schemas as s
from paymod.http.auth import Admin
from paymod.http.fields import MAX_LIMIT, MAX_OFFSET, Resource, fields_query, parse_fields, project
from paymod.http.json import JSONResponse
from paymod.http.routes.common import READ, ModuleDep, get_options, post_options, router
from paymod.http.state import AppState, app_state
from paymod.webhooks import inbox, outbox

admin_webhooks = router("/admin", "admin")

WEBHOOK_EVENT = Resource(
    "webhook_event",
    (*inbox.EVENT_FIELDS, "payload"),
    defaults=inbox.EVENT_FIELDS,
)
EventStatus = Literal["pending", "processed", "ignored", "failed"]
Limit = Annotated[int, Query(ge=0, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


# -- the inbox --------------------------------------------------------------------------------
@admin_webhooks.get("/webhook-events", **get_options(s.WebhookEventList, READ))
async def list_webhook_events(
    actor: Admin,
    module: ModuleDep,
    status: Annotated[EventStatus | None, Query(description="Only events in this state")] = None,
    fields: Annotated[str | None, fields_query(WEBHOOK_EVENT)] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> JSONResponse:
    """Provider events as stored, newest first; `status=failed` lists those that exhausted their retries.

    The raw body and headers are left out unless asked for with `fields=+payload`.
    """
    selection = parse_fields(WEBHOOK_EVENT, fields)
    rows = await inbox.list_webhook_events(module, status=status, limit=limit, offset=offset)
    count = await inbox.count_webhook_events(module, status=status)
    documents = [project(selection, inbox.webhook_event_document(r, payload=True)) for r in rows]
    return JSONResponse({"webhook_events": documents, "count": count, "offset": offset, "limit": limit})


@admin_webhooks.post(
    "/webhook-events/{id}/replay", **post_options(s.WebhookEventResponse, (400, 401, 404, 409, 413))
)
async def replay_webhook_event(
    id: str, actor: Admin, module: ModuleDep, state: Annotated[AppState, Depends(app_state)]
) -> JSONResponse:
    """Puts an event (typically a `failed` one) back in the queue with a fresh retry budget.

    Processing is idempotent, so replaying an event that was already applied changes nothing.
    """
    await inbox.replay_webhook_event(module, id)
    if state.worker is not None:
        state.worker.wake()
    row = await inbox.retrieve_webhook_event(module, id)
    return JSONResponse({"webhook_event": inbox.webhook_event_document(row)})


# -- outbound endpoints -----------------------------------------------------------------------
@admin_webhooks.post("/webhook-endpoints", **post_options(s.WebhookEndpointResponse, (400, 401, 409, 413)))
async def create_webhook_endpoint(
    body: s.CreateWebhookEndpoint, actor: Admin, module: ModuleDep
) -> JSONResponse:
    """Registers a URL that receives paymod's events, signed with the returned `secret`.

    The secret is returned only in this answer: keep it to verify `Paymod-Signature`.
    """
    row = await outbox.create_webhook_endpoint(
        module, body.url, events=body.events, description=body.description
    )
    return JSONResponse({"webhook_endpoint": outbox.webhook_endpoint_document(row, secret=True)})


@admin_webhooks.get("/webhook-endpoints", **get_options(s.WebhookEndpointList, READ))
async def list_webhook_endpoints(
    actor: Admin, module: ModuleDep, limit: Limit = 20, offset: Offset = 0
) -> JSONResponse:
    """Registered endpoints, oldest first (without their secrets)."""
    rows = await outbox.list_webhook_endpoints(module, limit=limit, offset=offset)
    count = await outbox.count_webhook_endpoints(module)
    documents: list[dict[str, Any]] = [outbox.webhook_endpoint_document(r) for r in rows]
    return JSONResponse({"webhook_endpoints": documents, "count": count, "offset": offset, "limit": limit})


@admin_webhooks.delete("/webhook-endpoints/{id}", **get_options(s.Deleted, (400, 401, 404, 409)))
async def delete_webhook_endpoint(id: str, actor: Admin, module: ModuleDep) -> JSONResponse:
    """Stops deliveries to an endpoint (pending ones are dropped with it)."""
    await outbox.delete_webhook_endpoint(module, id)
    return JSONResponse({"id": id, "object": "webhook_endpoint", "deleted": True})


__all__ = ["admin_webhooks"]
