"""Stripe disputes: `charge.dispute.*` events mapped onto the `disputed` action, and the merchant's
answers (evidence: POST /v1/disputes/{id}; accepting: POST /v1/disputes/{id}/close)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import stripe

from paymod.domain.errors import ProviderError
from paymod.domain.statuses import DisputeStatus, PaymentAction
from paymod.providers.base import (
    DisputeEvidenceInput,
    DisputeInput,
    DisputeOutput,
    ProviderDispute,
    WebhookActionResult,
)
from paymod.providers.stripe.amounts import from_smallest_unit
from paymod.providers.stripe.client import Data, StripeCalls, _dump, log

# docs.stripe.com/api/events/types: each carries the Dispute object as it stands.
DISPUTE_EVENTS = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
)

# Stripe's statuses beyond paymod's: an appeal is answered and reviewed like the dispute was, and a
# prevented dispute (resolved before it became one) costs the merchant nothing, as a won one.
_STATUSES = {
    "appeal_needs_response": DisputeStatus.NEEDS_RESPONSE,
    "appeal_under_review": DisputeStatus.UNDER_REVIEW,
    "prevented": DisputeStatus.WON,
}


def dispute_status(value: object) -> DisputeStatus | None:
    """A Dispute's `status` in paymod's words; None for one paymod does not know."""
    text = str(value or "")
    try:
        return DisputeStatus(text)
    except ValueError:
        return _STATUSES.get(text)


def provider_dispute(dispute: Mapping[str, Any], event_type: str | None = None) -> ProviderDispute | None:
    """A Dispute object as paymod's `ProviderDispute` (None when its status is unknown). Whether
    funds moved: the event says (`funds_withdrawn` / `funds_reinstated`), else the dispute's balance
    transactions do (a withdrawal is negative, a reinstatement positive)."""
    status = dispute_status(dispute.get("status"))
    if status is None:
        return None
    currency = str(dispute.get("currency") or "")
    try:
        amount = from_smallest_unit(int(dispute.get("amount") or 0), currency)
        movements = [
            int(t.get("amount") or 0)
            for t in dispute.get("balance_transactions") or ()
            if isinstance(t, Mapping)
        ]
        due = (dispute.get("evidence_details") or {}).get("due_by")
        evidence_due_by = None if due is None else datetime.fromtimestamp(int(due), UTC)
    except (TypeError, ValueError, ArithmeticError, OSError) as exc:
        raise ProviderError(f"The Stripe dispute is invalid: {exc}", code="invalid_webhook") from None
    withdrawn = event_type == "charge.dispute.funds_withdrawn" or any(m < 0 for m in movements)
    reinstated = event_type == "charge.dispute.funds_reinstated" or any(m > 0 for m in movements)
    return ProviderDispute(
        id=str(dispute.get("id") or ""),
        amount=amount,
        currency_code=currency or None,
        status=status,
        reason=str(dispute["reason"]) if dispute.get("reason") else None,
        evidence_due_by=evidence_due_by,
        funds_withdrawn=withdrawn or None,
        funds_reinstated=reinstated or None,
        data={
            "id": dispute.get("id"),
            "charge": dispute.get("charge"),
            "payment_intent": dispute.get("payment_intent"),
        },
    )


class StripeDisputes(StripeCalls):
    """The dispute methods of `StripeProvider`."""

    async def _dispute_webhook(
        self, event: stripe.Event, obj: Data, account: str | None
    ) -> WebhookActionResult:
        """A `charge.dispute.*` event about a charge of an intent paymod created; else not ours."""
        event_type = str(event.type)
        details: Data = {"event_type": event_type, "object_id": obj.get("id")}
        if getattr(event, "account", None):
            details["account"] = event.account
        not_ours = WebhookActionResult(action=PaymentAction.NOT_SUPPORTED, event_id=event.id, data=details)
        intent_id = obj.get("payment_intent")
        if isinstance(intent_id, Mapping):
            intent_id = intent_id.get("id")
        if not isinstance(intent_id, str) or not intent_id:
            return not_ours
        dispute = provider_dispute(obj, event_type)
        if dispute is None:
            log.warning(
                "Stripe dispute %s has an unknown status %r: ignored", obj.get("id"), obj.get("status")
            )
            return not_ours
        intent = await self._retrieve_intent(intent_id, account)
        session_id = (intent.get("metadata") or {}).get("session_id")
        if not session_id:
            return not_ours
        if getattr(event, "account", None):
            # Answered later on the connected account the dispute belongs to.
            dispute.data["stripe_account"] = event.account
        return WebhookActionResult(
            action=PaymentAction.DISPUTED,
            session_id=str(session_id),
            event_id=event.id,
            data=details,
            dispute=dispute,
        )

    def _dispute_account(self, input: DisputeInput | DisputeEvidenceInput) -> str | None:
        return self._account(input.data, input.context)

    async def submit_dispute_evidence(self, input: DisputeEvidenceInput) -> DisputeOutput:
        """Saves the evidence (Stripe's field names: `customer_name`, `uncategorized_text`, ...) and,
        with `submit`, submits it: Stripe allows one submission."""
        dispute_id = _dispute_id(input)
        options = self._options(input.context.idempotency_key, self._dispute_account(input))
        params = cast(
            "stripe.params.DisputeUpdateParams", {"evidence": dict(input.evidence), "submit": input.submit}
        )
        updated = _dump(
            await self._request(lambda: self.client.v1.disputes.update_async(dispute_id, params, options))
        )
        return DisputeOutput(data=_kept(updated), status=dispute_status(updated.get("status")))

    async def accept_dispute(self, input: DisputeInput) -> DisputeOutput:
        """Closes the dispute: "acknowledging it as lost" (docs.stripe.com/api/disputes/close)."""
        dispute_id = _dispute_id(input)
        options = self._options(input.context.idempotency_key, self._dispute_account(input))
        closed = _dump(
            await self._request(lambda: self.client.v1.disputes.close_async(dispute_id, None, options))
        )
        return DisputeOutput(data=_kept(closed), status=dispute_status(closed.get("status")))


def _dispute_id(input: DisputeInput | DisputeEvidenceInput) -> str:
    if not input.dispute_id:
        raise ProviderError("No dispute id provided.", code="invalid_data")
    return input.dispute_id


def _kept(dispute: Mapping[str, Any]) -> Data:
    return {
        "id": dispute.get("id"),
        "charge": dispute.get("charge"),
        "payment_intent": dispute.get("payment_intent"),
    }
