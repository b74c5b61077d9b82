"""What waits in the database, read when `/metrics` is scraped: a few indexed queries.

The inbox is read through `IDX_webhook_event_status_available_at`, the outbox and the deliveries
through their partial indexes on pending rows (`IDX_event_outbox_pending_sequence`,
`IDX_webhook_delivery_pending_endpoint`): a scrape costs what is pending, never the tables' history.
Every process that shares the database reports the same values (scrape one, or take the max).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from paymod.persistence.database import Database
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import event_outbox, webhook_delivery, webhook_endpoint, webhook_event


@dataclass(frozen=True, slots=True)
class Backlog:
    inbox_pending: int
    #: Seconds the most overdue pending provider event has waited since it became due (0: none is due).
    inbox_oldest_due_seconds: float
    inbox_failed: int
    outbox_pending: int
    #: Seconds since the oldest pending outbox event was written (0: none).
    outbox_oldest_seconds: float
    deliveries_pending: int
    endpoints_disabled: int


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


async def read_backlog(database: Database) -> Backlog:
    now = utc_now()
    inbox = (
        select(webhook_event.c.status, func.count(), func.min(webhook_event.c.available_at))
        .where(webhook_event.c.status.in_(("pending", "failed")))
        .group_by(webhook_event.c.status)
    )
    outbox_pending = select(func.count()).select_from(event_outbox).where(event_outbox.c.status == "pending")
    outbox_oldest = (
        select(event_outbox.c.created_at)
        .where(event_outbox.c.status == "pending")
        .order_by(event_outbox.c.sequence)
        .limit(1)
    )
    deliveries = (
        select(func.count()).select_from(webhook_delivery).where(webhook_delivery.c.status == "pending")
    )
    disabled = (
        select(func.count())
        .select_from(webhook_endpoint)
        .where(webhook_endpoint.c.enabled.is_(False), webhook_endpoint.c.deleted_at.is_(None))
    )
    async with database.read() as conn:
        by_status = {row[0]: (int(row[1]), row[2]) for row in (await conn.execute(inbox)).all()}
        pending_events = int((await conn.execute(outbox_pending)).scalar_one())
        oldest_event = (await conn.execute(outbox_oldest)).scalar_one_or_none()
        pending_deliveries = int((await conn.execute(deliveries)).scalar_one())
        disabled_endpoints = int((await conn.execute(disabled)).scalar_one())
    pending, oldest_due = by_status.get("pending", (0, None))
    return Backlog(
        inbox_pending=pending,
        inbox_oldest_due_seconds=_age(now, oldest_due),
        inbox_failed=by_status.get("failed", (0, None))[0],
        outbox_pending=pending_events,
        outbox_oldest_seconds=_age(now, oldest_event),
        deliveries_pending=pending_deliveries,
        endpoints_disabled=disabled_endpoints,
    )


class _BacklogCollector(Collector):
    def __init__(self, backlog: Backlog | None) -> None:
        self.backlog = backlog

    def collect(self) -> list[GaugeMetricFamily]:
        b = self.backlog
        up = GaugeMetricFamily(
            "paymod_database_up",
            "1 when the backlog below was read from the database, 0 when it failed.",
            0 if b is None else 1,
        )
        if b is None:
            return [up]
        return [
            up,
            GaugeMetricFamily(
                "paymod_webhook_inbox_pending",
                "Provider webhook events stored, not yet applied.",
                b.inbox_pending,
            ),
            GaugeMetricFamily(
                "paymod_webhook_inbox_oldest_due_seconds",
                "Seconds the most overdue pending provider event has waited since it became due.",
                b.inbox_oldest_due_seconds,
            ),
            GaugeMetricFamily(
                "paymod_webhook_inbox_failed",
                "Provider webhook events whose retries are exhausted (replay them once fixed).",
                b.inbox_failed,
            ),
            GaugeMetricFamily(
                "paymod_event_outbox_pending", "paymod events written, not yet dispatched.", b.outbox_pending
            ),
            GaugeMetricFamily(
                "paymod_event_outbox_oldest_seconds",
                "Seconds since the oldest pending event was written.",
                b.outbox_oldest_seconds,
            ),
            GaugeMetricFamily(
                "paymod_webhook_deliveries_pending",
                "Deliveries to webhook endpoints waiting (first attempt or a retry).",
                b.deliveries_pending,
            ),
            GaugeMetricFamily(
                "paymod_webhook_endpoints_disabled",
                "Webhook endpoints disabled after failing for too long.",
                b.endpoints_disabled,
            ),
        ]


def render_backlog(backlog: Backlog | None) -> bytes:
    """The backlog in Prometheus' text format (appended to the process's own metrics); None: the
    database could not be read (`paymod_database_up 0`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_BacklogCollector(backlog))
    return generate_latest(registry)


__all__ = ["Backlog", "read_backlog", "render_backlog"]
