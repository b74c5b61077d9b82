"""Stripe on the official SDK: PaymentIntents, refunds, customers, SetupIntents and webhooks.

Medusa's provider (reference section 8) with these differences, on purpose:
- amounts Stripe cannot represent (ISK/UGX fractions, a third KWD decimal other than 0) are refused
  with `InvalidDataError` before any call (amounts.py);
- captures send `amount_to_capture` (and `final_capture: false` while multicapture lets more follow)
  and answer what stays capturable (`CapturePaymentOutput.remaining_capturable`);
- refunds send the reason (Stripe's own when it is one of them) and always record it, and paymod's
  refund id, in metadata;
- every mutating call carries an idempotency key derived from `context.idempotency_key`; a resumed
  call (`context.resumed`) first looks at Stripe for what the lost call may have done (the refund with
  paymod's id, the capture's effect on the intent), since Stripe prunes keys after 24 hours;
- Connect: the `stripe_account` option or a session's `stripe_account` goes on every call of that
  payment as `Stripe-Account`;
- a `card_error` that carries a PaymentIntent gives session status `error`, the decline code in `data`;
- authorization records Radar's `risk_level` / `risk_score` and the capture deadline `capture_before`;
- rate limits are retried with backoff (connection errors, 409 and 5xx by the SDK), then raise
  `RetryableProviderError`.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, TypeVar, cast

import stripe

from paymod.domain.errors import InvalidDataError, ProviderError
from paymod.domain.money import AmountError, to_amount
from paymod.domain.statuses import PaymentAction, PaymentSessionStatus
from paymod.providers.base import (
    AccountHolderInput,
    AccountHolderOutput,
    AuthorizePaymentOutput,
    CapturePaymentInput,
    CapturePaymentOutput,
    InitiatePaymentInput,
    InitiatePaymentOutput,
    PaymentMethodInput,
    PaymentMethodOutput,
    PaymentProvider,
    ProviderContext,
    ProviderInput,
    ProviderOutput,
    RefundPaymentInput,
    StatusOutput,
    UpdatePaymentInput,
    WebhookActionResult,
    WebhookPayload,
)
from paymod.providers.stripe.amounts import from_smallest_unit, to_smallest_unit
from paymod.providers.stripe.errors import backoff, decline_code, error_intent, translate
from paymod.providers.stripe.mapping import PENDING_EVENTS, session_status, webhook_action
from paymod.providers.stripe.options import StripeOptions, stripe_account_id

log = logging.getLogger("paymod.providers.stripe")

T = TypeVar("T")
Data = dict[str, Any]

WEBHOOK_TOLERANCE = 300
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
_PAGE = 100  # the largest page Stripe's list endpoints give
#: The metadata key that carries paymod's refund id (its idempotency key) on each Stripe refund.
REFUND_ID_KEY = "paymod_refund_id"
#: Money fields of a PaymentIntent, in the currency's smallest unit at Stripe.
_INTENT_MONEY_FIELDS = ("amount", "amount_capturable", "amount_received", "application_fee_amount")

_warned_missing_secret = False


def _dump(obj: stripe.StripeObject) -> Data:
    return obj.to_dict(for_json=True)


def _units(value: object) -> int | None:
    """An amount field of a stored intent as an int (stripe-compatible fakes may send strings)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value))
    except ValueError:
        return None


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


def _with_charge_facts(intent: Data) -> Data:
    """The intent with its expanded `latest_charge` folded back to the charge id, and what paymod keeps
    of the charge: Radar's `risk_level` / `risk_score` (`outcome`) and, while the card authorization
    waits for a manual capture, `capture_before` (Stripe's epoch seconds: after it Stripe releases
    the authorization)."""
    charge = intent.get("latest_charge")
    if not isinstance(charge, Mapping):
        return intent
    outcome = charge.get("outcome") or {}
    for key in ("risk_level", "risk_score"):
        if isinstance(outcome, Mapping) and outcome.get(key) is not None:
            intent[key] = outcome[key]
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    deadline = card.get("capture_before") if isinstance(card, Mapping) else None
    intent["capture_before"] = _units(deadline) if deadline is not None else None
    intent["latest_charge"] = charge.get("id")
    return intent


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


