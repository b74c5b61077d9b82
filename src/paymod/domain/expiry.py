"""Authorizations that lapse, and unsettled sessions asked about again: the pure decisions.

A provider holds an uncaptured authorization for a while only (Stripe: 7 days for online card
payments); after its deadline the money is released and a capture fails at the provider. paymod
warns before the deadline, marks the payment expired after it, and refuses to capture it.

A session the provider never reported on (a webhook lost, a customer who finished 3-D Secure and
closed the tab) is asked about with backoff: soon at first, then less often, and no more after a
maximum age.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from paymod.domain.errors import NotAllowedError


class ExpiryStep(StrEnum):
    """What the expiry job does to one open authorization now."""

    NOTHING = "nothing"
    WARN = "warn"
    EXPIRE = "expire"


@dataclass(frozen=True, slots=True)
class OpenAuthorization:
    """An authorization's facts the decision reads."""

    expires_at: datetime | None
    notified_at: datetime | None
    expired_at: datetime | None
    canceled: bool
    fully_captured: bool


def authorization_lapsed(expires_at: datetime | None, expired_at: datetime | None, now: datetime) -> bool:
    """Whether the provider no longer lets this authorization be captured."""
    return expired_at is not None or (expires_at is not None and expires_at <= now)


def check_capturable(
    payment_id: str, expires_at: datetime | None, expired_at: datetime | None, now: datetime
) -> None:
    """Refuses a capture of an authorization that lapsed, before the provider is asked (it would refuse
    too, or worse, charge the card anew)."""
    if authorization_lapsed(expires_at, expired_at, now):
        deadline = f" on {expires_at.isoformat()}" if expires_at is not None else ""
        raise NotAllowedError(
            f"The authorization of payment {payment_id} expired{deadline}; it can no longer be captured.",
            code="authorization_expired",
        )


def expiry_step(facts: OpenAuthorization, now: datetime, warning: timedelta) -> ExpiryStep:
    """Expire once the deadline has passed; warn once within `warning` of it; else nothing. A
    captured or canceled authorization holds nothing any more."""
    if facts.expires_at is None or facts.expired_at is not None or facts.canceled or facts.fully_captured:
        return ExpiryStep.NOTHING
    if facts.expires_at <= now:
        return ExpiryStep.EXPIRE
    if facts.notified_at is None and facts.expires_at - warning <= now:
        return ExpiryStep.WARN
    return ExpiryStep.NOTHING


def next_provider_check(
    attempts: int, now: datetime, *, first: timedelta, cap: timedelta = timedelta(hours=6)
) -> datetime:
    """When to ask the provider again after `attempts` checks: `first`, doubling, at most `cap`."""
    exponent = min(max(attempts - 1, 0), 30)
    return now + min(first * (1 << exponent), cap)


def sync_window(now: datetime, *, after: timedelta, max_age: timedelta) -> tuple[datetime, datetime]:
    """The creation times of the sessions the janitor asks about: older than `after`, younger than
    `max_age` (the provider has long settled or forgotten older ones)."""
    return now - max_age, now - after
