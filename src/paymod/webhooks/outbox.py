"""Outbound events: from the outbox to in-process subscribers and to signed HTTP endpoints.

Delivery is at least once and, within one payment collection, in commit order: an event is not
handed out while an earlier event of the same collection is still waiting. HTTP endpoints get
`POST {id, type, created, payment_collection_id, data, request}` signed with `Paymod-Signature` (see
`paymod.webhooks.deliveries`); receivers dedupe by the event id.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from paymod.domain.errors import InvalidDataError
from paymod.domain.ids import new_id
from paymod.persistence.event_outbox import Dispatch, Retry, delivery_rows
from paymod.persistence.repository import utc_now
from paymod.services.events import Event, Subscribers
from paymod.services.payment_module import PaymentModule
from paymod.webhooks.stores import WebhookStores, stores_for

log = logging.getLogger("paymod.webhooks")


SUBSCRIBER_ATTEMPTS = 10


def backoff(attempts: int, *, base: float = 1.0, cap: float = 3600.0) -> timedelta:
    """Exponential backoff: base, 2·base, 4·base... capped."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def event_document(row: Mapping[str, Any]) -> Event:
    """What subscribers and endpoints receive. `request.id` is the request (`X-Request-Id`) whose
    change the event describes, as in Stripe's events; null for changes no request caused."""
    created: datetime = row["created_at"]
    return {
        "id": row["id"],
        "type": row["name"],
        "created": int(created.timestamp()),
        "payment_collection_id": row["payment_collection_id"],
        "data": row["data"],
        "request": {"id": row.get("request_id")},
    }


async def dispatch_outbox(
    module: PaymentModule,
    subscribers: Subscribers,
    *,
    limit: int = 100,
    stores: WebhookStores | None = None,
) -> int:
    """Hands due outbox events to subscribers and queues them for the endpoints that want them.

    Three short transactions whatever the batch: the claim, the subscribers' work outside any, and one
    that records every outcome and queues the deliveries. A subscriber that fails holds back the later
    events of its collection (they are released, in order, for a later pass)."""
    outbox = (stores or stores_for(module)).outbox
    claimed = await outbox.claim(limit)
    if not claimed.events:
        return 0
    done: list[dict[str, Any]] = []  # dispatched (or given up) rows
    retry: list[tuple[dict[str, Any], str]] = []
    held: list[dict[str, Any]] = []  # later events of a collection whose event failed now
    stuck: set[str] = set()
    for row in claimed.events:
        collection = row["payment_collection_id"]
        if collection is not None and collection in stuck:
            held.append(row)
            continue
        error = None
        event = event_document(row)
        for handler in subscribers.for_event(row["name"]):
            try:
                await handler(event)
            except Exception as exc:  # a subscriber's bug must not stop the others; it is retried
                log.warning("subscriber failed on %s %s", row["name"], row["id"], exc_info=True)
                error = f"{type(exc).__name__}: {exc}"
        if error is not None and row["attempts"] + 1 < SUBSCRIBER_ATTEMPTS:
            retry.append((row, error))
            if collection is not None:
                stuck.add(collection)
        else:
            done.append({**row, "last_error": error})
    now = utc_now()
    await outbox.record(
        Dispatch(
            at=now,
            dispatched=[r["sequence"] for r in done if r["last_error"] is None],
            given_up=[(r, r["last_error"]) for r in done if r["last_error"] is not None],
            retries=[Retry(r, error, now + backoff(r["attempts"] + 1)) for r, error in retry],
            held=[r["sequence"] for r in held],
            deliveries=delivery_rows(done, claimed.endpoints, now),
        )
    )
    return len(done) + len(retry)


# -- endpoints -------------------------------------------------------------------------------------
async def create_webhook_endpoint(
    module: PaymentModule,
    url: str,
    *,
    events: Sequence[str] = ("*",),
    secret: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """Registers an endpoint; the returned secret signs every delivery (shown here, kept for signing)."""
    if not url.startswith(("http://", "https://")):
        raise InvalidDataError("url must be an http(s) URL")
    if not events or not all(isinstance(e, str) and e for e in events):
        raise InvalidDataError("events must be a non-empty list of event names (or '*')")
    now = utc_now()
    values = {
        "id": new_id("we"),
        "url": url,
        "events": list(events),
        "secret": secret or "whsec_" + secrets.token_hex(24),
        "enabled": True,
        "description": description,
        "created_at": now,
        "updated_at": now,
    }
    await stores_for(module).endpoints.create(values)
    return values


async def list_webhook_endpoints(
    module: PaymentModule, *, limit: int | None = None, offset: int = 0
) -> list[dict[str, Any]]:
    """Endpoints not deleted, oldest first (rows as stored, secrets included)."""
    return await stores_for(module).endpoints.list_endpoints(limit=limit, offset=offset)


async def count_webhook_endpoints(module: PaymentModule) -> int:
    return await stores_for(module).endpoints.count_endpoints()


def webhook_endpoint_document(row: Mapping[str, Any], *, secret: bool = False) -> dict[str, Any]:
    """What operators see of an endpoint; its secret only when it is created."""
    document = {
        name: row.get(name, default)
        for name, default in (
            ("id", None),
            ("url", None),
            ("events", None),
            ("enabled", True),
            ("description", None),
            ("failing_since", None),
            ("consecutive_failures", 0),
            ("retry_at", None),
            ("disabled_at", None),
            ("disabled_reason", None),
            ("created_at", None),
            ("updated_at", None),
        )
    }
    if secret:
        document["secret"] = row["secret"]
    return document


async def delete_webhook_endpoint(module: PaymentModule, id: str) -> None:
    """Deletes an endpoint; its queued deliveries go with it (one being sent right now may still arrive)."""
    await stores_for(module).endpoints.delete(id)