def _setting_key(key: str | None) -> str | None:
    """The key of an update that sets fields (amount, customer details).

    The module keys such updates per entity (`{session_id}:update`), but Stripe replays a key's first
    response for 24 h: an amount going 100 -> 150 -> 100 -> 150 would get the first answer back and
    leave Stripe at 100. Setting a value twice is harmless, so each request gets its own key, prefixed
    with the module's for tracing; the SDK's own retries of the request still reuse it.
    """
    return f"{key}:{uuid.uuid4().hex}" if key else None


def _merge(previous: Mapping[str, Any], intent: Data) -> Data:
    """The session's data after a call: what was there, overwritten by Stripe's intent."""
    merged = {**previous, **intent}
    if not intent.get("last_payment_error"):
        merged.pop("decline_code", None)
    return merged


def _customer_id(context: ProviderContext) -> str | None:
    holder = context.account_holder or {}
    data = holder.get("data") or {}
    found = data.get("id") if isinstance(data, Mapping) else None
    return str(found or holder.get("external_id") or "") or None


def _customer_params(customer: Mapping[str, Any]) -> Data:
    """Stripe customer fields from paymod's customer (Medusa's PaymentCustomerDTO)."""
    name = customer.get("company_name") or " ".join(
        str(part) for part in (customer.get("first_name"), customer.get("last_name")) if part
    )
    params: Data = {}
    for key, value in (("email", customer.get("email")), ("name", name), ("phone", customer.get("phone"))):
        if value:
            params[key] = value
    billing = customer.get("billing_address") or {}
    address = {
        key: billing.get(source)
        for key, source in (
            ("city", "city"),
            ("country", "country_code"),
            ("line1", "address_1"),
            ("line2", "address_2"),
            ("postal_code", "postal_code"),
            ("state", "province"),
        )
        if billing.get(source)
    }
    if address:
        params["address"] = address
    return params


class FormHTTPXClient(stripe.HTTPXClient):
    """The SDK's HTTPX client, sending the encoded form as `content=`.

    The SDK passes the already-encoded body as `data=`, which httpx 0.28 deprecates with a
    DeprecationWarning on every call (an error where warnings are errors). Should the SDK rename the
    hook, this falls back to the SDK's behaviour.
    """

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        if isinstance(kwargs.get("data"), str | bytes):
            kwargs["content"] = kwargs.pop("data")
        return [args, kwargs]


