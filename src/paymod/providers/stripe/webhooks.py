"""Stripe webhooks: `Stripe-Signature` verified against each configured secret, and the event mapped
onto paymod's action (the table is in mapping.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, cast

import stripe

from paymod.domain.errors import ProviderError
from paymod.domain.statuses import PaymentAction
from paymod.providers.base import ProviderRefund, WebhookActionResult, WebhookPayload
from paymod.providers.stripe.amounts import from_smallest_unit
from paymod.providers.stripe.client import Data, _dump, log
from paymod.providers.stripe.disputes import DISPUTE_EVENTS, StripeDisputes
from paymod.providers.stripe.mapping import (
    PENDING_EVENTS,
    REFUND_EVENTS,
    REFUND_ID_KEY,
    charge_refunds,
    moved_refunds,
    refund_action,
    webhook_action,
)

WEBHOOK_TOLERANCE = 300


class StripeWebhooks(StripeDisputes):
    """The webhook method of `StripeProvider` (and, through `StripeDisputes`, the dispute methods)."""

    async def _payment_method_is_async(self, intent: Mapping[str, Any], account: str | None) -> bool:
        async_types = self.settings.async_payment_method_types
        if not async_types:
            return False
        method = intent.get("payment_method")
        if isinstance(method, str):
            method_id = method
            options = self._options(None, account)
            try:
                method = _dump(
                    await self._request(
                        lambda: self.client.v1.payment_methods.retrieve_async(method_id, None, options)
                    )
                )
            except ProviderError:
                log.warning("could not retrieve payment method %s; judging by the intent's types", method_id)
                method = None
        if isinstance(method, Mapping):
            return method.get("type") in async_types
        types = intent.get("payment_method_types") or []
        return bool(types) and all(kind in async_types for kind in types)

    def _construct_event(self, payload: WebhookPayload) -> stripe.Event:
        """Verifies `Stripe-Signature` against each configured secret (300 s tolerance)."""
        secrets = self.settings.webhook_secrets
        if not secrets:
            raise ProviderError(
                "The Stripe webhook secret is not configured (option `webhook_secret`).",
                code="invalid_signature",
            )
        headers = {key.lower(): value for key, value in payload.headers.items()}
        failures: list[stripe.SignatureVerificationError] = []
        for secret in secrets:
            try:
                return stripe.Webhook.construct_event(  # type: ignore[no-any-return]  # untyped in the SDK
                    payload.raw_data,
                    headers.get("stripe-signature"),
                    secret,
                    tolerance=WEBHOOK_TOLERANCE,
                    api_key=self.settings.api_key,
                )
            except stripe.SignatureVerificationError as exc:
                failures.append(exc)
            except ValueError as exc:
                raise ProviderError(
                    f"The Stripe webhook body is not valid JSON: {exc}", code="invalid_webhook"
                ) from exc
        # The secret whose signature matched says best what is wrong (e.g. a stale timestamp).
        failure = next((f for f in failures if "No signatures found" not in str(f.user_message)), failures[0])
        raise ProviderError(
            f"An error occurred in constructWebhookEvent: {failure.user_message}", code="invalid_signature"
        ) from failure

    async def get_webhook_action_and_data(self, payload: WebhookPayload) -> WebhookActionResult:
        """Verifies `Stripe-Signature` (300 s tolerance) and maps the event (reference section 8)."""
        event = self._construct_event(payload)
        event_type = str(event.type)
        obj = event.data.object
        intent: Data = _dump(obj) if isinstance(obj, stripe.StripeObject) else dict(obj or {})
        account = cast("str | None", getattr(event, "account", None)) or self.settings.stripe_account
        if event_type in REFUND_EVENTS:
            return await self._refund_webhook(event, intent, account)
        if event_type in DISPUTE_EVENTS:
            return await self._dispute_webhook(event, intent, account)
        is_async = event_type in PENDING_EVENTS and await self._payment_method_is_async(intent, account)
        action, units = webhook_action(event_type, intent, payment_method_is_async=is_async)
        details: Data = {"event_type": event_type, "object_id": intent.get("id")}
        if getattr(event, "account", None):
            details["account"] = event.account
        if action == PaymentAction.NOT_SUPPORTED:
            return WebhookActionResult(action=action, event_id=event.id, data=details)
        currency = str(intent.get("currency") or "")
        capturable = intent.get("amount_capturable")
        # A `succeeded` intent is final: what was not captured was released (a partial capture without
        # multicapture, or a multicapture authorization that expired partially captured).
        remaining = (
            from_smallest_unit(int(capturable), currency)
            if action == PaymentAction.SUCCESSFUL
            and intent.get("status") == "succeeded"
            and capturable is not None
            else None
        )
        return WebhookActionResult(
            action=action,
            session_id=str(intent["metadata"]["session_id"]),
            amount=None if units is None else from_smallest_unit(units, currency),
            event_id=event.id,
            data=details,
            remaining_capturable=remaining,
        )

    async def _refund_webhook(
        self, event: stripe.Event, obj: Data, account: str | None
    ) -> WebhookActionResult:
        """`charge.refunded` (a Charge: each of its refunds whose money left, listed from the API when
        the event leaves them out), `refund.created` / `refund.updated` / `charge.refund.updated` (a
        Refund: booked, or failed/canceled). Refunds of intents paymod did not create are not ours."""
        event_type = str(event.type)
        details: Data = {"event_type": event_type, "object_id": obj.get("id")}
        if getattr(event, "account", None):
            details["account"] = event.account
        not_ours = WebhookActionResult(action=PaymentAction.NOT_SUPPORTED, event_id=event.id, data=details)
        intent_id = obj.get("payment_intent")
        if not isinstance(intent_id, str) or not intent_id:
            return not_ours
        if event_type == "charge.refunded":
            action = PaymentAction.REFUNDED
            listed = charge_refunds(obj)
            refunds = moved_refunds(
                listed if listed is not None else await self._intent_refunds(intent_id, account)
            )
        else:
            action, refunds = refund_action(obj), [obj]
        if action == PaymentAction.NOT_SUPPORTED or not refunds:
            return not_ours
        intent = await self._retrieve_intent(intent_id, account)
        session_id = (intent.get("metadata") or {}).get("session_id")
        if not session_id:
            return not_ours
        fallback_currency = str(obj.get("currency") or intent.get("currency") or "")
        return WebhookActionResult(
            action=action,
            session_id=str(session_id),
            event_id=event.id,
            data=details,
            refunds=[
                ProviderRefund(
                    id=str(refund.get("id") or ""),
                    amount=from_smallest_unit(
                        int(refund["amount"]), str(refund.get("currency") or fallback_currency)
                    ),
                    paymod_refund_id=(refund.get("metadata") or {}).get(REFUND_ID_KEY),
                    failure_reason=(
                        str(refund.get("failure_reason") or refund.get("status"))
                        if action == PaymentAction.REFUND_FAILED
                        else None
                    ),
                )
                for refund in refunds
            ],
        )

    async def _intent_refunds(self, intent_id: str, account: str | None) -> list[Data]:
        """Every refund of the intent (GET /v1/refunds?payment_intent=...)."""
        options = self._options(None, account)

        def page(params: Data) -> Awaitable[Any]:
            return self.client.v1.refunds.list_async(
                cast("stripe.params.RefundListParams", {**params, "payment_intent": intent_id}), options
            )

        return await self._list_all(page)
