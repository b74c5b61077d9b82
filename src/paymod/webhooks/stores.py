"""The narrow stores the webhooks layer works through, over one database.

The webhooks layer never writes SQL and never reaches into the payment module: it changes payments
through the module's public methods and keeps its own rows (inbox, outbox, endpoints and deliveries,
retention) through these stores. The composition root builds them next to the module, on the same
database; `stores_for` is the one place that derives them from a module, for callers that hold only
the module (the documented `receive_webhook(module, ...)` functions and a `Worker(module)`).
"""

from __future__ import annotations

from dataclasses import dataclass

from paymod.persistence.database import Database
from paymod.persistence.event_outbox import EventOutboxStore
from paymod.persistence.retention import RetentionStore
from paymod.persistence.webhook_endpoints import WebhookEndpointStore
from paymod.persistence.webhook_inbox import WebhookInboxStore
from paymod.services.payment_module import PaymentModule


@dataclass(frozen=True, slots=True)
class WebhookStores:
    """The inbox, the outbox, the endpoints with their deliveries, and retention, on one database."""

    inbox: WebhookInboxStore
    outbox: EventOutboxStore
    endpoints: WebhookEndpointStore
    retention: RetentionStore

    @classmethod
    def on(cls, database: Database) -> WebhookStores:
        return cls(
            inbox=WebhookInboxStore(database),
            outbox=EventOutboxStore(database),
            endpoints=WebhookEndpointStore(database),
            retention=RetentionStore(database),
        )


def stores_for(module: PaymentModule) -> WebhookStores:
    """The stores on the database the module runs on (its events and our rows commit together)."""
    return WebhookStores.on(module.database)


__all__ = ["WebhookStores", "stores_for"]
