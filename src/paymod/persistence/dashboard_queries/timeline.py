"""A collection's timeline on its dashboard page: everything that happened to it, oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from paymod.persistence import tables as t
from paymod.persistence.database import Database


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: str
    title: str
    detail: str = ""
    amount: Decimal | None = None
    tone: str = "neutral"


async def collection_timeline(database: Database, collection_id: str) -> list[TimelineEntry]:
    """Everything that happened to a collection, oldest first: sessions, authorizations, 3-D Secure,
    captures, refunds (with reasons and notes), cancels, expired authorizations, provider webhooks and
    events delivered (among them the janitor's corrections, `payment.payment-session.synced`)."""
    s, p, c, r, rr = t.payment_session, t.payment, t.capture, t.refund, t.refund_reason
    entries: list[TimelineEntry] = []
    async with database.read() as conn:
        collection = (
            await conn.execute(select(t.payment_collection).where(t.payment_collection.c.id == collection_id))
        ).first()
        if collection is None:
            return []
        entries.append(
            TimelineEntry(collection.created_at, "collection", "Collection created", amount=collection.amount)
        )
        sessions = (await conn.execute(select(s).where(s.c.payment_collection_id == collection_id))).all()
        for session in sessions:
            entries.append(
                TimelineEntry(
                    session.created_at, "session", "Session created", f"{session.provider_id} · {session.id}"
                )
            )
            data = session.data or {}
            if session.status == "requires_more" or data.get("next_action"):
                entries.append(
                    TimelineEntry(
                        session.updated_at,
                        "requires_more",
                        "3-D Secure required",
                        "The customer must act",
                        tone="warn",
                    )
                )
            if session.status == "error":
                entries.append(
                    TimelineEntry(session.updated_at, "error", "Authorization declined", tone="bad")
                )
            if session.deleted_at is not None:
                entries.append(TimelineEntry(session.deleted_at, "session", "Session replaced", session.id))
        payments = (await conn.execute(select(p).where(p.c.payment_collection_id == collection_id))).all()
        payment_ids = [row.id for row in payments]
        for payment in payments:
            entries.append(
                TimelineEntry(
                    payment.created_at, "authorized", "Authorized", payment.id, payment.amount, "good"
                )
            )
            if payment.canceled_at is not None:
                entries.append(
                    TimelineEntry(payment.canceled_at, "canceled", "Canceled", payment.id, tone="bad")
                )
            if payment.expired_at is not None:
                entries.append(
                    TimelineEntry(
                        payment.expired_at, "expired", "Authorization expired", payment.id, tone="bad"
                    )
                )
        if payment_ids:
            for capture in await conn.execute(
                select(c).where(c.c.payment_id.in_(payment_ids), c.c.deleted_at.is_(None))
            ):
                by = f" by {capture.created_by}" if capture.created_by else ""
                entries.append(
                    TimelineEntry(
                        capture.created_at,
                        "captured",
                        "Captured",
                        f"{capture.id}{by}",
                        capture.amount,
                        "good",
                    )
                )
            for refund in await conn.execute(
                select(r, rr.c.label.label("reason"))
                .outerjoin(rr, rr.c.id == r.c.refund_reason_id)
                .where(r.c.payment_id.in_(payment_ids), r.c.deleted_at.is_(None))
            ):
                detail = " · ".join(x for x in (refund.reason, refund.note) if x)
                entries.append(
                    TimelineEntry(refund.created_at, "refunded", "Refunded", detail, refund.amount, "warn")
                )
        session_ids = [row.id for row in sessions]
        if session_ids:
            w = t.webhook_event
            for event in await conn.execute(select(w).where(w.c.session_id.in_(session_ids))):
                detail = f"{event.provider_id} {event.event_id}: {event.action} → {event.status}"
                if event.last_error:
                    detail += f" ({event.last_error})"
                tone = "bad" if event.status == "failed" else "neutral"
                entries.append(
                    TimelineEntry(
                        event.created_at, "webhook", "Provider webhook received", detail, event.amount, tone
                    )
                )
        o, d, e = t.event_outbox, t.webhook_delivery, t.webhook_endpoint
        for event in await conn.execute(select(o).where(o.c.payment_collection_id == collection_id)):
            entries.append(TimelineEntry(event.created_at, "event", f"Event {event.name}", event.status))
        for delivery in await conn.execute(
            select(d, e.c.url)
            .join(e, e.c.id == d.c.endpoint_id)
            .where(d.c.payment_collection_id == collection_id)
        ):
            status = f"HTTP {delivery.response_status}" if delivery.response_status else delivery.status
            tone = (
                "good"
                if delivery.status == "delivered"
                else "bad"
                if delivery.status == "failed"
                else "neutral"
            )
            at = delivery.delivered_at or delivery.created_at
            entries.append(
                TimelineEntry(
                    at,
                    "delivery",
                    "Event delivered" if tone == "good" else "Event delivery",
                    f"{delivery.url} · {status}",
                    tone=tone,
                )
            )
    entries.sort(key=lambda entry: entry.at)
    return entries
