"""Payments on Stripe's PaymentIntents: initiate, update, status and authorize, retrieve, capture
(multicapture, resumed captures), refund (resumed refunds found by paymod's refund id), cancel."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Awaitable, Mapping
from decimal import Decimal
from typing import Any, cast

import stripe

from paymod.domain.errors import InvalidDataError, ProviderError
from paymod.domain.money import AmountError, to_amount
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
from paymod.providers.stripe.amounts import from_smallest_unit, to_smallest_unit
from paymod.providers.stripe.client import (
    Data,
    StripeCalls,
    _customer_id,
    _dump,
    _setting_key,
    _units,
    log,
)
from paymod.providers.stripe.errors import decline_code, error_intent
from paymod.providers.stripe.mapping import REFUND_ID_KEY, authorization_expires_at

#: Refund reasons Stripe itself knows; other paymod reason codes go to metadata only.
STRIPE_REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
#: Session keys forwarded to PaymentIntent creation as they are (Medusa's list and paymod's), from the
#: session's data or else its context.
_PASSTHROUGH = (
    "setup_future_usage",
    "payment_method_data",
    "off_session",
    "confirm",
    "payment_method",
    "return_url",
    "shared_payment_token",
    "statement_descriptor_suffix",
    "receipt_email",
    "shipping",
    "mandate_data",
    "confirmation_token",
    "on_behalf_of",
    "transfer_group",
)
_METADATA_LIMIT = 500  # characters per metadata value at Stripe
_METADATA_KEY_LIMIT = 40  # characters per metadata key at Stripe
#: Money fields of a PaymentIntent, in the currency's smallest unit at Stripe.
_INTENT_MONEY_FIELDS = ("amount", "amount_capturable", "amount_received", "application_fee_amount")


def _setting(input: ProviderInput, key: str) -> Any:
    """A session's setting: its data wins, then the context it was created with (`context.extra`)."""
    value = input.data.get(key)
    return value if value is not None else input.context.extra.get(key)


def _major(value: object, currency: str, what: str) -> int:
    """An amount a merchant gives in major units (session data) as Stripe's integer amount."""
    try:
        amount = to_amount(value, what)
    except AmountError as exc:
        raise InvalidDataError(str(exc), code="invalid_amount") from None
    if amount < 0:
        raise InvalidDataError(f"{what} must not be negative", code="invalid_amount")
    return to_smallest_unit(amount, currency, what)


def _capture_marker(key: str | None) -> str | None:
    """The intent's metadata key a partial capture under multicapture leaves (`paymod_<capture id>`),
    so a resumed run can tell whether Stripe made it; hashed when the key would pass Stripe's 40."""
    if not key:
        return None
    marker = f"paymod_{key}"
    if len(marker) <= _METADATA_KEY_LIMIT:
        return marker
    return "paymod_" + hashlib.sha256(key.encode()).hexdigest()[: _METADATA_KEY_LIMIT - len("paymod_")]


def _in_major_units(intent: Data) -> Data:
    """Every money field of a PaymentIntent in major units (`Decimal`)."""
    currency = str(intent.get("currency") or "")
    for key in _INTENT_MONEY_FIELDS:
        if intent.get(key) is not None:
            intent[key] = from_smallest_unit(intent[key], currency)
    transfer = intent.get("transfer_data")
    if isinstance(transfer, dict) and transfer.get("amount") is not None:
        transfer["amount"] = from_smallest_unit(transfer["amount"], currency)
    tip = (intent.get("amount_details") or {}).get("tip")
    if isinstance(tip, dict) and tip.get("amount") is not None:
        tip["amount"] = from_smallest_unit(tip["amount"], currency)
    instructions = (intent.get("next_action") or {}).get("display_bank_transfer_instructions")
    if isinstance(instructions, dict) and instructions.get("amount_remaining") is not None:
        instructions["amount_remaining"] = from_smallest_unit(instructions["amount_remaining"], currency)
    return intent


def _merge(previous: Mapping[str, Any], intent: Data) -> Data:
    """The session's data after a call: what was there, overwritten by Stripe's intent."""
    merged = {**previous, **intent}
    if not intent.get("last_payment_error"):
        merged.pop("decline_code", None)
    return merged


