"""A scripted provider for tests, yours and ours (identifier `testing`).

The session's `data["scenario"]` decides what happens, like Stripe's test cards:

- `authorized` (default): authorization succeeds.
- `captured`: the provider captures on authorization (auto-capture).
- `requires_more`: 3-D Secure; authorizes once `data["action_completed"]` is true.
- `pending_authorization`: an async method; authorizes once `data["payment_received"]` is true.
- `decline`: authorization answers status `error` with a `decline_code`.
- `provider_error`: authorization raises `ProviderError`.
- `timeout`: authorization raises `RetryableProviderError` (the outcome is unknown).
- `initiate_error`, `capture_error`, `refund_error`, `cancel_error`: that call raises `ProviderError`.

- `data["delay"]` (seconds, up to 60): authorization answers that much later, as a slow provider does.
- `silent`: the webhook never sent. Authorization answers `pending_authorization` and notes in the
  session's data when the payment settles (`settles_at`, epoch seconds: `data["settle_after"]` seconds,
  default 0, after that first authorization); from then on authorization and `get_payment_status`
  answer `data["settles_as"]` (`authorized` (default), `captured`, `canceled` or `error`). The state
  lives in the session's data, so any process asking sees the same; paymod's janitor (provider sync)
  finds such sessions and applies the settled status.

`get_payment_status` answers what authorization would (`pending` for a session without a scenario:
nobody paid it).

Authorizations that lapse: with the `authorization_ttl` option or `data["authorization_ttl"]` (seconds),
an authorization answers `expires_at` = now + that many seconds (without either, it never lapses).

- `voided`: authorization succeeds, then the authorization is voided at the provider (its dashboard,
  say): a capture raises `ProviderError` with code `authorization_voided`, and `get_payment_status`
  of the authorized session answers `canceled`. Its void's report is a `canceled` webhook (below),
  sent or not, as the test chooses.
- `single_capture`: the first capture closes the authorization and releases the rest, as Stripe does
  after a partial capture without multicapture.

Webhooks are JSON bodies `{"id", "action", "session_id", "amount"}` (with `"remaining_capturable": 0`
a `captured` event closes the authorization, as Stripe's `payment_intent.succeeded` does), signed
with the HMAC-SHA256 of the raw body, hex, in header `x-testing-signature`, under the
`webhook_secret` option.
Refunds made "at the provider": `{"action": "refunded", "session_id", "refund_id", "amount"}` books a
refund paymod did not make (once per `refund_id`); `{"action": "refund_failed", "session_id",
"refund_id", "reason"}` marks a refund failed. Each refund paymod makes here gets the provider id
`tre_<paymod's refund id>` (`RefundPaymentOutput.refund_id`); a body may name paymod's refund id as
`paymod_refund_id`, as Stripe's refund metadata does.
Authorizations voided "at the provider": `{"action": "canceled", "session_id"}` on an authorized
session cancels its payment (or closes it after a partial capture), once; on a session not
authorized yet it marks the session canceled, as before.
Disputes (chargebacks): `{"action": "disputed", "session_id", "dispute_id", "amount", "status",
"reason", "evidence_due_by"}` records a dispute of the session's payment (once per `dispute_id`),
or updates it; `status` is one of Stripe's dispute statuses (default `needs_response`),
`evidence_due_by` an ISO 8601 date-time, and the currency is the payment's unless `currency_code`
says otherwise. Evidence submitted here (`submit_dispute_evidence`) answers `under_review` when
submitted (the status stays when only saved); accepting a dispute (`accept_dispute`) answers `lost`.
Every call is counted per (method, idempotency key) in `calls`, so tests can prove a retry reused
its key and the provider was asked once (a long-running server using it for load tests sets the
`record_calls` option to false: the count grows with every call); with the `calls_file` option each
call is also appended to that file as a JSON line, so a test can count calls made by processes it
killed. `lose_next_capture_answer()` makes the next capture happen here with its answer lost on the
way (`RetryableProviderError`); a retry with the same idempotency key gets the kept answer.
The `latency` option (seconds, 0 to 10, default 0) makes every call to the provider's API (not the
webhook check, which is local) answer that much later, as a remote provider does: load tests use it to
see that calls in flight hold no database connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from paymod.domain.errors import ProviderError, RetryableProviderError
from paymod.domain.statuses import DisputeStatus, PaymentAction, PaymentSessionStatus
from paymod.providers.base import (
    AccountHolderInput,
    AccountHolderOutput,
    AuthorizePaymentOutput,
    CapturePaymentInput,
    CapturePaymentOutput,
    DisputeEvidenceInput,
    DisputeInput,
    DisputeOutput,
    InitiatePaymentInput,
    InitiatePaymentOutput,
    PaymentMethodInput,
    PaymentMethodOutput,
    PaymentProvider,
    ProviderDispute,
    ProviderInput,
    ProviderOutput,
    ProviderRefund,
    RefundPaymentInput,
    RefundPaymentOutput,
    StatusOutput,
    UpdatePaymentInput,
    WebhookActionResult,
    WebhookPayload,
)

SIGNATURE_HEADER = "x-testing-signature"
#: What a `silent` session settles as (`data["settles_as"]`).
_SETTLES_AS = {
    "authorized": PaymentSessionStatus.AUTHORIZED,
    "captured": PaymentSessionStatus.CAPTURED,
    "canceled": PaymentSessionStatus.CANCELED,
    "error": PaymentSessionStatus.ERROR,
}
MAX_DELAY = 60
MAX_LATENCY = 10


def sign(body: bytes, secret: str) -> str:
    """The `x-testing-signature` value for a webhook body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class TestingPaymentProvider(PaymentProvider):
    identifier = "testing"
    __test__ = False  # not a pytest class

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.calls: Counter[tuple[str, str | None]] = Counter()
        self._methods: dict[str, dict[str, Data]] = {}
        self._latency = float(self.options.get("latency") or 0)
        #: Captures done whose answer was "lost" (`lose_next_capture_answer`), by idempotency key.
        self._kept_captures: dict[str | None, ProviderOutput] = {}
        self._lose_next_capture_answer = False

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        latency = options.get("latency", 0)
        number = isinstance(latency, int | float) and not isinstance(latency, bool)
        if not number or not 0 <= latency <= MAX_LATENCY:
            raise ValueError(f"latency must be a number of seconds from 0 to {MAX_LATENCY}")

    async def _lag(self) -> None:
        if self._latency:
            await asyncio.sleep(self._latency)

    def _count(self, method: str, input: ProviderInput) -> str:
        key = input.context.idempotency_key
        if self.options.get("record_calls", True):
            self.calls[(method, key)] += 1
        calls_file = self.options.get("calls_file")
        if calls_file:
            # Crash tests count calls across processes: one JSON line per call, appended at once.
            with open(calls_file, "a", encoding="utf-8") as log:
                log.write(json.dumps({"method": method, "key": key}) + "\n")
        return str(input.data.get("scenario", "authorized"))

    def lose_next_capture_answer(self) -> None:
        """For tests: the next capture is made here, then its answer is lost on the way
        (`RetryableProviderError`, the outcome is unknown to paymod); a retry with the same idempotency
        key gets the kept answer, as a provider's idempotent replay would, and captures nothing more."""
        self._lose_next_capture_answer = True

    def count(self, method: str) -> int:
        return sum(n for (m, _), n in self.calls.items() if m == method)

    def _status(self, data: Mapping[str, Any]) -> PaymentSessionStatus:
        scenario = data.get("scenario", "authorized")
        if scenario == "silent":
            settles_at = data.get("settles_at")
            if settles_at is None or time.time() < float(settles_at):
                return PaymentSessionStatus.PENDING_AUTHORIZATION
            return _SETTLES_AS.get(str(data.get("settles_as", "authorized")), PaymentSessionStatus.ERROR)
        if scenario == "captured":
            return PaymentSessionStatus.CAPTURED
        if scenario == "requires_more" and not data.get("action_completed"):
            return PaymentSessionStatus.REQUIRES_MORE
        if scenario == "pending_authorization" and not data.get("payment_received"):
            return PaymentSessionStatus.PENDING_AUTHORIZATION
        if scenario == "decline":
            return PaymentSessionStatus.ERROR
        return PaymentSessionStatus.AUTHORIZED

    async def initiate_payment(self, input: InitiatePaymentInput) -> InitiatePaymentOutput:
        await self._lag()
        if self._count("initiate_payment", input) == "initiate_error":
            raise ProviderError("Create session error")
        reference = f"tst_{uuid.uuid4().hex[:16]}"
        data = {**input.data, "reference": reference, "amount": str(input.amount)}
        return InitiatePaymentOutput(id=reference, data=data, status=PaymentSessionStatus.PENDING)

    async def update_payment(self, input: UpdatePaymentInput) -> StatusOutput:
        await self._lag()
        self._count("update_payment", input)
        return StatusOutput(data={**input.data, "amount": str(input.amount)})

    async def delete_payment(self, input: ProviderInput) -> ProviderOutput:
        await self._lag()
        self._count("delete_payment", input)
        return ProviderOutput(data={**input.data, "deleted": True})

    async def authorize_payment(self, input: ProviderInput) -> AuthorizePaymentOutput:
        await self._lag()
        scenario = self._count("authorize_payment", input)
        delay = _decimal(input.data.get("delay"))
        if delay > 0:
            # A slow provider: what a request in flight looks like when the server is asked to stop.
            await asyncio.sleep(min(float(delay), MAX_DELAY))
        if scenario == "provider_error":
            raise ProviderError("The testing provider failed to authorize the payment.")
        if scenario == "timeout":
            raise RetryableProviderError("The testing provider timed out; the outcome is unknown.")
        data = dict(input.data)
        if scenario == "silent" and data.get("settles_at") is None:
            # The first authorization is what the customer did: it is pending, and settles later.
            data["settles_at"] = time.time() + float(_decimal(data.get("settle_after")))
            status = PaymentSessionStatus.PENDING_AUTHORIZATION
        else:
            status = self._status(data)
        if status == PaymentSessionStatus.ERROR:
            data["decline_code"] = "card_declined"
        if status == PaymentSessionStatus.REQUIRES_MORE:
            data["next_action"] = {"type": "redirect_to_url", "url": "https://testing.invalid/3ds"}
        if status in (PaymentSessionStatus.AUTHORIZED, PaymentSessionStatus.CAPTURED):
            data["authorized_status"] = str(status)
        ttl = data.get("authorization_ttl", self.options.get("authorization_ttl"))
        expires_at = None
        if ttl is not None and status == PaymentSessionStatus.AUTHORIZED:
            expires_at = datetime.now(UTC) + timedelta(seconds=float(_decimal(ttl)))
        return AuthorizePaymentOutput(data=data, status=status, expires_at=expires_at)

    async def capture_payment(self, input: CapturePaymentInput) -> ProviderOutput:
        await self._lag()
        scenario = self._count("capture_payment", input)
        if scenario == "capture_error":
            raise ProviderError("The testing provider failed to capture the payment.")
        if scenario == "voided":
            raise ProviderError(
                "The testing provider cannot capture a voided authorization.", code="authorization_voided"
            )
        kept = self._kept_captures.get(input.context.idempotency_key)
        if kept is not None:
            return kept
        captured = _decimal(input.data.get("amount_captured")) + input.amount
        data = {**input.data, "amount_captured": str(captured)}
        answer = (
            CapturePaymentOutput(data=data, remaining_capturable=Decimal(0))
            if scenario == "single_capture"
            else ProviderOutput(data=data)
        )
        if self._lose_next_capture_answer:
            self._lose_next_capture_answer = False
            self._kept_captures[input.context.idempotency_key] = answer
            raise RetryableProviderError("The testing provider's capture answer was lost; it did capture.")
        return answer

    async def refund_payment(self, input: RefundPaymentInput) -> ProviderOutput:
        await self._lag()
        if self._count("refund_payment", input) == "refund_error":
            raise ProviderError("The testing provider failed to refund the payment.")
        refunded = _decimal(input.data.get("amount_refunded")) + input.amount
        key = input.context.idempotency_key
        return RefundPaymentOutput(
            data={**input.data, "amount_refunded": str(refunded)}, refund_id=f"tre_{key}" if key else None
        )

    async def retrieve_payment(self, input: ProviderInput) -> ProviderOutput:
        await self._lag()
        self._count("retrieve_payment", input)
        return ProviderOutput(data=dict(input.data))

    async def cancel_payment(self, input: ProviderInput) -> ProviderOutput:
        await self._lag()
        if self._count("cancel_payment", input) == "cancel_error":
            raise ProviderError("The testing provider failed to cancel the payment.")
        return ProviderOutput(data={**input.data, "canceled": True})

    async def get_payment_status(self, input: ProviderInput) -> StatusOutput:
        await self._lag()
        self._count("get_payment_status", input)
        if "scenario" not in input.data:
            # No scenario chosen: the customer has not paid here unless this provider authorized it.
            answered = input.data.get("authorized_status")
            status = PaymentSessionStatus(answered) if answered else PaymentSessionStatus.PENDING
            return StatusOutput(data=dict(input.data), status=status)
        if input.data.get("scenario") == "voided" and input.data.get("authorized_status"):
            return StatusOutput(data=dict(input.data), status=PaymentSessionStatus.CANCELED)
        return StatusOutput(data=dict(input.data), status=self._status(input.data))

    async def get_webhook_action_and_data(self, payload: WebhookPayload) -> WebhookActionResult:
        secret = str(self.options.get("webhook_secret", ""))
        headers = {k.lower(): v for k, v in payload.headers.items()}
        signature = headers.get(SIGNATURE_HEADER, "")
        if not secret or not hmac.compare_digest(sign(payload.raw_data, secret), signature):
            raise ProviderError("The webhook signature is invalid.", code="invalid_signature")
        try:
            body = json.loads(payload.raw_data)
            action = PaymentAction(body["action"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError(f"The webhook body is invalid: {exc}", code="invalid_webhook") from exc
        if not isinstance(body, dict):
            raise ProviderError("The webhook body is not an object.", code="invalid_webhook")
        amount = body.get("amount")
        if isinstance(amount, bool) or (amount is not None and not isinstance(amount, int | float | str)):
            raise ProviderError(f"The webhook's amount {amount!r} is not a number.", code="invalid_webhook")
        refunds = []
        if action in (PaymentAction.REFUNDED, PaymentAction.REFUND_FAILED):
            refund_amount = body.get("amount") if action == PaymentAction.REFUNDED else None
            refunds.append(
                ProviderRefund(
                    id=str(body.get("refund_id") or ""),
                    amount=None if refund_amount is None else _webhook_amount(refund_amount),
                    paymod_refund_id=body.get("paymod_refund_id"),
                    failure_reason=body.get("reason") if action == PaymentAction.REFUND_FAILED else None,
                )
            )
        return WebhookActionResult(
            action=action,
            refunds=refunds,
            dispute=_webhook_dispute(body) if action == PaymentAction.DISPUTED else None,
            session_id=body.get("session_id"),
            amount=None if amount is None else _webhook_amount(amount),
            event_id=body.get("id"),
            data=body,
            remaining_capturable=(
                None
                if body.get("remaining_capturable") is None
                else _webhook_amount(body["remaining_capturable"])
            ),
        )

    async def submit_dispute_evidence(self, input: DisputeEvidenceInput) -> DisputeOutput:
        self._count("submit_dispute_evidence", input)
        evidence = {**(input.data.get("evidence") or {}), **input.evidence}
        return DisputeOutput(
            data={**input.data, "evidence": evidence},
            status=DisputeStatus.UNDER_REVIEW if input.submit else None,
        )

    async def accept_dispute(self, input: DisputeInput) -> DisputeOutput:
        self._count("accept_dispute", input)
        return DisputeOutput(data={**input.data, "accepted": True}, status=DisputeStatus.LOST)

    async def create_account_holder(self, input: AccountHolderInput) -> AccountHolderOutput:
        await self._lag()
        self._count("create_account_holder", input)
        customer = input.context.customer or {}
        if not customer.get("id"):
            raise ProviderError("No customer in context")
        external_id = f"tcus_{customer['id']}"
        return AccountHolderOutput(id=external_id, data={"id": external_id, "email": customer.get("email")})

    async def retrieve_account_holder(self, input: AccountHolderInput) -> AccountHolderOutput:
        await self._lag()
        holder = input.context.account_holder or {}
        return AccountHolderOutput(id=str(holder.get("external_id", "")), data=dict(holder.get("data") or {}))

    async def update_account_holder(self, input: AccountHolderInput) -> ProviderOutput:
        await self._lag()
        self._count("update_account_holder", input)
        holder = input.context.account_holder or {}
        customer = input.context.customer or {}
        return ProviderOutput(data={**(holder.get("data") or {}), "email": customer.get("email")})

    async def delete_account_holder(self, input: AccountHolderInput) -> ProviderOutput:
        await self._lag()
        self._count("delete_account_holder", input)
        holder = input.context.account_holder or {}
        self._methods.pop(str(holder.get("external_id")), None)
        return ProviderOutput(data={})

    async def list_payment_methods(self, input: PaymentMethodInput) -> list[PaymentMethodOutput]:
        await self._lag()
        holder = input.context.account_holder or {}
        saved = self._methods.get(str(holder.get("external_id")), {})
        return [PaymentMethodOutput(id=pm_id, data=data) for pm_id, data in saved.items()]

    async def save_payment_method(self, input: PaymentMethodInput) -> PaymentMethodOutput:
        await self._lag()
        self._count("save_payment_method", input)
        holder = input.context.account_holder or {}
        pm_id = f"tpm_{uuid.uuid4().hex[:16]}"
        self._methods.setdefault(str(holder.get("external_id")), {})[pm_id] = {"id": pm_id, **input.data}
        return PaymentMethodOutput(id=pm_id, data={"id": pm_id, **input.data})

    async def delete_payment_method(self, input: PaymentMethodInput) -> ProviderOutput:
        await self._lag()
        pm_id = str(input.data.get("id"))
        for saved in self._methods.values():
            saved.pop(pm_id, None)
        return ProviderOutput(data={"id": pm_id, "deleted": True})


Data = dict[str, Any]


def _decimal(value: object) -> Decimal:
    if value is None:
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ProviderError(f"Invalid amount {value!r}") from None


def _webhook_amount(value: object) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        message = f"The webhook's amount {value!r} is not a number."
        raise ProviderError(message, code="invalid_webhook") from None


def _webhook_dispute(body: Mapping[str, Any]) -> ProviderDispute:
    try:
        status = DisputeStatus(body.get("status") or DisputeStatus.NEEDS_RESPONSE)
        due = body.get("evidence_due_by")
        evidence_due_by = None if due is None else datetime.fromisoformat(str(due))
        if evidence_due_by is not None and evidence_due_by.tzinfo is None:
            evidence_due_by = evidence_due_by.replace(tzinfo=UTC)
    except ValueError as exc:
        raise ProviderError(f"The webhook's dispute is invalid: {exc}", code="invalid_webhook") from None
    return ProviderDispute(
        id=str(body.get("dispute_id") or ""),
        amount=_webhook_amount(body.get("amount")),
        currency_code=body.get("currency_code"),
        status=status,
        reason=body.get("reason"),
        evidence_due_by=evidence_due_by,
        data={k: body[k] for k in ("dispute_id", "reason") if k in body},
    )


services = [TestingPaymentProvider]
