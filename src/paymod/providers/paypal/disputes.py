"""PayPal disputes: `CUSTOMER.DISPUTE.*` events mapped onto the `disputed` action, and the merchant's
answers through PayPal's Disputes API v1 (accepting: `POST /v1/customer/disputes/{id}/accept-claim`;
evidence: `POST /v1/customer/disputes/{id}/provide-evidence`).

PayPal's server SDK has no Disputes API, so the answers go over the provider's own HTTP client with the
SDK's OAuth token, as the webhook verification does.

A PayPal dispute (developer.paypal.com/docs/api/customer-disputes/v1) has a `status` (OPEN,
WAITING_FOR_BUYER_RESPONSE, WAITING_FOR_SELLER_RESPONSE, UNDER_REVIEW, RESOLVED, OTHER), a
`dispute_life_cycle_stage` (INQUIRY, CHARGEBACK, PRE_ARBITRATION, ARBITRATION) and, once resolved, a
`dispute_outcome.outcome_code` (RESOLVED_BUYER_FAVOUR, RESOLVED_SELLER_FAVOUR, RESOLVED_WITH_PAYOUT,
CANCELED_BY_BUYER, ACCEPTED, DENIED, NONE). paymod speaks Stripe's words (`DisputeStatus`):

- an inquiry (the buyer asks the merchant first) is a warning: `warning_needs_response` while PayPal
  waits for the merchant, `warning_under_review` otherwise, `warning_closed` once resolved;
- past the inquiry: WAITING_FOR_SELLER_RESPONSE is `needs_response`; OPEN, WAITING_FOR_BUYER_RESPONSE,
  UNDER_REVIEW and OTHER are `under_review` (open, and nothing the merchant must do now);
- resolved, at any stage, by an outcome that gave the buyer the money (RESOLVED_BUYER_FAVOUR,
  ACCEPTED) is `lost`: the amount is no longer the merchant's to refund, even when it was an inquiry;
  one that left it with the merchant (RESOLVED_SELLER_FAVOUR, CANCELED_BY_BUYER, DENIED, and
  RESOLVED_WITH_PAYOUT, where PayPal paid the buyer itself) is `won`; a resolved chargeback with no
  outcome paymod knows is `won` too (a wrong `won` leaves a refund for PayPal to refuse, a wrong `lost`
  would forbid one the merchant may owe).

A capture PayPal reverses (`PAYMENT.CAPTURE.REVERSED`) while the buyer disputes it is the dispute's money
leaving the merchant, not a refund: it is reported as the dispute with `funds_withdrawn`, so a lost
dispute is not counted twice (once as the reversal, once as lost).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from paymod.domain.errors import InvalidDataError, ProviderError
from paymod.domain.statuses import DisputeStatus, PaymentAction
from paymod.providers.base import (
    DisputeEvidenceInput,
    DisputeInput,
    DisputeOutput,
    ProviderDispute,
    WebhookActionResult,
)
from paymod.providers.paypal.amounts import from_money
from paymod.providers.paypal.client import Data, PayPalCalls

log = logging.getLogger("paymod.providers.paypal")

# developer.paypal.com/api/rest/webhooks/event-names, "Disputes": each carries the dispute as it stands.
DISPUTE_EVENTS = frozenset(
    {"CUSTOMER.DISPUTE.CREATED", "CUSTOMER.DISPUTE.UPDATED", "CUSTOMER.DISPUTE.RESOLVED"}
)
DISPUTES_PATH = "/v1/customer/disputes"

_OPEN = frozenset({"OPEN", "WAITING_FOR_BUYER_RESPONSE", "UNDER_REVIEW", "OTHER"})
_BUYER_FAVOUR = frozenset({"RESOLVED_BUYER_FAVOUR", "ACCEPTED"})
_SELLER_FAVOUR = frozenset({"RESOLVED_SELLER_FAVOUR", "CANCELED_BY_BUYER", "DENIED", "RESOLVED_WITH_PAYOUT"})
#: What paymod tells PayPal when the merchant accepts a claim (PayPal may show it to the buyer).
ACCEPT_NOTE = "The merchant accepts the claim."


def dispute_status(dispute: Mapping[str, Any]) -> DisputeStatus | None:
    """A PayPal dispute's status in paymod's words (the table in this module's docstring); None for a
    status paymod does not know."""
    status = str(dispute.get("status") or "")
    inquiry = dispute.get("dispute_life_cycle_stage") == "INQUIRY"
    if status == "RESOLVED":
        outcome = (dispute.get("dispute_outcome") or {}).get("outcome_code")
        if outcome in _BUYER_FAVOUR:
            return DisputeStatus.LOST
        if inquiry:
            return DisputeStatus.WARNING_CLOSED
        return DisputeStatus.WON
    if status == "WAITING_FOR_SELLER_RESPONSE":
        return DisputeStatus.WARNING_NEEDS_RESPONSE if inquiry else DisputeStatus.NEEDS_RESPONSE
    if status in _OPEN:
        return DisputeStatus.WARNING_UNDER_REVIEW if inquiry else DisputeStatus.UNDER_REVIEW
    return None


def disputed_capture(dispute: Mapping[str, Any]) -> str | None:
    """The id of the disputed capture (the first disputed transaction's `seller_transaction_id`)."""
    for transaction in dispute.get("disputed_transactions") or ():
        if isinstance(transaction, Mapping) and transaction.get("seller_transaction_id"):
            return str(transaction["seller_transaction_id"])
    return None


def _kept(dispute: Mapping[str, Any]) -> Data:
    """What paymod keeps of PayPal's dispute (as the dispute's `data`)."""
    return {
        "id": dispute.get("dispute_id"),
        "capture_id": disputed_capture(dispute),
        "status": dispute.get("status"),
        "stage": dispute.get("dispute_life_cycle_stage"),
        "outcome": (dispute.get("dispute_outcome") or {}).get("outcome_code"),
    }


def provider_dispute(dispute: Mapping[str, Any]) -> ProviderDispute | None:
    """A PayPal dispute as paymod's `ProviderDispute` (None when its status is unknown). PayPal's
    dispute says nothing of the merchant's balance, so whether funds moved is left unsaid."""
    status = dispute_status(dispute)
    if status is None:
        return None
    amount = from_money(dispute.get("dispute_amount"))
    due = dispute.get("seller_response_due_date")
    try:
        evidence_due_by = None if not due else datetime.fromisoformat(str(due))
    except ValueError:
        raise ProviderError(
            f"The PayPal dispute has an invalid seller_response_due_date {due!r}", code="invalid_webhook"
        ) from None
    if evidence_due_by is not None and evidence_due_by.tzinfo is None:
        evidence_due_by = evidence_due_by.replace(tzinfo=UTC)
    if amount is None:
        raise ProviderError("The PayPal dispute has no valid dispute_amount", code="invalid_webhook")
    currency = (dispute.get("dispute_amount") or {}).get("currency_code")
    return ProviderDispute(
        id=str(dispute.get("dispute_id") or ""),
        amount=amount,
        currency_code=str(currency) if currency else None,
        status=status,
        reason=str(dispute["reason"]) if dispute.get("reason") else None,
        evidence_due_by=evidence_due_by,
        data=_kept(dispute),
    )


class PayPalDisputes(PayPalCalls):
    """The dispute methods of `PayPalProvider`."""

    async def _dispute_event(
        self, dispute: Mapping[str, Any], event_id: str | None, details: Data
    ) -> WebhookActionResult:
        """A `CUSTOMER.DISPUTE.*` event about a capture of an order paymod created; else not ours."""
        details = {**details, "object_id": dispute.get("dispute_id")}
        not_ours = WebhookActionResult(action=PaymentAction.NOT_SUPPORTED, event_id=event_id, data=details)
        capture_id = disputed_capture(dispute)
        if capture_id is None:
            return not_ours
        mapped = provider_dispute(dispute)
        if mapped is None:
            log.warning(
                "PayPal dispute %s has an unknown status %r: ignored",
                dispute.get("dispute_id"),
                dispute.get("status"),
            )
            return not_ours
        session = await self._capture_session(capture_id)
        if session is None:
            return not_ours
        return WebhookActionResult(
            action=PaymentAction.DISPUTED,
            session_id=session,
            event_id=event_id,
            data={**details, "capture_id": capture_id},
            dispute=mapped,
        )

    async def _reversal_dispute(
        self, capture_id: str, session: str, event_id: str | None, details: Data
    ) -> WebhookActionResult | None:
        """The dispute a reversal of `capture_id` withdrew the funds for (the latest dispute of the
        capture), as a `disputed` report; None when the capture is not disputed (a plain reversal)."""
        listed = await self._rest("GET", DISPUTES_PATH, params={"disputed_transaction_id": capture_id})
        found = [
            item
            for item in listed.body.get("items") or ()
            if isinstance(item, Mapping) and item.get("dispute_id")
        ]
        if not found:
            return None
        latest = max(found, key=lambda item: str(item.get("update_time") or item.get("create_time") or ""))
        dispute = (await self._rest("GET", f"{DISPUTES_PATH}/{latest['dispute_id']}")).body
        mapped = provider_dispute(dispute)
        if mapped is None:
            log.warning(
                "PayPal dispute %s has an unknown status %r: the reversal of capture %s is ignored",
                latest["dispute_id"],
                dispute.get("status"),
                capture_id,
            )
            return WebhookActionResult(action=PaymentAction.NOT_SUPPORTED, event_id=event_id, data=details)
        mapped.funds_withdrawn = True
        return WebhookActionResult(
            action=PaymentAction.DISPUTED,
            session_id=session,
            event_id=event_id,
            data={**details, "capture_id": capture_id, "dispute_id": mapped.id},
            dispute=mapped,
        )

    async def _dispute_now(self, dispute_id: str) -> DisputeOutput:
        """The dispute as PayPal has it after an answer (its status may have moved)."""
        found = (await self._rest("GET", f"{DISPUTES_PATH}/{dispute_id}")).body
        return DisputeOutput(data=_kept(found), status=dispute_status(found))

    async def accept_dispute(self, input: DisputeInput) -> DisputeOutput:
        """Accepts the claim: PayPal refunds the buyer and the dispute is lost."""
        dispute_id = _dispute_id(input)
        await self._rest(
            "POST",
            f"{DISPUTES_PATH}/{dispute_id}/accept-claim",
            json_body={"note": ACCEPT_NOTE},
            request_id=input.context.idempotency_key,
        )
        answer = await self._dispute_now(dispute_id)
        if answer.status is not None and not answer.status.is_final:
            answer.status = None  # PayPal has yet to resolve it: the accepting makes it lost
        return answer

    async def submit_dispute_evidence(self, input: DisputeEvidenceInput) -> DisputeOutput:
        """Sends the evidence as PayPal's `input` part (`{"evidences": [{"evidence_type", "evidence_info",
        "notes"}, ...]}`); documents (files) are not sent. PayPal keeps no drafts: only `submit=True`."""
        dispute_id = _dispute_id(input)
        if not input.submit:
            raise InvalidDataError(
                "PayPal keeps no evidence drafts: submit the evidence (submit=true) when it is complete."
            )
        if not isinstance(input.evidence.get("evidences"), list) or not input.evidence["evidences"]:
            raise InvalidDataError(
                'PayPal evidence is a list of evidences: {"evidences": [{"evidence_type": ..., ...}]}'
            )
        await self._rest(
            "POST",
            f"{DISPUTES_PATH}/{dispute_id}/provide-evidence",
            files={"input": (None, json.dumps(dict(input.evidence)), "application/json")},
            request_id=input.context.idempotency_key,
        )
        return await self._dispute_now(dispute_id)


def _dispute_id(input: DisputeInput | DisputeEvidenceInput) -> str:
    if not input.dispute_id:
        raise ProviderError("No dispute id provided.", code="invalid_data")
    return input.dispute_id
