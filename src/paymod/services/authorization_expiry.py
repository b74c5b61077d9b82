"""Authorizations that lapse at the provider: warned about before their deadline, marked expired after it.

The worker's maintenance lane runs `maintain_authorization_expiry` every few seconds (any number of
workers may): open authorizations are found by the partial index on their deadline, and each is decided
and written under the payment's lock, so a warning and an expiry happen once however many workers look.
An expired authorization is ended like one the provider voided (`record_provider_cancel`): canceled when
nothing was captured, closed for the rest after a partial capture; nothing is asked of the provider,
which released the money itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from paymod.domain import rules
from paymod.domain.expiry import ExpiryStep, OpenAuthorization, expiry_step
from paymod.domain.money import round_amount
from paymod.persistence import entities as e
from paymod.persistence import outbox
from paymod.persistence import tables as t
from paymod.persistence.repository import utc_now
from paymod.services.provider_authorizations import ProviderAuthorizationsMixin

#: Warn this long before an authorization lapses, unless configured (`[worker] authorization_expiry_warning`).
DEFAULT_EXPIRY_WARNING = timedelta(hours=24)


@dataclass(slots=True)
class ExpiryReport:
    """The payments warned about and those marked expired in one pass."""

    warned: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


class AuthorizationExpiryMixin(ProviderAuthorizationsMixin):
    """Warns about authorizations about to lapse and expires those that did."""

    async def maintain_authorization_expiry(
        self, *, warning: timedelta = DEFAULT_EXPIRY_WARNING, limit: int = 100, now: datetime | None = None
    ) -> ExpiryReport:
        """One pass: at most `limit` open authorizations due (within `warning` of their deadline and not
        warned yet, or past it), each warned (`payment.authorization_expiring`) or expired
        (`payment.authorization_expired`) once."""
        now = now or utc_now()
        report = ExpiryReport()
        for payment_id in await self._due_authorizations(now, warning, limit):
            step = await self._apply_expiry(payment_id, now, warning)
            if step == ExpiryStep.WARN:
                report.warned.append(payment_id)
            elif step == ExpiryStep.EXPIRE:
                report.expired.append(payment_id)
        return report

    async def _due_authorizations(self, now: datetime, warning: timedelta, limit: int) -> list[str]:
        p = t.payment
        query = (
            select(p.c.id)
            .where(
                p.c.deleted_at.is_(None),
                p.c.captured_at.is_(None),
                p.c.canceled_at.is_(None),
                p.c.authorization_expires_at.is_not(None),
                p.c.authorization_expires_at <= now + warning,
                or_(p.c.expiring_notified_at.is_(None), p.c.authorization_expires_at <= now),
            )
            .order_by(p.c.authorization_expires_at)
            .limit(limit)
        )
        async with self.database.read() as conn:
            return [str(row.id) for row in await conn.execute(query)]

    async def _apply_expiry(self, payment_id: str, now: datetime, warning: timedelta) -> ExpiryStep:
        """Decides and writes one payment's step under its lock (another worker may have done it)."""
        async with self.database.write() as conn:
            locked = await self.ledger.lock_payment(conn, payment_id)
            payment = locked.row
            captured = rules.total(locked.captures)
            amount = round_amount(payment["amount"], payment["currency_code"])
            step = expiry_step(
                OpenAuthorization(
                    expires_at=payment["authorization_expires_at"],
                    notified_at=payment["expiring_notified_at"],
                    expired_at=payment["expired_at"],
                    canceled=payment["canceled_at"] is not None,
                    fully_captured=payment["captured_at"] is not None or captured >= amount,
                ),
                now,
                warning,
            )
            expires_at = payment["authorization_expires_at"]
            collection_id = payment["payment_collection_id"]
            if step == ExpiryStep.WARN:
                await self._repo(e.PAYMENT).update(conn, payment_id, {"expiring_notified_at": now})
                outbox.emit(
                    conn,
                    "payment.authorization_expiring",
                    {"id": payment_id, "expires_at": expires_at.isoformat()},
                    collection_id,
                )
            elif step == ExpiryStep.EXPIRE:
                ended = await self._book_void(
                    conn,
                    locked,
                    "payment.authorization_expired",
                    {"id": payment_id, "reason": "expired", "expires_at": expires_at.isoformat()},
                    {"expired_at": now},
                )
                if ended is None:
                    return ExpiryStep.NOTHING
        return step