class StripeProvider(PaymentProvider):
    """Cards and every method Stripe offers through PaymentIntents (identifier `stripe`)."""

    identifier = "stripe"
    #: Forced by the single-method variants (Medusa's `paymentIntentOptions`); session data wins.
    payment_method_types: ClassVar[tuple[str, ...] | None] = None
    capture_method: ClassVar[str | None] = None

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.settings = StripeOptions.parse(self.options)
        self._client: stripe.StripeClient | None = None
        self._http_client: stripe.HTTPClient | None = None
        global _warned_missing_secret
        if self.settings.webhook_secret is None and not _warned_missing_secret:
            _warned_missing_secret = True
            log.warning("Stripe option `webhook_secret` is not set: Stripe webhooks will be refused")

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        StripeOptions.parse(options)

    # -- the client ---------------------------------------------------------------------
    @property
    def client(self) -> stripe.StripeClient:
        """The SDK client, created on first use (the variants of one config that go unused open nothing)."""
        if self._client is None:
            settings = self.settings
            self._http_client = settings.http_client or FormHTTPXClient(timeout=settings.timeout)
            self._client = stripe.StripeClient(
                settings.api_key,
                base_addresses={"api": settings.api_base} if settings.api_base else None,
                max_network_retries=settings.max_network_retries,
                http_client=self._http_client,
            )
        return self._client

    async def close(self) -> None:
        http_client, self._client, self._http_client = self._http_client, None, None
        if http_client is not None and http_client is not self.settings.http_client:
            await http_client.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK

    async def _request(
        self,
        call: Callable[[], Awaitable[T]],
        recover: Callable[[stripe.StripeError], Awaitable[T | None]] | None = None,
    ) -> T:
        """Runs one Stripe call: rate limits are retried with backoff (the SDK retries connection
        errors, 409 and 5xx itself); `recover` may turn an error into a result; the rest is
        translated to paymod's errors."""
        attempt = 0
        while True:
            try:
                return await call()
            except stripe.RateLimitError as exc:
                if attempt < self.settings.max_network_retries:
                    attempt += 1
                    assert self._http_client is not None
                    await self._http_client.sleep_async(backoff(attempt))
                    continue
                raise translate(exc) from exc
            except stripe.StripeError as exc:
                if recover is not None:
                    recovered = await recover(exc)
                    if recovered is not None:
                        return recovered
                raise translate(exc) from exc

    @staticmethod
    def _options(idempotency_key: str | None, account: str | None = None) -> stripe.RequestOptions:
        options: stripe.RequestOptions = {}
        if idempotency_key:
            options["idempotency_key"] = idempotency_key
        if account:
            options["stripe_account"] = account
        return options

    def _account(self, data: Mapping[str, Any], context: ProviderContext | None = None) -> str | None:
        """The connected account (`Stripe-Account`) of a call: the session's (`data.stripe_account`, kept in
        the payment's data from initiation on), the context's, or the `stripe_account` option."""
        found = data.get("stripe_account")
        if found is None and context is not None:
            found = context.extra.get("stripe_account")
        if found is None:
            return self.settings.stripe_account
        try:
            return stripe_account_id(found, "`stripe_account`")
        except ValueError as exc:
            raise InvalidDataError(str(exc), code="invalid_data") from None

    @staticmethod
    def _intent_id(data: Mapping[str, Any], doing: str) -> str:
        intent_id = data.get("id")
        if not isinstance(intent_id, str) or not intent_id:
            raise ProviderError(
                f"No payment intent ID provided while {doing}: No payment intent ID provided.",
                code="invalid_data",
            )
        return intent_id

    def _status(self, intent: Mapping[str, Any]) -> PaymentSessionStatus:
        return session_status(intent, self.settings.async_payment_method_types)

    async def _retrieve_intent(self, intent_id: str, account: str | None) -> Data:
        options = self._options(None, account)
        intent = await self._request(
            lambda: self.client.v1.payment_intents.retrieve_async(
                intent_id, {"expand": ["payment_method", "latest_charge"]}, options
            )
        )
        return _with_charge_facts(_dump(intent))

    async def _list_all(self, page: Callable[[Data], Awaitable[Any]]) -> list[Data]:
        """Every item of a Stripe list, page after page (`limit` 100, `starting_after`, `has_more`)."""
        items: list[Data] = []
        cursor: str | None = None
        while True:
            params: Data = {"limit": _PAGE}
            if cursor is not None:
                params["starting_after"] = cursor
            listed = await self._request(functools.partial(page, params))
            batch = [_dump(item) for item in listed.data]
            items.extend(batch)
            if not listed.has_more or not batch:
                return items
            cursor = str(batch[-1]["id"])

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
        return AuthorizePaymentOutput(data=result.data, status=result.status)

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
        return ProviderOutput(data={**data, "last_refund": last_refund})

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

    # -- webhooks -------------------------------------------------------------------------
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

    # -- account holders (Stripe customers) -----------------------------------------------
    async def create_account_holder(self, input: AccountHolderInput) -> AccountHolderOutput:
        context = input.context
        existing = _customer_id(context)
        if existing:
            return AccountHolderOutput(
                id=existing, data=dict((context.account_holder or {}).get("data") or {})
            )
        customer = context.customer
        if not customer:
            raise ProviderError("No customer in context", code="invalid_data")
        params = _customer_params(customer)
        if customer.get("id"):
            params["metadata"] = {"customer_id": str(customer["id"])}
        options = self._options(context.idempotency_key, self._account(input.data, context))
        created = await self._request(
            lambda: self.client.v1.customers.create_async(
                cast("stripe.params.CustomerCreateParams", params), options
            )
        )
        data = _dump(created)
        return AccountHolderOutput(id=str(data["id"]), data=data)

    async def retrieve_account_holder(self, input: AccountHolderInput) -> AccountHolderOutput:
        customer_id = _customer_id(input.context)
        if not customer_id:
            raise ProviderError("No account holder in context", code="invalid_data")
        options = self._options(None, self._account(input.data, input.context))
        data = _dump(
            await self._request(lambda: self.client.v1.customers.retrieve_async(customer_id, None, options))
        )
        return AccountHolderOutput(id=str(data["id"]), data=data)

    async def update_account_holder(self, input: AccountHolderInput) -> ProviderOutput:
        context = input.context
        customer_id = _customer_id(context)
        if not customer_id:
            raise ProviderError("No account holder in context", code="invalid_data")
        if not context.customer:
            return ProviderOutput()
        params = _customer_params(context.customer)
        options = self._options(_setting_key(context.idempotency_key), self._account(input.data, context))
        updated = await self._request(
            lambda: self.client.v1.customers.update_async(
                customer_id, cast("stripe.params.CustomerUpdateParams", params), options
            )
        )
        return ProviderOutput(data=_dump(updated))

    async def delete_account_holder(self, input: AccountHolderInput) -> ProviderOutput:
        customer_id = _customer_id(input.context)
        if not customer_id:
            return ProviderOutput(data={})
        options = self._options(None, self._account(input.data, input.context))

        async def gone(exc: stripe.StripeError) -> Data | None:
            return {} if exc.http_status == 404 else None  # deleted already: nothing left to do

        async def delete() -> Data:
            return _dump(await self.client.v1.customers.delete_async(customer_id, None, options))

        return ProviderOutput(data=await self._request(delete, gone))

    # -- saved payment methods ------------------------------------------------------------
    async def list_payment_methods(self, input: PaymentMethodInput) -> list[PaymentMethodOutput]:
        """Every saved method of the account holder's customer, all pages of Stripe's list."""
        customer_id = _customer_id(input.context)
        if not customer_id:
            return []
        options = self._options(None, self._account(input.data, input.context))

        def customer_page(params: Data) -> Awaitable[Any]:
            return self.client.v1.customers.payment_methods.list_async(
                customer_id, cast("stripe.params.CustomerPaymentMethodListParams", params), options
            )

        def card_page(params: Data) -> Awaitable[Any]:
            return self.client.v1.payment_methods.list_async(
                cast(
                    "stripe.params.PaymentMethodListParams",
                    {**params, "customer": customer_id, "type": "card"},
                ),
                options,
            )

        try:
            methods = await self._list_all(customer_page)
        except ProviderError as exc:
            # Stripe-compatible servers without the customer-scoped list (localstripe) answer a bare,
            # non-JSON 404 (no error object); Stripe itself always answers JSON. Fall back to the card list.
            cause = exc.__cause__
            if not (isinstance(cause, stripe.APIError) and cause.http_status == 404 and cause.error is None):
                raise
            methods = await self._list_all(card_page)
        return [PaymentMethodOutput(id=str(method["id"]), data=method) for method in methods]

    async def save_payment_method(self, input: PaymentMethodInput) -> PaymentMethodOutput:
        customer_id = _customer_id(input.context)
        if not customer_id:
            raise ProviderError("No account holder in context", code="invalid_data")
        account = self._account(input.data, input.context)
        params: Data = {
            "customer": customer_id,
            **{k: v for k, v in input.data.items() if k != "stripe_account"},
        }
        options = self._options(input.context.idempotency_key, account)
        created = await self._request(
            lambda: self.client.v1.setup_intents.create_async(
                cast("stripe.params.SetupIntentCreateParams", params), options
            )
        )
        data = _dump(created)
        return PaymentMethodOutput(id=str(data["id"]), data=data)

    async def delete_payment_method(self, input: PaymentMethodInput) -> ProviderOutput:
        method_id = input.data.get("id")
        if not isinstance(method_id, str) or not method_id:
            raise ProviderError("No payment method ID provided", code="invalid_data")
        options = self._options(
            input.context.idempotency_key or f"{method_id}:detach", self._account(input.data, input.context)
        )
        detached = await self._request(
            lambda: self.client.v1.payment_methods.detach_async(method_id, None, options)
        )
        return ProviderOutput(data=_dump(detached))


class BancontactProvider(StripeProvider):
    identifier = "stripe-bancontact"
    payment_method_types = ("bancontact",)
    capture_method = "automatic"


class BlikProvider(StripeProvider):
    identifier = "stripe-blik"
    payment_method_types = ("blik",)
    capture_method = "automatic"


class IdealProvider(StripeProvider):
    identifier = "stripe-ideal"
    payment_method_types = ("ideal",)
    capture_method = "automatic"


class Przelewy24Provider(StripeProvider):
    identifier = "stripe-przelewy24"
    payment_method_types = ("p24",)
    capture_method = "automatic"


class PromptpayProvider(StripeProvider):
    identifier = "stripe-promptpay"
    payment_method_types = ("promptpay",)
    capture_method = "automatic"


class OxxoProvider(StripeProvider):
    identifier = "stripe-oxxo"
    payment_method_types = ("oxxo",)
    capture_method = "automatic"


__all__ = [
    "BancontactProvider",
    "BlikProvider",
    "IdealProvider",
    "OxxoProvider",
    "PromptpayProvider",
    "Przelewy24Provider",
    "StripeProvider",
]
