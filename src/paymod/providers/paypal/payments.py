"""Payments on PayPal's Orders v2 and Payments v2: an order per session, the buyer's approval, then an
authorization (or a capture, with intent CAPTURE), captures of it, refunds per capture, voids.

Every POST carries PayPal-Request-Id = `context.idempotency_key` (PayPal keeps them 6 hours by default:
a retry within that time gets the first answer and does nothing twice). Calls that could have happened
already look before acting: authorize always reads the order first (an order completed by a lost call is
read, not authorized again); a resumed capture looks for its `invoice_id` (paymod's capture id) among the
order's captures; every refund looks for refunds carrying its `custom_id` (paymod's refund id).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from paymod.domain.errors import ProviderError
from paymod.domain.statuses import PaymentSessionStatus
from paymod.providers.base import (
    AuthorizePaymentOutput,
    CapturePaymentInput,
    CapturePaymentOutput,
    InitiatePaymentInput,
    InitiatePaymentOutput,
    ProviderInput,
    ProviderOutput,
    RefundPaymentInput,
    RefundPaymentOutput,
    StatusOutput,
    UpdatePaymentInput,
)
from paymod.providers.paypal.amounts import check_currency, from_money, money, to_value
from paymod.providers.paypal.client import Data, PayPalCalls
from paymod.providers.paypal.mapping import (
    AWAITING_BUYER,
    approve_link,
    authorizations,
    captured_total,
    captures,
    order_status,
    purchase_unit,
    refundable_captures,
    refunds_made_for,
)

S = PaymentSessionStatus

#: Issues that send the buyer back to PayPal to pick another funding source (PayPal: "redirect the payer
#: to the approve URL"); the session asks for more, with the approval link.
BUYER_MUST_ACT = frozenset({"INSTRUMENT_DECLINED", "PAYER_ACTION_REQUIRED", "ORDER_NOT_APPROVED"})
#: Issues that end the attempt: the session is in error, the decline recorded in its data.
DECLINED = frozenset(
    {
        "PAYER_CANNOT_PAY",
        "TRANSACTION_REFUSED",
        "PAYEE_BLOCKED_TRANSACTION",
        "COMPLIANCE_VIOLATION",
        "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED",
        "AUTHORIZATION_DENIED",
    }
)
_NOTE_LIMIT = 255  # characters of a refund's note_to_payer at PayPal
_REPRESENTATION = "return=representation"


def _order_facts(previous: Mapping[str, Any], order: Mapping[str, Any]) -> Data:
    """The session's (then payment's) data after a call: what paymod keeps of the order."""
    data: Data = dict(previous)
    unit = purchase_unit(order)
    data["id"] = order.get("id", data.get("id"))
    for key in ("status", "intent"):
        if order.get(key) is not None:
            data[key] = order[key]
    if unit.get("reference_id"):
        data["reference_id"] = unit["reference_id"]
    amount = unit.get("amount")
    if isinstance(amount, Mapping) and amount.get("value") is not None:
        data["amount"] = str(amount["value"])
        data["currency_code"] = str(amount.get("currency_code") or data.get("currency_code") or "")
    approve = approve_link(order)
    if approve:
        data["approve_url"] = approve
    found = authorizations(order)
    if found:
        last = found[-1]
        data["authorization_id"] = last.get("id")
        data["authorization_status"] = last.get("status")
        if from_money(last.get("amount")) is not None:
            data["authorized_amount"] = str(last["amount"]["value"])
    taken = captures(order)
    if taken:
        data["captures"] = [
            {"id": c.get("id"), "status": c.get("status"), "amount": (c.get("amount") or {}).get("value")}
            for c in taken
        ]
    return data


def _refund_call(options: Data, client: Any) -> Any:
    return client.payments.refund_captured_payment(options)


class PayPalPayments(PayPalCalls):
    """The payment methods of `PayPalProvider`."""

    async def _order(self, order_id: str) -> Data:
        answer = await self._send(lambda c: c.orders.get_order({"id": order_id}))
        return answer.body

    def order_body(self, input: InitiatePaymentInput) -> Data:
        """The Create Order request for a session (amounts refused here when PayPal cannot take them)."""
        settings = self.settings
        currency = check_currency(input.currency_code)
        session = str(input.data.get("session_id") or input.context.idempotency_key or "")
        unit: Data = {"amount": {"currency_code": currency, "value": to_value(input.amount, currency)}}
        if session:
            # paymod's session id: how PayPal's webhooks about this order are traced back to it.
            unit["reference_id"] = session
            unit["custom_id"] = session
        description = input.data.get("description")
        if isinstance(description, str) and description:
            unit["description"] = description[:127]
        experience: Data = {}
        for key, option in (
            ("brand_name", settings.brand_name),
            ("return_url", settings.return_url),
            ("cancel_url", settings.cancel_url),
        ):
            value = input.data.get(key) or input.context.extra.get(key) or option
            if value:
                experience[key] = value
        return {
            "intent": settings.intent,
            "purchase_units": [unit],
            "payment_source": {"paypal": {"experience_context": experience}},
        }

    async def initiate_payment(self, input: InitiatePaymentInput) -> InitiatePaymentOutput:
        body = self.order_body(input)
        key = input.context.idempotency_key
        answer = await self._send(
            lambda c: c.orders.create_order(
                {"body": body, "paypal_request_id": key, "prefer": _REPRESENTATION}
            )
        )
        order = answer.body
        data = _order_facts({}, order)
        if input.data.get("session_id"):
            data["session_id"] = input.data["session_id"]
        return InitiatePaymentOutput(id=str(order.get("id") or ""), data=data, status=order_status(order))

    async def update_payment(self, input: UpdatePaymentInput) -> StatusOutput:
        """Replaces the order's amount (PATCH; PayPal allows it while the order is CREATED or APPROVED)."""
        data = dict(input.data)
        order_id = self._order_id(data, "updating the payment")
        currency = check_currency(input.currency_code or str(data.get("currency_code") or ""))
        value = to_value(input.amount, currency)
        if data.get("amount") == value and data.get("currency_code") == currency:
            return StatusOutput(data=data, status=order_status(data))
        reference = data.get("reference_id") or "default"
        patch = [
            {
                "op": "replace",
                "path": f"/purchase_units/@reference_id=='{reference}'/amount",
                "value": {"currency_code": currency, "value": value},
            }
        ]
        # PATCH takes no PayPal-Request-Id; replacing a value twice is harmless.
        await self._send(lambda c: c.orders.patch_order({"id": order_id, "body": patch}))
        order = await self._order(order_id)
        merged = _order_facts(data, order)
        return StatusOutput(data=merged, status=order_status(order))

    async def delete_payment(self, input: ProviderInput) -> ProviderOutput:
        """Nothing to do at PayPal: an order nobody approved expires on its own (PayPal has no call to
        delete one); an approved one expires when it is not authorized or captured in time."""
        return ProviderOutput(data=dict(input.data))

    async def get_payment_status(self, input: ProviderInput) -> StatusOutput:
        order = await self._order(self._order_id(input.data, "getting the payment status"))
        return StatusOutput(data=_order_facts(input.data, order), status=order_status(order))

    async def retrieve_payment(self, input: ProviderInput) -> ProviderOutput:
        """The order as PayPal has it now (its JSON, amounts as PayPal's decimal strings)."""
        return ProviderOutput(data=await self._order(self._order_id(input.data, "retrieving the payment")))

    async def authorize_payment(self, input: ProviderInput) -> AuthorizePaymentOutput:
        """Reads the order: not approved yet -> requires_more (the approval link in `data.approve_url`);
        approved -> authorizes it (captures it with intent CAPTURE); completed -> what it became."""
        data = dict(input.data)
        order_id = self._order_id(data, "authorizing the payment")
        order = await self._order(order_id)
        data = _order_facts(data, order)
        data.pop("decline_issue", None)
        if order.get("status") in AWAITING_BUYER:
            return AuthorizePaymentOutput(data=data, status=S.REQUIRES_MORE)
        if order.get("status") == "APPROVED":
            key = input.context.idempotency_key
            # A refused attempt did nothing at PayPal, so the next one (after the buyer approved again)
            # gets a request id of its own: PayPal must not answer it with the refusal it kept.
            declines = int(data.get("declines") or 0)
            if key and declines:
                key = f"{key}:{declines + 1}"
            expect = BUYER_MUST_ACT | DECLINED
            options: Data = {"id": order_id, "paypal_request_id": key, "prefer": _REPRESENTATION}
            if order.get("intent") == "CAPTURE":
                answer = await self._send(lambda c: c.orders.capture_order(options), expect=expect)
            else:
                answer = await self._send(lambda c: c.orders.authorize_order(options), expect=expect)
            if answer.failure is not None:
                issue = answer.failure.issue or answer.failure.name
                data["decline_issue"] = issue
                data["declines"] = declines + 1
                status = S.REQUIRES_MORE if issue in BUYER_MUST_ACT else S.ERROR
                return AuthorizePaymentOutput(data=data, status=status)
            order = answer.body
            data = _order_facts(data, order)
        status = order_status(order)
        return AuthorizePaymentOutput(data=data, status=status)

    async def capture_payment(self, input: CapturePaymentInput) -> CapturePaymentOutput:
        """Captures `input.amount` of the authorization; `final_capture` when the order's captures then
        reach the authorized amount (PayPal then releases the authorization). A resumed call first looks
        for a capture carrying this capture's `invoice_id`."""
        data = dict(input.data)
        order_id = self._order_id(data, "capturing the payment")
        order = await self._order(order_id)
        data = _order_facts(data, order)
        key = input.context.idempotency_key
        authorization_id = data.get("authorization_id")
        if not authorization_id:
            if captures(order):  # intent CAPTURE: the order was captured when it was authorized
                return CapturePaymentOutput(data=data, remaining_capturable=Decimal(0))
            raise ProviderError(
                f"PayPal order {order_id} has no authorization to capture (status {order.get('status')}).",
                code="authorization_not_found",
            )
        authorized = Decimal(str(data.get("authorized_amount") or data.get("amount") or "0"))
        before = captured_total(order)
        if key and any(c.get("invoice_id") == key for c in captures(order)):
            # An earlier call with this key captured already (its answer was lost).
            return self._capture_output(data, authorized, captured_total(order), final=False)
        currency = str(data.get("currency_code") or input.currency_code)
        body: Data = {"invoice_id": key} if key else {}
        final = True
        if input.amount > 0:
            body["amount"] = money(input.amount, currency, "capture amount")
            final = before + Decimal(body["amount"]["value"]) >= authorized
        body["final_capture"] = final
        await self._send(
            lambda c: c.payments.capture_authorized_payment(
                {
                    "authorization_id": authorization_id,
                    "paypal_request_id": key,
                    "prefer": _REPRESENTATION,
                    "body": body,
                }
            )
        )
        order = await self._order(order_id)
        return self._capture_output(_order_facts(data, order), authorized, captured_total(order), final=final)

    @staticmethod
    def _capture_output(
        data: Data, authorized: Decimal, captured: Decimal, *, final: bool
    ) -> CapturePaymentOutput:
        remaining = (
            Decimal(0) if final or data.get("authorization_status") == "CAPTURED" else authorized - captured
        )
        data["captured_amount"] = str(captured)
        return CapturePaymentOutput(data=data, remaining_capturable=max(remaining, Decimal(0)))

    async def refund_payment(self, input: RefundPaymentInput) -> RefundPaymentOutput:
        """Refunds `input.amount` from the order's captures with money left, oldest first (a refund at
        PayPal is of one capture; a refund larger than any one capture becomes several). Each PayPal refund
        carries paymod's refund id as `custom_id`, which is also how a retry sees what was done."""
        data = dict(input.data)
        order_id = self._order_id(data, "refunding the payment")
        key = input.context.idempotency_key or ""
        order = await self._order(order_id)
        currency = str(data.get("currency_code") or input.currency_code)
        made = refunds_made_for(order, key) if key else []
        left = input.amount - sum((from_money(r.get("amount")) or Decimal(0) for r in made), Decimal(0))
        plan: list[tuple[str, Decimal]] = []
        for capture_id, refundable in refundable_captures(order):
            if left <= 0:
                break
            take = min(left, refundable)
            plan.append((capture_id, take))
            left -= take
        if left > 0:
            raise ProviderError(
                f"PayPal order {order_id} has not enough captured money left to refund "
                f"{input.amount} {currency}.",
                code="refund_amount_exceeded",
            )
        note = input.note or input.reason
        refund_ids = [str(r.get("id")) for r in made]
        for capture_id, take in plan:
            body: Data = {"amount": money(take, currency, "refund amount")}
            if key:
                body["custom_id"] = key
            if note:
                body["note_to_payer"] = note[:_NOTE_LIMIT]
            # The first PayPal refund of a paymod refund is keyed by paymod's key, any further one (a
            # refund spread over captures) by the key and its capture.
            request_id = key if not refund_ids else f"{key}:{capture_id}"
            options: Data = {
                "capture_id": capture_id,
                "paypal_request_id": request_id or None,
                "prefer": _REPRESENTATION,
                "body": body,
            }
            answer = await self._send(functools.partial(_refund_call, options))
            refund_ids.append(str(answer.body.get("id")))
        order = await self._order(order_id)
        return RefundPaymentOutput(
            data=_order_facts(data, order), refund_id=refund_ids[0] if refund_ids else None
        )

    async def cancel_payment(self, input: ProviderInput) -> ProviderOutput:
        """Voids the authorization. An order never authorized has nothing to void (it expires); an
        authorization PayPal voided already is fine."""
        data = dict(input.data)
        authorization_id = data.get("authorization_id")
        if not authorization_id:
            return ProviderOutput(data=data)
        key = input.context.idempotency_key
        answer = await self._send(
            lambda c: c.payments.void_payment(
                {"authorization_id": authorization_id, "paypal_request_id": key, "prefer": _REPRESENTATION}
            ),
            expect={"AUTHORIZATION_VOIDED", "AUTHORIZATION_ALREADY_VOIDED"},
        )
        if answer.body.get("status"):
            data["authorization_status"] = answer.body["status"]
        else:
            data["authorization_status"] = "VOIDED"
        return ProviderOutput(data=data)
