"""The janitor (provider sync): sessions whose webhook never came are asked about, and the answer is
applied exactly as that webhook would have been.

A session left `pending`, `requires_more` or `pending_authorization` longer than `session_sync_after`
is asked with the provider's `get_payment_status`, then again with backoff (1 minute, doubling, at most
6 hours between checks) until it settles or is older than `session_sync_max_age`. What the provider
says goes through `process_webhook_event`, the code that applies a stored webhook: authorized →
the session is authorized and its payment created; captured → also captured; canceled / error → the
session is marked. So a janitor racing the late webhook, or the customer's own authorize, books once:
each takes the same locks and `authorize_payment_session` is idempotent. Every correction emits
`payment.payment-session.synced` (before, after) next to the usual events.

It lives with the webhooks because it is one: a report the provider was asked for instead of sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from paymod.domain.errors import NotFoundError
from paymod.domain.statuses import PaymentAction, PaymentSessionStatus
from paymod.persistence.repository import utc_now
from paymod.providers.base import ProviderInput
from paymod.services.inputs import provider_context
from paymod.services.payment_module import PaymentModule
from paymod.webhooks.inbox import process_webhook_event

log = logging.getLogger("paymod.provider_sync")

#: What a provider's status means, as the webhook action that would have reported it; requires_more and
#: the pending statuses change nothing (the customer or the provider has yet to act).
_ACTIONS = {
    PaymentSessionStatus.AUTHORIZED: PaymentAction.AUTHORIZED,
    PaymentSessionStatus.CAPTURED: PaymentAction.SUCCESSFUL,
    PaymentSessionStatus.CANCELED: PaymentAction.CANCELED,
    PaymentSessionStatus.ERROR: PaymentAction.FAILED,
}
DEFAULT_SYNC_AFTER = timedelta(minutes=15)
DEFAULT_SYNC_MAX_AGE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class SessionSync:
    """One session checked: its status before, what the provider said, and what was done."""

    session_id: str
    provider_id: str
    before: str
    provider_status: str | None
    outcome: str  # unchanged | authorized | captured | session_canceled | session_error | failed | ...
    after: str
    detail: str = ""

    @property
    def changed(self) -> bool:
        return self.before != self.after


async def sync_sessions(
    module: PaymentModule,
    *,
    after: timedelta = DEFAULT_SYNC_AFTER,
    max_age: timedelta = DEFAULT_SYNC_MAX_AGE,
    limit: int = 50,
    now: datetime | None = None,
) -> list[SessionSync]:
    """One pass over the due sessions (at most `limit`); returns what it checked and what changed."""
    now = now or utc_now()
    report: list[SessionSync] = []
    for session in await module.sessions_to_sync(now=now, after=after, max_age=max_age, limit=limit):
        if not await module.claim_provider_check(session, now=now):
            continue  # another worker checks it, or it settled meanwhile
        report.append(await _sync_one(module, session))
    return report


async def _sync_one(module: PaymentModule, session: dict[str, Any]) -> SessionSync:
    session_id, provider_id = str(session["id"]), str(session["provider_id"])
    before = str(session["status"])
    try:
        provider = module.provider(provider_id)
        answer = await provider.get_payment_status(
            ProviderInput(
                data=dict(session["data"] or {}),
                context=provider_context(None, f"{session_id}:status"),
            )
        )
    except Exception as exc:  # reported, and asked again after the backoff
        log.warning("provider sync: session %s: %s", session_id, exc)
        error = f"{type(exc).__name__}: {exc}"
        return SessionSync(session_id, provider_id, before, None, "failed", before, error)
    status = None if answer.status is None else PaymentSessionStatus(answer.status)
    action = None if status is None else _ACTIONS.get(status)
    if action is None:
        return SessionSync(session_id, provider_id, before, _value(status), "unchanged", before)
    event = {
        "id": f"provider_sync:{session_id}",
        "action": action.value,
        "session_id": session_id,
        "amount": None,
        "remaining_capturable": None,
        "refunds": None,
        "provider_id": provider_id,
    }
    try:
        outcome = await process_webhook_event(module, event)
    except Exception as exc:  # e.g. the collection refuses the payment: reported, asked again later
        log.warning("provider sync: session %s (%s): %s", session_id, action.value, exc)
        return SessionSync(
            session_id, provider_id, before, _value(status), "failed", before, f"{type(exc).__name__}: {exc}"
        )
    try:
        current = await module.retrieve_payment_session(session_id)
    except NotFoundError:  # deleted or replaced meanwhile: nothing to correct
        return SessionSync(session_id, provider_id, before, _value(status), outcome, before)
    after = current.status.value
    if after != before:
        await module.record_provider_sync(
            session_id, current.payment_collection_id, before, after, {"provider_status": _value(status)}
        )
    return SessionSync(session_id, provider_id, before, _value(status), outcome, after)


def _value(status: PaymentSessionStatus | None) -> str | None:
    return None if status is None else status.value
