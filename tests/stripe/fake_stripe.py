"""An in-memory Stripe, plugged into the SDK as its HTTP client (`http_client=FakeStripe()`).

It answers the v1 endpoints the provider uses with Stripe's documented JSON shapes and status codes,
for what localstripe cannot produce (reference/localstripe.md, "Filling the gaps"):

- idempotency (stripe-rules E1): the first response to a key is stored and replayed with
  `Idempotent-Replayed: true`; the same key with another endpoint or parameters gives 400
  `idempotency_error`; 429s and connection failures are never stored;
- state errors carrying `error.payment_intent` (`payment_intent_unexpected_state`), refunds beyond
  what was captured (`charge_already_refunded`, `amount_too_large`), refund reasons checked;
- card errors (402 `card_error`) carrying the PaymentIntent and a `decline_code`;
- `amount_capturable`, `amount_received`, multicapture (`final_capture: false`);
- faults on demand: rate limits (429), connection errors, 409 conflicts, 500s; `crashed`: Stripe
  executed the request but answered 500, and stores that 500 under the key ("Retries with the same
  key return the saved response, including 500 errors", docs.stripe.com/api/idempotent_requests);
  `expire_idempotency_keys()` prunes the keys as Stripe does after 24 hours;
- currencies (docs.stripe.com/currencies): ISK and UGX amounts must be divisible by 100
  (`invalid_charge_amount_no_decimal_compatible`), three-decimal amounts must end in 0;
- Connect: objects live in the account named by the `Stripe-Account` header (another account's
  object is a 404 `resource_missing`), `application_fee_amount` needs a direct or destination charge;
- lists paginate (`limit`, `starting_after`, `has_more`, newest first), refunds list by
  `payment_intent`; charges carry Radar's `outcome` and the card's `capture_before`;
- events (`payment_intent.amount_capturable_updated`, `.succeeded`, `.canceled`, `.processing`, ...)
  and their `Stripe-Signature` headers.

The SDK still does the encoding, the retries (with `sleep_async` recorded, not slept) and the error
mapping, so the provider is exercised exactly as against Stripe.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

Json = dict[str, Any]


class StripeHTTPError(Exception):
    def __init__(self, status: int, error: Json) -> None:
        super().__init__(error.get("message"))
        self.status = status
        self.error = error


def invalid(message: str, code: str | None = None, param: str | None = None, **extra: Any) -> StripeHTTPError:
    error: Json = {"type": "invalid_request_error", "message": message, **extra}
    if code:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        error["param"] = param
    return StripeHTTPError(400, error)


def missing(kind: str, id: str) -> StripeHTTPError:
    return StripeHTTPError(
        404,
        {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": f"No such {kind}: '{id}'",
            "param": "id",
        },
    )


def decode_form(pairs: list[tuple[str, str]]) -> Json:
    """Stripe's form encoding (`a[b][0]=x`) back to nested dicts and lists."""
    root: Json = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def listify(value: Any) -> Any:
        if isinstance(value, dict):
            converted = {k: listify(v) for k, v in value.items()}
            if converted and all(k.isdigit() for k in converted):
                return [converted[k] for k in sorted(converted, key=int)]
            return converted
        return value

    return dict(listify(root))


def _bool(value: Any) -> bool:
    return value in (True, "true", "True", "1")