class StripePayments(StripeCalls):
    """The payment methods of `StripeProvider` (PaymentIntents and refunds)."""

    # -- payments -------------------------------------------------------------------------
    def intent_params(self, input: InitiatePaymentInput) -> Data:
        """The PaymentIntent creation parameters for a session (Medusa's normalization)."""
        data = input.data
        settings = self.settings
        currency = input.currency_code.lower()
        metadata = dict(data.get("metadata") or {})
        metadata["session_id"] = data.get("session_id") or input.context.idempotency_key
        capture_method = (
            data.get("capture_method")
            or self.capture_method
            or ("automatic" if settings.capture else "manual")
        )
        params: Data = {
            "amount": to_smallest_unit(input.amount, currency),
            "currency": currency,
            "metadata": metadata,
            "capture_method": capture_method,
        }
        description = data.get("payment_description") or settings.payment_description
        if description:
            params["description"] = description
        types = _setting(input, "payment_method_types") or (
            list(self.payment_method_types) if self.payment_method_types else None
        )
        if types:
            params["payment_method_types"] = list(types)
        else:
            automatic = _setting(input, "automatic_payment_methods") or (
                {"enabled": True} if settings.automatic_payment_methods else None
            )
            if automatic:
                params["automatic_payment_methods"] = automatic
            configuration = data.get("payment_method_configuration") or settings.payment_method_configuration
            if configuration:
                params["payment_method_configuration"] = configuration
        for key in _PASSTHROUGH:
            value = _setting(input, key)
            if value is not None:
                params[key] = value
        # Connect (docs.stripe.com/payments/connected-accounts): the fee and a destination's share are
        # given in major units, like every paymod amount.
        fee = _setting(input, "application_fee_amount")
        if fee is not None:
            params["application_fee_amount"] = _major(fee, currency, "application_fee_amount")
        transfer = _setting(input, "transfer_data")
        if transfer is not None:
            if not isinstance(transfer, Mapping) or not transfer.get("destination"):
                raise InvalidDataError(
                    "transfer_data must be an object with a `destination` (acct_...)", code="invalid_data"
                )
            params["transfer_data"] = {"destination": transfer["destination"]}
            if transfer.get("amount") is not None:
                params["transfer_data"]["amount"] = _major(
                    transfer["amount"], currency, "transfer_data.amount"
                )
        method_options: Data = copy.deepcopy(dict(data.get("payment_method_options") or {}))
        if types and "oxxo" in types:
            method_options.setdefault("oxxo", {}).setdefault("expires_after_days", settings.oxxo_expires_days)
        if settings.multicapture and capture_method == "manual" and (not types or "card" in types):
            method_options.setdefault("card", {}).setdefault("request_multicapture", "if_available")
        if method_options:
            params["payment_method_options"] = method_options
        customer = _customer_id(input.context)
        if customer:
            params["customer"] = customer
        params["expand"] = ["payment_method"]
        return params

    async def initiate_payment(self, input: InitiatePaymentInput) -> InitiatePaymentOutput:
        params = self.intent_params(input)
        account = self._account(input.data, input.context)
        options = self._options(input.context.idempotency_key, account)
        kept = {"stripe_account": account} if account else {}

        async def declined(exc: stripe.StripeError) -> Data | None:
            intent = error_intent(exc) if isinstance(exc, stripe.CardError) else None
            if intent is None:
                return None
            return {**intent, "decline_code": decline_code(exc)}

        async def create() -> Data:
            created = await self.client.v1.payment_intents.create_async(
                cast("stripe.params.PaymentIntentCreateParams", params), options
            )
            return _dump(created)

        intent = {**await self._request(create, declined), **kept}
        status = PaymentSessionStatus.ERROR if "decline_code" in intent else self._status(intent)
        return InitiatePaymentOutput(id=str(intent["id"]), data=intent, status=status)

    async def update_payment(self, input: UpdatePaymentInput) -> StatusOutput:
        data = input.data
        intent_id = self._intent_id(data, "updating payment")
        currency = (input.currency_code or str(data.get("currency") or "")).lower()
        amount = to_smallest_unit(input.amount, currency)
        if _units(data.get("amount")) == amount and str(data.get("currency", currency)).lower() == currency:
            return StatusOutput(data=dict(data), status=self._status(data))
        params: Data = {"amount": amount}
        if data.get("currency") and str(data["currency"]).lower() != currency:
            params["currency"] = currency
        options = self._options(
            _setting_key(input.context.idempotency_key), self._account(data, input.context)
        )
        intent = await self._request(
            lambda: self.client.v1.payment_intents.update_async(
                intent_id, cast("stripe.params.PaymentIntentUpdateParams", params), options
            )
        )
        merged = _merge(data, _dump(intent))
        return StatusOutput(data=merged, status=self._status(merged))

    async def get_payment_status(self, input: ProviderInput) -> StatusOutput:
        intent_id = self._intent_id(input.data, "getting payment status")
        intent = await self._retrieve_intent(intent_id, self._account(input.data, input.context))
        merged = _merge(input.data, intent)
        return StatusOutput(data=merged, status=self._status(merged))

    async def authorize_payment(self, input: ProviderInput) -> AuthorizePaymentOutput:
        result = await self.get_payment_status(input)
        assert result.status is not None
        expires_at = authorization_expires_at(result.data or {})
        return AuthorizePaymentOutput(data=result.data, status=result.status, expires_at=expires_at)

    async def retrieve_payment(self, input: ProviderInput) -> ProviderOutput:
        """The PaymentIntent as Stripe has it now, every money field in major units (`Decimal`)."""
        intent_id = self._intent_id(input.data, "retrieving payment")
        intent = await self._retrieve_intent(intent_id, self._account(input.data, input.context))
        return ProviderOutput(data=_in_major_units(intent))

    async def _multicapture_available(self, intent: Mapping[str, Any], account: str | None) -> bool:
        """Whether Stripe keeps the rest capturable after a partial capture (`final_capture: false`)."""
        charge = intent.get("latest_charge")
        card_options = (intent.get("payment_method_options") or {}).get("card") or {}
        if isinstance(charge, str):
            if card_options.get("request_multicapture") != "if_available":
                return False
            charge_id = charge
            options = self._options(None, account)
            charge = _dump(
                await self._request(lambda: self.client.v1.charges.retrieve_async(charge_id, None, options))
            )
        if not isinstance(charge, Mapping):
            return False
        card = (charge.get("payment_method_details") or {}).get("card") or {}
        return bool((card.get("multicapture") or {}).get("status") == "available")

    @staticmethod
    def _capture_output(previous: Mapping[str, Any], intent: Data) -> CapturePaymentOutput:
        """The payment's data after a capture and what Stripe still holds for later captures: Stripe's
        `amount_capturable` (0 once a capture without multicapture released the rest)."""
        currency = str(intent.get("currency") or previous.get("currency") or "")
        capturable = _units(intent.get("amount_capturable"))
        remaining: Decimal | None = None
        if capturable is not None:
            remaining = from_smallest_unit(capturable, currency)
        elif intent.get("status") in ("succeeded", "canceled"):
            remaining = Decimal(0)  # stripe-compatible servers without the field: nothing is left
        return CapturePaymentOutput(data=_merge(previous, intent), remaining_capturable=remaining)

    async def capture_payment(self, input: CapturePaymentInput) -> CapturePaymentOutput:
        """Captures `input.amount`, answering `remaining_capturable` from the intent's `amount_capturable`.

        A resumed call (`context.resumed`: an earlier call with this key has no known outcome, and its
        key may be pruned) first reads the intent: a capture Stripe already made (the intent succeeded
        with at least what paymod expects received, or, under multicapture, the intent carries this
        capture's `paymod_<key>` metadata marker) is answered without capturing again.
        """
        data = input.data
        intent_id = self._intent_id(data, "capturing payment")
        currency = (input.currency_code or str(data.get("currency") or "")).lower()
        account = self._account(data, input.context)
        key = input.context.idempotency_key
        params: Data = {}
        units = to_smallest_unit(input.amount, currency, "capture amount") if input.amount > 0 else None
        captured_before = _units(data.get("amount_received")) or 0
        marker: str | None = None
        if units is not None:
            params["amount_to_capture"] = units
            total = _units(data.get("amount"))
            if (
                total is not None
                and captured_before + units < total
                and await self._multicapture_available(data, account)
            ):
                params["final_capture"] = False
                marker = _capture_marker(key)
                if marker is not None:
                    params["metadata"] = {marker: str(units)}
        options = self._options(key, account)

        def made(intent: Mapping[str, Any]) -> bool:
            if marker is not None and marker in (intent.get("metadata") or {}):
                return True
            received = _units(intent.get("amount_received")) or 0
            return intent.get("status") == "succeeded" and received >= captured_before + (units or 0)

        if input.context.resumed:
            current = await self._retrieve_intent(intent_id, account)
            if made(current):
                log.info(
                    "capture %s of %s was made before the run resumed; not captured again", key, intent_id
                )
                return self._capture_output(data, current)

        async def already_captured(exc: stripe.StripeError) -> Data | None:
            # Captured already (a retry whose first answer was lost, or the dashboard): fine if Stripe
            # holds at least what we asked for; otherwise the error stands.
            intent = error_intent(exc)
            if exc.code != "payment_intent_unexpected_state" or intent is None:
                return None
            return intent if made(intent) else None

        async def capture() -> Data:
            captured = await self.client.v1.payment_intents.capture_async(
                intent_id, cast("stripe.params.PaymentIntentCaptureParams", params), options
            )
            return _dump(captured)

        return self._capture_output(data, await self._request(capture, already_captured))

    async def _find_refund(self, intent_id: str, refund_id: str, account: str | None) -> Data | None:
        """The refund of this intent that carries paymod's refund id in its metadata, if Stripe made it."""
        options = self._options(None, account)

        def page(params: Data) -> Awaitable[Any]:
            return self.client.v1.refunds.list_async(
                cast("stripe.params.RefundListParams", {**params, "payment_intent": intent_id}), options
            )

        for refund in await self._list_all(page):
            if (refund.get("metadata") or {}).get(REFUND_ID_KEY) == refund_id[:_METADATA_LIMIT]:
                return refund
        return None

    async def refund_payment(self, input: RefundPaymentInput) -> ProviderOutput:
        """Refunds `input.amount`, with paymod's refund id (`context.idempotency_key`) in the refund's
        metadata (`paymod_refund_id`). A resumed call first looks for that refund among the intent's
        (Stripe keeps idempotency keys 24 hours; the lookup keeps a later retry from refunding twice)."""
        data = input.data
        intent_id = self._intent_id(data, "refunding payment")
        currency = (input.currency_code or str(data.get("currency") or "")).lower()
        account = self._account(data, input.context)
        key = input.context.idempotency_key
        params: Data = {
            "payment_intent": intent_id,
            "amount": to_smallest_unit(input.amount, currency, "refund amount"),
        }
        metadata: Data = {}
        if key:
            metadata[REFUND_ID_KEY] = key[:_METADATA_LIMIT]
        if input.reason:
            metadata["refund_reason"] = input.reason[:_METADATA_LIMIT]
            if input.reason in STRIPE_REFUND_REASONS:
                params["reason"] = input.reason
        if input.note:
            metadata["note"] = input.note[:_METADATA_LIMIT]
        if metadata:
            params["metadata"] = metadata
        options = self._options(key, account)

        async def already_refunded(exc: stripe.StripeError) -> Data | None:
            if exc.code != "charge_already_refunded":
                return None
            log.warning("Stripe says the charge of %s is already refunded; nothing more to refund", intent_id)
            return {}

        async def refund() -> Data:
            created = await self.client.v1.refunds.create_async(
                cast("stripe.params.RefundCreateParams", params), options
            )
            return _dump(created)

        found = await self._find_refund(intent_id, key, account) if input.context.resumed and key else None
        if found is not None:
            log.info("refund %s of %s was made before the run resumed; not refunded again", key, intent_id)
        created = found if found is not None else await self._request(refund, already_refunded)
        if not created:
            return ProviderOutput(data=dict(data))
        if created.get("status") in ("failed", "canceled"):
            raise ProviderError(
                f"Stripe refund {created.get('id')} {created.get('status')}: "
                f"{created.get('failure_reason') or 'no reason given'}",
                code="refund_failed",
            )
        last_refund = {field: created.get(field) for field in ("id", "amount", "status", "reason")}
        return RefundPaymentOutput(data={**data, "last_refund": last_refund}, refund_id=created.get("id"))

    async def cancel_payment(self, input: ProviderInput) -> ProviderOutput:
        data = input.data
        intent_id = data.get("id")
        if not isinstance(intent_id, str) or not intent_id:
            return ProviderOutput(data=dict(data))
        options = self._options(
            input.context.idempotency_key or f"{intent_id}:cancel", self._account(data, input.context)
        )

        async def already_canceled(exc: stripe.StripeError) -> Data | None:
            intent = error_intent(exc)
            return intent if intent is not None and intent.get("status") == "canceled" else None

        async def cancel() -> Data:
            return _dump(await self.client.v1.payment_intents.cancel_async(intent_id, None, options))

        return ProviderOutput(data=_merge(data, await self._request(cancel, already_canceled)))

    async def delete_payment(self, input: ProviderInput) -> ProviderOutput:
        return await self.cancel_payment(input)
