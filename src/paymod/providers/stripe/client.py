"""The shared plumbing of the Stripe provider: the SDK client, one call with its retries and error
translation, request options (idempotency key, `Stripe-Account`), reading an intent, listing every page,
and the small helpers every topic uses."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, TypeVar

import stripe

from paymod.domain.errors import InvalidDataError, ProviderError
from paymod.domain.statuses import PaymentSessionStatus
from paymod.providers.base import PaymentProvider, ProviderContext
from paymod.providers.stripe.errors import backoff, translate
from paymod.providers.stripe.mapping import session_status
from paymod.providers.stripe.options import StripeOptions, stripe_account_id

log = logging.getLogger("paymod.providers.stripe")

T = TypeVar("T")
Data = dict[str, Any]

_PAGE = 100  # the largest page Stripe's list endpoints give


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


def _setting_key(key: str | None) -> str | None:
    """The key of an update that sets fields (amount, customer details).

    The module keys such updates per entity (`{session_id}:update`), but Stripe replays a key's first
    response for 24 h: an amount going 100 -> 150 -> 100 -> 150 would get the first answer back and
    leave Stripe at 100. Setting a value twice is harmless, so each request gets its own key, prefixed
    with the module's for tracing; the SDK's own retries of the request still reuse it.
    """
    return f"{key}:{uuid.uuid4().hex}" if key else None


def _customer_id(context: ProviderContext) -> str | None:
    holder = context.account_holder or {}
    data = holder.get("data") or {}
    found = data.get("id") if isinstance(data, Mapping) else None
    return str(found or holder.get("external_id") or "") or None


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


class StripeCalls(PaymentProvider):
    """What every topic of `StripeProvider` calls Stripe through; `StripeProvider.__init__` sets its state."""

    settings: StripeOptions
    _client: stripe.StripeClient | None
    _http_client: stripe.HTTPClient | None
    #: Forced by the single-method variants; set on `StripeProvider`.
    payment_method_types: ClassVar[tuple[str, ...] | None]
    capture_method: ClassVar[str | None]

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