def _int(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid integer: {value}", code="parameter_invalid_integer", param=param) from None


#: docs.stripe.com/currencies: the special cases ISK and UGX (two-decimal values "where the decimal
#: amount is always 00") and three-decimal currencies ("require the least-significant (last) digit to
#: be 0").
WHOLE_UNITS = frozenset({"isk", "ugx"})
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
DAY = 86_400


def check_currency_amount(amount: int, currency: str, param: str) -> None:
    """Stripe's amount rules per currency, as its API enforces them."""
    code = currency.lower()
    if code in WHOLE_UNITS and amount % 100:
        raise invalid(
            f"Invalid amount. Currency {code.upper()} has become effectively zero-decimal and charged "
            "amounts must be evenly divisible by 100. See https://stripe.com/docs/currencies#special-cases "
            "for more information.",
            code="invalid_charge_amount_no_decimal_compatible",
            param=param,
        )
    if code in THREE_DECIMAL and amount % 10:
        raise invalid(
            f"Invalid amount. Amounts in {code.upper()} must have 0 as their least-significant digit. See "
            "https://stripe.com/docs/currencies#three-decimal for more information.",
            param=param,
        )


@dataclass
class Card:
    """What a magic test PaymentMethod does on confirmation."""

    brand: str = "visa"
    last4: str = "4242"
    kind: str = "card"
    requires_action: bool = False
    decline_code: str | None = None
    async_method: bool = False
    risk_level: str = "normal"
    risk_score: int = 20


MAGIC: dict[str, Card] = {
    "pm_card_visa": Card(),
    "pm_card_mastercard": Card(brand="mastercard", last4="4444"),
    "pm_card_amex": Card(brand="amex", last4="8431"),
    "pm_card_threeDSecure2Required": Card(last4="3155", requires_action=True),
    "pm_card_visa_chargeDeclined": Card(last4="0002", decline_code="generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": Card(last4="9995", decline_code="insufficient_funds"),
    "pm_sepa_debit": Card(brand="", last4="3000", kind="sepa_debit", async_method=True),
    "pm_card_riskLevelElevated": Card(last4="9235", risk_level="elevated", risk_score=75),
    # Bancontact redirects to the bank (`authenticate` stands for it), then succeeds.
    "pm_bancontact": Card(
        brand="", last4="7061", kind="bancontact", requires_action=True, risk_level="not_assessed"
    ),
}


@dataclass
class Recorded:
    method: str
    path: str
    params: Json
    idempotency_key: str | None
    status: int = 0
    replayed: bool = False
    account: str | None = None


SERVER_ERROR: Json = {"type": "api_error", "message": "Something went wrong on Stripe's end."}


@dataclass
class Fault:
    # rate_limit | connection | conflict | server_error (not executed, nothing stored) |
    # lost (processed, answer lost) | crashed (processed, answered 500, the 500 stored under the key)
    kind: str
    path: str | None = None


@dataclass
class FakeStripe(stripe.HTTPClient):
    """The fake. Inspect `requests`, `sleeps`, `events`; inject `faults`."""

    name = "fake-stripe"
    webhook_secret: str = "whsec_fake"
    objects: dict[str, Json] = field(default_factory=dict)
    card_of: dict[str, Card] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    events: list[Json] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    idempotency: dict[str, tuple[str, str, str, int, str]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    #: The connected account of the request being answered (`Stripe-Account`), None for the platform.
    _account: str | None = None

    def __post_init__(self) -> None:
        stripe.HTTPClient.__init__(self)

    # -- the SDK's HTTP client interface ------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        raise NotImplementedError("the provider only makes async calls")

    def close(self) -> None:
        pass

    async def close_async(self) -> None:
        pass

    def sleep_async(self, secs: float) -> Awaitable[None]:
        self.sleeps.append(secs)

        async def done() -> None:
            return None

        return done()

    async def request_async(
        self, method: str, url: str, headers: Any, post_data: Any = None
    ) -> tuple[bytes, int, dict[str, str]]:
        parts = urlsplit(url)
        body = post_data.decode() if isinstance(post_data, bytes) else (post_data or "")
        params = decode_form(parse_qsl(parts.query) + parse_qsl(body))
        lowered = {k.lower(): v for k, v in dict(headers).items()}
        key = lowered.get("idempotency-key")
        account = lowered.get("stripe-account")
        record = Recorded(method.upper(), parts.path, params, key, account=account)
        self.requests.append(record)
        self._account = account
        fault = self._take_fault(parts.path)
        if fault is not None and fault.kind == "lost":
            # Stripe did the work (and keyed it); the answer never arrived.
            await self._answer(method, parts.path, params, key, record)
            record.status = -2
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]  # untyped in the SDK
                "Connection reset by peer (fake, after the request was processed)", should_retry=True
            )
        if fault is not None and fault.kind == "crashed":
            # Stripe began executing, did the work, then failed: the 500 is what it saved for the key.
            await self._answer(method, parts.path, params, key, record, crash=True)
            return json.dumps({"error": SERVER_ERROR}).encode(), 500, self._headers()
        if fault is not None:
            if fault.kind == "connection":
                record.status = -1
                raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]  # untyped in the SDK
                    "Connection refused (fake)", should_retry=True
                )
            status, error = {
                "rate_limit": (
                    429,
                    {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests"},
                ),
                "conflict": (
                    409,
                    {
                        "type": "idempotency_error",
                        "code": "idempotency_key_in_use",
                        "message": (
                            "There is currently another in-progress request using this Idempotent Key."
                        ),
                    },
                ),
                "server_error": (500, SERVER_ERROR),
            }[fault.kind]
            record.status = status
            return json.dumps({"error": error}).encode(), status, self._headers()
        return await self._answer(method, parts.path, params, key, record)

    async def _answer(
        self, method: str, path: str, params: Json, key: str | None, record: Recorded, crash: bool = False
    ) -> tuple[bytes, int, dict[str, str]]:
        fingerprint = hashlib.sha256(
            json.dumps([method.upper(), path, params], sort_keys=True).encode()
        ).hexdigest()
        if key:
            key = f"{self._account or ''}:{key}"  # keys are scoped per account
        if key and method.upper() == "POST" and key in self.idempotency:
            _, _, stored_fp, status, text = self.idempotency[key]
            if stored_fp != fingerprint:
                record.status = 400
                error = {
                    "type": "idempotency_error",
                    "message": (
                        "Keys for idempotent requests can only be used with the same parameters they were "
                        f"first used with. Try using a key other than '{key}' if you meant to execute a "
                        "different request."
                    ),
                }
                return json.dumps({"error": error}).encode(), 400, self._headers()
            record.status, record.replayed = status, True
            return text.encode(), status, {**self._headers(), "idempotent-replayed": "true"}
        before = set(self.objects)
        try:
            status, payload = 200, self._route(method.upper(), path, copy.deepcopy(params))
        except StripeHTTPError as exc:
            status, payload = exc.status, {"error": exc.error}
        for created in set(self.objects) - before:
            self.objects[created].setdefault("_account", self._account)
        if crash:
            status, payload = 500, {"error": SERVER_ERROR}
        text = json.dumps(payload)
        if key and method.upper() == "POST":
            self.idempotency[key] = (method.upper(), path, fingerprint, status, text)
        record.status = status
        return text.encode(), status, self._headers()

    def _headers(self) -> dict[str, str]:
        return {"request-id": f"req_{secrets.token_hex(6)}", "content-type": "application/json"}

    def _take_fault(self, path: str) -> Fault | None:
        for index, fault in enumerate(self.faults):
            if fault.path is None or fault.path == path:
                return self.faults.pop(index)
        return None

    # -- helpers for tests --------------------------------------------------------------
    def fail(self, kind: str, times: int = 1, path: str | None = None) -> None:
        self.faults.extend(Fault(kind, path) for _ in range(times))

    def expire_idempotency_keys(self) -> None:
        """What Stripe does to keys at least 24 hours old: "We generate a new request if a key is reused
        after the original is pruned" (docs.stripe.com/idempotency)."""
        self.idempotency.clear()

    def add_cards(self, customer: str, count: int, account: str | None = None) -> list[str]:
        """`count` cards saved to a customer (as SetupIntents would), oldest first."""
        ids = []
        for _ in range(count):
            pm = self._payment_method("pm_card_visa", customer)
            pm["customer"], pm["_account"] = customer, account
            ids.append(str(pm["id"]))
        return ids

    def confirmation_token(self, payment_method: str = "pm_card_visa") -> str:
        """A ConfirmationToken, as Stripe.js creates it from the payment form (docs.stripe.com/api/
        confirmation_tokens): it carries the payment method the PaymentIntent is confirmed with."""
        token: Json = {
            "id": self._id("ctoken"),
            "object": "confirmation_token",
            "created": int(time.time()),
            "_payment_method": payment_method,
            "_account": None,
        }
        self.objects[token["id"]] = token
        return str(token["id"])

    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def of_type(self, prefix: str) -> list[Json]:
        return [o for i, o in self.objects.items() if i.startswith(prefix)]

    def signed(
        self, event: Json, *, secret: str | None = None, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The raw body and headers Stripe would POST for an event (stripe-rules E2)."""
        raw = json.dumps(event).encode()
        t = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new((secret or self.webhook_secret).encode(), f"{t}.".encode() + raw, hashlib.sha256)
        return raw, {"Stripe-Signature": f"t={t},v1={mac.hexdigest()}", "Content-Type": "application/json"}

    def last_event(self, type: str) -> Json:
        return next(e for e in reversed(self.events) if e["type"] == type)

    def authenticate(self, intent_id: str, success: bool = True) -> Json:
        """What the customer's 3-D Secure challenge does (Stripe.js), then Stripe's confirmation."""
        intent = self.objects[intent_id]
        assert intent["status"] == "requires_action"
        intent["next_action"] = None
        if success:
            self._charge(intent, MAGIC.get(str(intent["_pm_magic"]), Card()))
        else:
            intent.update(
                status="requires_payment_method",
                last_payment_error={
                    "type": "invalid_request_error",
                    "code": "payment_intent_authentication_failure",
                    "message": "The provided PaymentMethod has failed authentication.",
                },
            )
            self._event("payment_intent.payment_failed", intent)
        return self._export(intent)

    def settle(self, intent_id: str) -> None:
        """An async payment method's funds arrive."""
        intent = self.objects[intent_id]
        assert intent["status"] == "processing"
        self._charge(intent, Card(), settle=True)

    # -- objects --------------------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}{secrets.token_hex(4)}"

    def _event(self, type: str, obj: Json) -> Json:
        event = {
            "id": self._id("evt"),
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "type": type,
            "data": {"object": self._export(obj)},
        }
        if obj.get("_account"):
            event["account"] = obj["_account"]  # an event of a connected account (Connect webhooks)
        self.events.append(event)
        return event

    def _export(self, obj: Json, expand: list[str] | None = None) -> Json:
        out = {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}
        for path in expand or []:
            if path == "payment_method" and isinstance(out.get("payment_method"), str):
                out["payment_method"] = self._export(self.objects[out["payment_method"]])
            if path == "latest_charge" and isinstance(out.get("latest_charge"), str):
                out["latest_charge"] = self._export(self.objects[out["latest_charge"]])
        return out

    def _get(self, prefix: str, kind: str, id: str) -> Json:
        obj = self.objects.get(id)
        # An object of another account (Connect) does not exist for this request.
        if obj is None or not id.startswith(prefix) or obj.get("_account") != self._account:
            raise missing(kind, id)
        return obj

    def _payment_method(self, ref: str, customer: str | None = None) -> Json:
        if ref in self.objects:
            return self._get("pm", "payment_method", ref)
        card = MAGIC.get(ref)
        if card is None:
            raise missing("PaymentMethod", ref)
        pm: Json = {
            "id": self._id("pm"),
            "object": "payment_method",
            "type": card.kind,
            "customer": customer,
            "billing_details": {},
            "created": int(time.time()),
            "livemode": False,
            "metadata": {},
            "_magic": ref,
            "_account": self._account,
        }
        if card.kind == "card":
            pm["card"] = {"brand": card.brand, "last4": card.last4, "exp_month": 12, "exp_year": 2034}
        else:
            pm[card.kind] = {"last4": card.last4}
        self.objects[pm["id"]] = pm
        return pm

    # -- routing --------------------------------------------------------------------------
    def _route(self, method: str, path: str, params: Json) -> Json:
        expand = params.pop("expand", None)
        routes: list[tuple[str, str, Callable[..., Json]]] = [
            ("POST", r"/v1/customers", self._customer_create),
            ("GET", r"/v1/customers/(cus_\w+)/payment_methods", self._customer_methods),
            ("GET", r"/v1/customers/(cus_\w+)", self._customer_retrieve),
            ("POST", r"/v1/customers/(cus_\w+)", self._customer_update),
            ("DELETE", r"/v1/customers/(cus_\w+)", self._customer_delete),
            ("GET", r"/v1/payment_methods", self._pm_list),
            ("GET", r"/v1/payment_methods/(\w+)", self._pm_retrieve),
            ("POST", r"/v1/payment_methods/(\w+)/attach", self._pm_attach),
            ("POST", r"/v1/payment_methods/(\w+)/detach", self._pm_detach),
            ("POST", r"/v1/payment_intents", self._pi_create),
            ("GET", r"/v1/payment_intents/(pi_\w+)", self._pi_retrieve),
            ("POST", r"/v1/payment_intents/(pi_\w+)", self._pi_update),
            ("POST", r"/v1/payment_intents/(pi_\w+)/confirm", self._pi_confirm),
            ("POST", r"/v1/payment_intents/(pi_\w+)/capture", self._pi_capture),
            ("POST", r"/v1/payment_intents/(pi_\w+)/cancel", self._pi_cancel),
            ("GET", r"/v1/charges/(ch_\w+)", self._charge_retrieve),
            ("POST", r"/v1/refunds", self._refund_create),
            ("GET", r"/v1/refunds", self._refund_list),
            ("GET", r"/v1/disputes/(du_\w+)", self._dispute_retrieve),
            ("POST", r"/v1/disputes/(du_\w+)", self._dispute_update),
            ("POST", r"/v1/disputes/(du_\w+)/close", self._dispute_close),
            ("POST", r"/v1/setup_intents", self._seti_create),
            ("POST", r"/v1/setup_intents/(seti_\w+)/confirm", self._seti_confirm),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if route_method == method and match:
                result = handler(*match.groups(), params)
                return self._export(result, expand) if result.get("object") != "list" else result
        raise StripeHTTPError(
            404, {"type": "invalid_request_error", "message": f"Unrecognized request URL ({method}: {path})."}
        )

    # customers
    def _customer_create(self, params: Json) -> Json:
        customer = {
            "id": self._id("cus"),
            "object": "customer",
            "created": int(time.time()),
            "livemode": False,
            "email": params.get("email"),
            "name": params.get("name"),
            "phone": params.get("phone"),
            "address": params.get("address"),
            "metadata": params.get("metadata", {}),
            "invoice_settings": {"default_payment_method": None},
            "_account": self._account,
        }
        self.objects[customer["id"]] = customer
        return customer

    def _customer_retrieve(self, id: str, params: Json) -> Json:
        customer = self._get("cus", "customer", id)
        return {"id": id, "object": "customer", "deleted": True} if customer.get("_deleted") else customer

    def _customer_update(self, id: str, params: Json) -> Json:
        customer = self._get("cus", "customer", id)
        if customer.get("_deleted"):
            raise missing("customer", id)
        customer.update(
            {k: v for k, v in params.items() if k in ("email", "name", "phone", "address", "metadata")}
        )
        return customer

    def _customer_delete(self, id: str, params: Json) -> Json:
        customer = self._get("cus", "customer", id)
        if customer.get("_deleted"):
            raise missing("customer", id)
        customer["_deleted"] = True
        return {"id": id, "object": "customer", "deleted": True}

    def _list(self, items: list[Json], url: str, params: Json | None = None) -> Json:
        """A page of a list, as Stripe pages them: newest first, `limit` (1 to 100, default 10) items
        after the `starting_after` cursor, and `has_more` when more follow."""
        params = params or {}
        limit = _int(params.get("limit", 10), "limit")
        if not 1 <= limit <= 100:
            raise invalid("Limit must be between 1 and 100.", param="limit")
        newest_first = [i for i in reversed(items) if i.get("_account") == self._account]
        after = params.get("starting_after")
        if after is not None:
            ids = [i["id"] for i in newest_first]
            if after not in ids:
                raise missing("object", after)
            newest_first = newest_first[ids.index(after) + 1 :]
        page = newest_first[:limit]
        return {
            "object": "list",
            "url": url,
            "has_more": len(newest_first) > limit,
            "data": [self._export(i) for i in page],
        }

    def _customer_methods(self, id: str, params: Json) -> Json:
        self._get("cus", "customer", id)
        methods = [o for o in self.of_type("pm_") if o.get("customer") == id]
        return self._list(methods, f"/v1/customers/{id}/payment_methods", params)

    # payment methods
    def _pm_list(self, params: Json) -> Json:
        if not params.get("customer"):
            raise invalid("Missing required param: customer.", code="parameter_missing", param="customer")
        methods = [
            o
            for o in self.of_type("pm_")
            if o.get("customer") == params["customer"]
            and (not params.get("type") or o["type"] == params["type"])
        ]
        return self._list(methods, "/v1/payment_methods", params)

    def _pm_retrieve(self, id: str, params: Json) -> Json:
        return self._payment_method(id)

    def _pm_attach(self, id: str, params: Json) -> Json:
        pm = self._payment_method(id)
        self._get("cus", "customer", params.get("customer", ""))
        pm["customer"] = params["customer"]
        return pm

    def _pm_detach(self, id: str, params: Json) -> Json:
        pm = self._payment_method(id)
        if not pm.get("customer"):
            raise invalid(
                "The payment method you provided is not attached to a customer so detachment is impossible.",
                code="payment_method_unexpected_state",
            )
        pm["customer"] = None
        return pm

    # payment intents
    def _pi_create(self, params: Json) -> Json:
        amount = _int(params.get("amount"), "amount")
        if amount < 1:
            raise invalid("Amount must be at least $0.50 usd", code="amount_too_small", param="amount")
        if not params.get("currency"):
            raise invalid("Missing required param: currency.", code="parameter_missing", param="currency")
        if params.get("customer"):
            self._get("cus", "customer", params["customer"])
        if params.get("payment_method_types") and params.get("automatic_payment_methods"):
            raise invalid(
                "You may only specify one of these parameters: "
                "automatic_payment_methods, payment_method_types."
            )
        check_currency_amount(amount, params["currency"], "amount")
        confirm = _bool(params.get("confirm"))
        for only_on_confirm in ("mandate_data", "confirmation_token"):
            # "This parameter can only be used with confirm=true" (PaymentIntent create, stripe-python).
            if params.get(only_on_confirm) and not confirm:
                raise invalid(
                    f"The parameter {only_on_confirm} can only be used with confirm=true.",
                    param=only_on_confirm,
                )
        transfer = params.get("transfer_data")
        if transfer is not None and not str(transfer.get("destination", "")).startswith("acct_"):
            raise invalid("Missing required param: transfer_data[destination].", param="transfer_data")
        fee = params.get("application_fee_amount")
        if fee is not None:
            fee = _int(fee, "application_fee_amount")
            if self._account is None and transfer is None:
                raise invalid(
                    "Can only apply an application_fee_amount when the PaymentIntent is attempting a direct "
                    "payment (using an OAuth key or Stripe-Account header) or destination payment (using "
                    "`transfer_data[destination]`).",
                    param="application_fee_amount",
                )
            if fee > amount:
                raise invalid(
                    "The application fee amount must not exceed the amount.", param="application_fee_amount"
                )
            check_currency_amount(fee, params["currency"], "application_fee_amount")
        if transfer is not None and transfer.get("amount") is not None:
            transfer["amount"] = _int(transfer["amount"], "transfer_data[amount]")
            check_currency_amount(transfer["amount"], params["currency"], "transfer_data[amount]")
        suffix = params.get("statement_descriptor_suffix")
        if suffix is not None and len(suffix) > 22:
            raise invalid(
                "The statement descriptor suffix must be at most 22 characters.",
                param="statement_descriptor_suffix",
            )
        shipping = params.get("shipping")
        if shipping is not None and not (
            shipping.get("name") and (shipping.get("address") or {}).get("line1")
        ):
            raise invalid(
                "Missing required param: shipping[name] or shipping[address][line1].", param="shipping"
            )
        token = None
        if params.get("confirmation_token"):
            token = self._get("ctoken", "confirmation_token", params["confirmation_token"])
        intent: Json = {
            "id": self._id("pi"),
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "currency": params["currency"],
            "capture_method": params.get("capture_method", "automatic_async"),
            "confirmation_method": "automatic",
            "customer": params.get("customer"),
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
            "payment_method": None,
            "payment_method_types": params.get("payment_method_types", ["card"]),
            "payment_method_options": params.get("payment_method_options", {}),
            "setup_future_usage": params.get("setup_future_usage"),
            "statement_descriptor_suffix": suffix,
            "receipt_email": params.get("receipt_email"),
            "shipping": shipping,
            "application_fee_amount": fee,
            "transfer_data": transfer,
            "on_behalf_of": params.get("on_behalf_of"),
            "automatic_payment_methods": params.get("automatic_payment_methods"),
            "latest_charge": None,
            "last_payment_error": None,
            "next_action": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "created": int(time.time()),
            "livemode": False,
            "status": "requires_payment_method",
        }
        intent["client_secret"] = f"{intent['id']}_secret_{secrets.token_hex(8)}"
        intent["_account"] = self._account
        self.objects[intent["id"]] = intent
        if params.get("payment_method"):
            # "values in this request will take precedence" over the ConfirmationToken's
            self._attach_to_intent(intent, params["payment_method"])
        elif token is not None:
            self._attach_to_intent(intent, str(token["_payment_method"]))
        if params.get("mandate_data"):
            intent["_mandate_data"] = params["mandate_data"]
        self._event("payment_intent.created", intent)
        if confirm:
            self._confirm(intent)
        elif params.get("off_session"):
            raise invalid("You can only pass off_session when confirm=true.", param="off_session")
        return intent

    def _attach_to_intent(self, intent: Json, ref: str) -> None:
        pm = self._payment_method(ref)
        intent["payment_method"] = pm["id"]
        intent["_pm_magic"] = pm.get("_magic", "pm_card_visa")
        intent["status"] = "requires_confirmation"

    def _unexpected(self, intent: Json, doing: str) -> StripeHTTPError:
        return invalid(
            f"This PaymentIntent's {doing} could not be performed "
            f"because it has a status of {intent['status']}.",
            code="payment_intent_unexpected_state",
            payment_intent=self._export(intent),
        )

    def _pi_retrieve(self, id: str, params: Json) -> Json:
        return self._get("pi", "payment_intent", id)

    def _pi_update(self, id: str, params: Json) -> Json:
        intent = self._get("pi", "payment_intent", id)
        updatable = ("requires_payment_method", "requires_confirmation", "requires_action")
        if intent["status"] not in updatable and ("amount" in params or "currency" in params):
            raise self._unexpected(intent, "amount")
        if "amount" in params:
            amount = _int(params["amount"], "amount")
            check_currency_amount(amount, str(params.get("currency") or intent["currency"]), "amount")
            intent["amount"] = amount
        for key in ("currency", "metadata", "description"):
            if key in params:
                intent[key] = params[key]
        if params.get("payment_method"):
            self._attach_to_intent(intent, params["payment_method"])
        return intent

    def _pi_confirm(self, id: str, params: Json) -> Json:
        intent = self._get("pi", "payment_intent", id)
        if params.get("payment_method"):
            self._attach_to_intent(intent, params["payment_method"])
        if intent["status"] != "requires_confirmation":
            raise self._unexpected(intent, "confirmation")
        self._confirm(intent)
        return intent

    def _confirm(self, intent: Json) -> None:
        card = MAGIC.get(str(intent.get("_pm_magic")), Card())
        if card.requires_action:
            intent["status"] = "requires_action"
            intent["next_action"] = (
                {
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {
                        "type": "three_d_secure_redirect",
                        "stripe_js": "https://hooks.stripe.com/3d_secure_2/",
                    },
                }
                if card.kind == "card"
                else {
                    "type": "redirect_to_url",
                    "redirect_to_url": {
                        "url": "https://pm-redirects.stripe.com/authorize/fake",
                        "return_url": None,
                    },
                }
            )
            self._event("payment_intent.requires_action", intent)
            return
        if card.async_method:
            intent["status"] = "processing"
            self._event("payment_intent.processing", intent)
            return
        if card.decline_code:
            charge = self._new_charge(intent, card, status="failed")
            error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": card.decline_code,
                "message": "Your card was declined."
                if card.decline_code == "generic_decline"
                else "Your card has insufficient funds.",
                "charge": charge["id"],
                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                "payment_method": self._export(self.objects[intent["payment_method"]]),
            }
            intent.update(
                status="requires_payment_method",
                payment_method=None,
                last_payment_error=dict(error),
                latest_charge=charge["id"],
            )
            self._event("payment_intent.payment_failed", intent)
            raise StripeHTTPError(402, {**error, "payment_intent": self._export(intent)})
        self._charge(intent, card)

    def _new_charge(self, intent: Json, card: Card, status: str) -> Json:
        multicapture = (
            (intent.get("payment_method_options") or {}).get("card", {}).get("request_multicapture")
        )
        available = multicapture == "if_available" and card.brand in (
            "visa",
            "mastercard",
            "amex",
            "discover",
        )
        created = int(time.time())
        details: Json = {
            "brand": card.brand,
            "last4": card.last4,
            "multicapture": {"status": "available" if available else "unavailable"},
        }
        if card.kind == "card" and intent["capture_method"] == "manual" and status == "succeeded":
            # "When using manual capture, a future timestamp at which the charge will be automatically
            # refunded if uncaptured" (Charge.payment_method_details.card.capture_before): 7 days for
            # online card payments (PaymentIntent capture: "cancelled ... 7 by default").
            details["capture_before"] = created + 7 * DAY
        charge = {
            "id": self._id("ch"),
            "object": "charge",
            "created": created,
            "_account": intent.get("_account"),
            # Radar's evaluation (Charge.outcome): risk_level for every card payment, `not_assessed`
            # for other methods; risk_score only where there is a level (Radar for Fraud Teams).
            "outcome": {
                "network_status": "approved_by_network" if status == "succeeded" else "declined_by_network",
                "risk_level": card.risk_level,
                **({"risk_score": card.risk_score} if card.kind == "card" else {}),
                "seller_message": "Payment complete." if status == "succeeded" else "The bank declined.",
                "type": "authorized" if status == "succeeded" else "issuer_declined",
            },
            "amount": intent["amount"],
            "amount_captured": 0,
            "amount_refunded": 0,
            "captured": False,
            "refunded": False,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "payment_method": intent["payment_method"],
            "status": status,
            "payment_method_details": {"type": card.kind, card.kind: details},
        }
        self.objects[charge["id"]] = charge
        return charge

    def _charge(self, intent: Json, card: Card, settle: bool = False) -> None:
        charge = self._new_charge(intent, card, status="succeeded")
        intent["latest_charge"] = charge["id"]
        intent["last_payment_error"] = None
        if intent["capture_method"] == "manual" and not settle:
            intent.update(status="requires_capture", amount_capturable=intent["amount"])
            self._event("payment_intent.amount_capturable_updated", intent)
        else:
            charge.update(captured=True, amount_captured=intent["amount"])
            intent.update(status="succeeded", amount_received=intent["amount"], amount_capturable=0)
            self._event("payment_intent.succeeded", intent)

    def _pi_capture(self, id: str, params: Json) -> Json:
        intent = self._get("pi", "payment_intent", id)
        if intent["status"] != "requires_capture":
            raise self._unexpected(intent, "capture")
        charge = self.objects[intent["latest_charge"]]
        amount = _int(params.get("amount_to_capture", intent["amount_capturable"]), "amount_to_capture")
        check_currency_amount(amount, intent["currency"], "amount_to_capture")
        if amount > intent["amount_capturable"]:
            raise invalid(
                "The amount to capture must be less than or equal to the amount capturable.",
                code="amount_too_large",
                param="amount_to_capture",
            )
        final = _bool(params.get("final_capture", "true"))
        multicapture = charge["payment_method_details"].get("card", {}).get("multicapture", {})
        if not final and multicapture.get("status") != "available":
            raise invalid(
                "final_capture=false can only be used when multicapture is available for this PaymentIntent.",
                param="final_capture",
            )
        # metadata: "Individual keys can be unset by posting an empty value to them" (capture params).
        for key, value in (params.get("metadata") or {}).items():
            if value == "":
                intent["metadata"].pop(key, None)
            else:
                intent["metadata"][key] = value
        # docs.stripe.com/payments/multicapture: "The captured field for a charge only becomes true after
        # a final capture"; a final capture (final_capture defaults to true) releases what is left and
        # the intent becomes succeeded with amount_capturable 0; final_capture=false keeps the rest
        # authorized ("amount_capturable": 1000 - 700 = 300).
        charge["amount_captured"] += amount
        intent["amount_received"] += amount
        if final:
            charge["captured"] = True
            if "card" in charge["payment_method_details"]:
                charge["payment_method_details"]["card"].pop("capture_before", None)
            intent.update(status="succeeded", amount_capturable=0)
            self._event("payment_intent.succeeded", intent)
        else:
            intent["amount_capturable"] -= amount
            self._event("payment_intent.amount_capturable_updated", intent)
        return intent

    def _pi_cancel(self, id: str, params: Json) -> Json:
        intent = self._get("pi", "payment_intent", id)
        cancelable = (
            "requires_payment_method",
            "requires_capture",
            "requires_confirmation",
            "requires_action",
        )
        if intent["status"] not in cancelable:
            raise self._unexpected(intent, "cancellation")
        intent.update(
            status="canceled",
            canceled_at=int(time.time()),
            cancellation_reason=params.get("cancellation_reason"),
            amount_capturable=0,
            next_action=None,
        )
        self._event("payment_intent.canceled", intent)
        return intent

    def _charge_retrieve(self, id: str, params: Json) -> Json:
        return self._get("ch", "charge", id)

    # refunds
    def _refund_create(self, params: Json) -> Json:
        intent = self._get("pi", "payment_intent", params.get("payment_intent", ""))
        reason = params.get("reason")
        if reason is not None and reason not in ("duplicate", "fraudulent", "requested_by_customer"):
            raise invalid(
                "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
                param="reason",
            )
        charge = self.objects.get(intent.get("latest_charge") or "")
        # Multicapture: refunds are allowed while requires_capture, up to "amount_received -
        # amount_refunded" (docs.stripe.com/payments/multicapture#refunds).
        if charge is None or not charge["amount_captured"]:
            raise invalid(
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                code="charge_not_captured" if charge else None,
            )
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        if remaining <= 0:
            raise invalid(
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
                charge=charge["id"],
            )
        amount = _int(params.get("amount", remaining), "amount")
        check_currency_amount(amount, charge["currency"], "amount")
        if amount > remaining:
            raise invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
                code="amount_too_large",
                param="amount",
            )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        refund = {
            "id": self._id("re"),
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "currency": charge["currency"],
            "payment_intent": intent["id"],
            "reason": reason,
            "metadata": params.get("metadata", {}),
            "status": "succeeded",
            "created": int(time.time()),
            "_account": intent.get("_account"),
        }
        self.objects[refund["id"]] = refund
        self._event("charge.refunded", charge)
        # "Occurs whenever a refund is created" (docs.stripe.com/api/events/types#event_types-refund.created).
        self._event("refund.created", refund)
        return refund

    def refund_outside(self, intent_id: str, amount: int) -> Json:
        """A refund made in Stripe's dashboard (or by another integration): no paymod metadata."""
        return self._export(self._refund_create({"payment_intent": intent_id, "amount": amount}))

    def cancel_outside(self, intent_id: str, reason: str = "abandoned") -> Json:
        """An authorization voided in Stripe's dashboard (or by another integration): "Occurs when a
        PaymentIntent is canceled" (docs.stripe.com/api/events/types#event_types-payment_intent.canceled)."""
        return self._export(self._pi_cancel(intent_id, {"cancellation_reason": reason}))

    def fail_refund(
        self, refund_id: str, status: str = "failed", reason: str = "expired_or_canceled_card"
    ) -> Json:
        """A refund that fails after it was accepted: "refunds can fail ... the status of the refund
        transitions to failed ... the amount returns to your Stripe balance", with `failure_reason`
        (docs.stripe.com/refunds#failed-refunds); Stripe sends `refund.updated` and, under its older
        name, `charge.refund.updated`."""
        refund = self.objects[refund_id]
        refund.update(status=status, failure_reason=reason if status == "failed" else None)
        charge = self.objects[refund["charge"]]
        charge["amount_refunded"] -= refund["amount"]
        charge["refunded"] = False
        self._event("refund.updated", refund)
        return self._event("charge.refund.updated", refund)

    # disputes (docs.stripe.com/api/disputes/object, docs.stripe.com/disputes/how-disputes-work)
    def dispute_outside(
        self,
        intent_id: str,
        amount: int | None = None,
        reason: str = "fraudulent",
        status: str = "needs_response",
        due_by: int = 1_800_000_000,
    ) -> Json:
        """A customer disputes the intent's charge with their bank: Stripe creates the Dispute
        (`charge.dispute.created`) and, for a chargeback (not an inquiry, `warning_*`), withdraws the
        disputed amount from the balance (`charge.dispute.funds_withdrawn`)."""
        intent = self.objects[intent_id]
        charge = self.objects[intent["latest_charge"]]
        disputed = charge["amount_captured"] if amount is None else amount
        withdrawn = not status.startswith("warning_")
        dispute: Json = {
            "id": self._id("du"),
            "object": "dispute",
            "amount": disputed,
            "charge": charge["id"],
            "currency": charge["currency"],
            "payment_intent": intent_id,
            "reason": reason,
            "status": status,
            "evidence": {},
            "evidence_details": {
                "due_by": due_by,
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
            },
            "is_charge_refundable": False,
            "balance_transactions": [{"object": "balance_transaction", "amount": -disputed}]
            if withdrawn
            else [],
            "created": int(time.time()),
            "livemode": False,
            "metadata": {},
            "_account": intent.get("_account"),
        }
        self.objects[dispute["id"]] = dispute
        charge["disputed"] = True
        self._event("charge.dispute.created", dispute)
        if withdrawn:
            self._event("charge.dispute.funds_withdrawn", dispute)
        return self._export(dispute)

    def close_dispute_outside(self, dispute_id: str, status: str = "won") -> Json:
        """The bank decides: `charge.dispute.closed`; a won chargeback gives the funds back
        (`charge.dispute.funds_reinstated`)."""
        dispute = self.objects[dispute_id]
        dispute["status"] = status
        event = self._event("charge.dispute.closed", dispute)
        if status == "won" and dispute["balance_transactions"]:
            dispute["balance_transactions"].append(
                {"object": "balance_transaction", "amount": dispute["amount"]}
            )
            event = self._event("charge.dispute.funds_reinstated", dispute)
        return event

    def _dispute_retrieve(self, id: str, params: Json) -> Json:
        return self._get("du", "dispute", id)

    def _dispute_update(self, id: str, params: Json) -> Json:
        """ "Updating any field in the hash will submit all fields in the hash for review" with
        `submit` (default true); `submit=false` only stages the evidence; evidence can no longer
        change once submitted or closed."""
        dispute = self._get("du", "dispute", id)
        if dispute["status"] not in ("needs_response", "warning_needs_response"):
            raise invalid(
                f"This dispute is already closed or under review: {id} ({dispute['status']}).",
                code="dispute_already_submitted" if "under_review" in dispute["status"] else None,
            )
        evidence = params.get("evidence") or {}
        if not isinstance(evidence, dict):
            raise invalid("Invalid hash", param="evidence")
        dispute["evidence"].update(evidence)
        dispute["evidence_details"]["has_evidence"] = bool(dispute["evidence"])
        if _bool(params.get("submit", True)):
            dispute["status"] = dispute["status"].replace("needs_response", "under_review")
            dispute["evidence_details"]["submission_count"] += 1
        if params.get("metadata"):
            dispute["metadata"].update(params["metadata"])
        self._event("charge.dispute.updated", dispute)
        return dispute

    def _dispute_close(self, id: str, params: Json) -> Json:
        """ "The status of the dispute will change from needs_response to lost. Closing a dispute is
        irreversible." Closing an inquiry closes it (`warning_closed`)."""
        dispute = self._get("du", "dispute", id)
        if dispute["status"] not in ("needs_response", "warning_needs_response"):
            raise invalid(f"This dispute is already closed or under review: {id} ({dispute['status']}).")
        dispute["status"] = "warning_closed" if dispute["status"].startswith("warning_") else "lost"
        self._event("charge.dispute.closed", dispute)
        return dispute

    def _refund_list(self, params: Json) -> Json:
        """GET /v1/refunds: "Returns a list of all refunds you created ... with the most recent refunds
        appearing first"; `payment_intent`: "Only return refunds for the PaymentIntent specified"."""
        refunds = self.of_type("re_")
        if params.get("payment_intent"):
            refunds = [r for r in refunds if r["payment_intent"] == params["payment_intent"]]
        if params.get("charge"):
            refunds = [r for r in refunds if r["charge"] == params["charge"]]
        return self._list(refunds, "/v1/refunds", params)

    # setup intents
    def _seti_create(self, params: Json) -> Json:
        if params.get("customer"):
            self._get("cus", "customer", params["customer"])
        seti = {
            "id": self._id("seti"),
            "object": "setup_intent",
            "customer": params.get("customer"),
            "usage": params.get("usage", "off_session"),
            "payment_method_types": params.get("payment_method_types", ["card"]),
            "metadata": params.get("metadata", {}),
            "payment_method": None,
            "status": "requires_payment_method",
            "created": int(time.time()),
            "livemode": False,
            "_account": self._account,
        }
        seti["client_secret"] = f"{seti['id']}_secret_{secrets.token_hex(8)}"
        self.objects[seti["id"]] = seti
        if params.get("payment_method"):
            seti["payment_method"] = self._payment_method(params["payment_method"])["id"]
            seti["status"] = "requires_confirmation"
        if _bool(params.get("confirm")):
            self._seti_confirm(seti["id"], {})
        return seti

    def _seti_confirm(self, id: str, params: Json) -> Json:
        seti = self._get("seti", "setup_intent", id)
        if params.get("payment_method"):
            seti["payment_method"] = self._payment_method(params["payment_method"])["id"]
        if not seti["payment_method"]:
            raise invalid("You must provide a payment method.", param="payment_method")
        pm = self.objects[seti["payment_method"]]
        card = MAGIC.get(str(pm.get("_magic")), Card())
        if card.decline_code:
            seti.update(status="requires_payment_method", payment_method=None)
            raise StripeHTTPError(
                402,
                {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": card.decline_code,
                    "message": "Your card was declined.",
                    "setup_intent": self._export(seti),
                },
            )
        seti["status"] = "succeeded"
        if seti.get("customer"):
            pm["customer"] = seti["customer"]
        return seti


def event_payload(fake: FakeStripe, type: str, intent_id: str) -> Json:
    """A fresh event of `type` about an intent's current state (for mapping tests)."""
    return fake._event(type, fake.objects[intent_id])
