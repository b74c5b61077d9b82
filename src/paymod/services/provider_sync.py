"""The janitor's rows: sessions the provider never reported on, and each check of one, with backoff.

`paymod.webhooks.provider_sync` asks the provider and applies its answer the way a webhook is applied;
here are the module's narrow methods it needs: which sessions are due, claiming one check (so two
workers never ask about one session at once, and the backoff moves on even when the provider call
fails), and the event that records a correction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from paymod.domain.expiry import next_provider_check, sync_window
from paymod.domain.statuses import PaymentSessionStatus
from paymod.persistence import outbox
from paymod.persistence import tables as t
from paymod.persistence.repository import Row
from paymod.services.core import ModuleCore

#: Sessions in these statuses wait for the provider (a webhook, or the customer's next step).
UNSETTLED = (
    PaymentSessionStatus.PENDING.value,
    PaymentSessionStatus.REQUIRES_MORE.value,
    PaymentSessionStatus.PENDING_AUTHORIZATION.value,
)
#: The first wait between two checks of one session; it doubles with every check, up to 6 hours.
FIRST_RECHECK = timedelta(minutes=1)


class ProviderSyncMixin(ModuleCore):
    """Unsettled sessions for the janitor, and its claims and events."""

    async def sessions_to_sync(
        self, *, now: datetime, after: timedelta, max_age: timedelta, limit: int
    ) -> list[Row]:
        """Unsettled sessions created between `max_age` and `after` ago whose next check is due and that
        no authorization is holding right now, oldest first."""
        s = t.payment_session
        oldest, youngest = sync_window(now, after=after, max_age=max_age)
        query = (
            select(s)
            .where(
                s.c.deleted_at.is_(None),
                s.c.authorized_at.is_(None),
                s.c.status.in_(UNSETTLED),
                s.c.created_at >= oldest,
                s.c.created_at <= youngest,
                or_(s.c.next_provider_check_at.is_(None), s.c.next_provider_check_at <= now),
                or_(s.c.authorizing_until.is_(None), s.c.authorizing_until <= now),
            )
            .order_by(s.c.created_at)
            .limit(limit)
        )
        async with self.database.read() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings()]

    async def claim_provider_check(self, session: Row, *, now: datetime) -> bool:
        """Records one check of `session` (as read by `sessions_to_sync`) and when the next is due; False
        when another worker checked it meanwhile or it settled."""
        s = t.payment_session
        attempts = int(session["provider_check_attempts"] or 0) + 1
        async with self.database.write() as conn:
            claimed = await conn.execute(
                update(s)
                .where(
                    s.c.id == session["id"],
                    s.c.authorized_at.is_(None),
                    s.c.deleted_at.is_(None),
                    s.c.status.in_(UNSETTLED),
                    s.c.provider_check_attempts == attempts - 1,
                )
                .values(
                    provider_checked_at=now,
                    provider_check_attempts=attempts,
                    next_provider_check_at=next_provider_check(attempts, now, first=FIRST_RECHECK),
                )
            )
        return bool(claimed.rowcount)

    async def record_provider_sync(
        self, session_id: str, collection_id: str, before: str, after: str, detail: dict[str, Any]
    ) -> None:
        """Emits `payment.payment-session.synced` for a correction the janitor made (in the collection's
        timeline with the other events)."""
        async with self.database.write() as conn:
            outbox.emit(
                conn,
                "payment.payment-session.synced",
                {"id": session_id, "before": before, "after": after, "source": "provider_sync", **detail},
                collection_id,
            )
