"""A fake PayPal REST API on a loopback port, written from PayPal's published API reference.

It answers what the PayPal provider calls, through PayPal's own SDK, with PayPal's shapes:

- `POST /v1/oauth2/token` (client credentials, Basic auth), every other route needs its Bearer token
  (401 `AUTHENTICATION_FAILURE` otherwise);
- Orders v2: create (`Prefer: return=minimal` by default, `return=representation`), get, patch (the
  purchase unit's amount), authorize, capture; statuses CREATED / PAYER_ACTION_REQUIRED -> APPROVED ->
  COMPLETED; links `payer-action` (orders with a `payment_source.paypal`) or `approve`;
- Payments v2: authorizations get / capture (`final_capture`, partial captures) / void / reauthorize,
  captures get / refund, refunds get;
- errors as `{"name", "message", "debug_id", "details": [{"issue", "description"}], "links"}` with the
  issues PayPal documents (INSTRUMENT_DECLINED, ORDER_NOT_APPROVED, AUTHORIZATION_VOIDED,
  AUTHORIZATION_ALREADY_CAPTURED, MAX_CAPTURE_AMOUNT_EXCEEDED, REFUND_AMOUNT_EXCEEDED,
  CAPTURE_FULLY_REFUNDED, DECIMALS_NOT_SUPPORTED, CURRENCY_NOT_SUPPORTED, DUPLICATE_INVOICE_ID, ...);
- PayPal-Request-Id: the same id on the same route gets the first successful answer again (200, the
  same body) and has no second effect; `expire_request_ids()` forgets them, as PayPal does after 6 hours;
- Disputes v1: `GET /v1/customer/disputes` (filter `disputed_transaction_id`),
  `GET /v1/customer/disputes/{id}`, `POST .../accept-claim` (the dispute is resolved in the buyer's
  favour), `POST .../provide-evidence` (multipart/form-data, the JSON part `input`; the dispute goes
  to UNDER_REVIEW); both only while PayPal waits for the seller's response;
- `POST /v1/notifications/verify-webhook-signature`: SUCCESS only for an event this fake signed, with
  its transmission headers and the webhook id it was sent for, unchanged (the event's bytes as sent).

Driver hooks stand in for the buyer and for PayPal's own doings: `approve(order_id)` (also reachable
as `GET /checkoutnow?token=...`, the approval link), `decline_instrument(order_id)` (alias
`decline_next`), `approve_new_orders` / `decline_new_orders` (every new order approved at once or
refused, for tests that cannot reach one order), `refund_outside`, `void_outside`, the buyer's
disputes `dispute_outside(capture_id)`, `update_dispute_outside`, `resolve_dispute_outside`,
`reverse_capture_outside` (PayPal takes a capture's money back, `PAYMENT.CAPTURE.REVERSED`) (each
records the `CUSTOMER.DISPUTE.*` event PayPal would send, read with `last_event(event_type)`, as do
accepting and evidence), `fail_next` (a 5xx,
executed or not, or a slow answer past the client's timeout), `expire_request_ids`, `sign(event)` and
`deliver_webhook(url, event_type, resource)`, which signs and POSTs an event; `requests` records every
request (path, PayPal-Request-Id, status, replayed) and `effects(method, path_regex)` counts those
that had an effect.

The signature is a stand-in: PayPal signs `<transmission id>|<time>|<webhook id>|<crc32 of the body>`
with RSA-SHA256; this fake uses an HMAC over the same string, so only the verification call can check it.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import email.parser
import email.policy
import hashlib
import hmac
import itertools
import json
import re
import secrets
import string
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Json = dict[str, Any]

SUPPORTED = frozenset(
    "AUD BRL CAD CNY CZK DKK EUR HKD HUF ILS JPY MYR MXN TWD NZD NOK PHP PLN GBP SGD SEK CHF THB USD".split()  # noqa: SIM905
)
NO_DECIMALS = frozenset({"HUF", "JPY", "TWD"})
CLIENT_ID = "paymod-fake-client"
CLIENT_SECRET = "paymod-fake-secret"
WEBHOOK_ID = "WH-PAYMOD-FAKE"
CERT_URL = "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-fake"


class PayPalHTTPError(Exception):
    def __init__(self, status: int, body: Json) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error(
    status: int, name: str, message: str, issue: str | None = None, description: str = ""
) -> PayPalHTTPError:
    body: Json = {"name": name, "message": message, "debug_id": secrets.token_hex(6)}
    if issue:
        body["details"] = [{"issue": issue, "description": description or issue.replace("_", " ").lower()}]
        body["links"] = [
            {
                "href": f"https://developer.paypal.com/docs/api/orders/v2/#error-{issue}",
                "rel": "information_link",
                "method": "GET",
            }
        ]
    return PayPalHTTPError(status, body)


def unprocessable(issue: str, description: str = "") -> PayPalHTTPError:
    return error(
        422,
        "UNPROCESSABLE_ENTITY",
        "The requested action could not be performed, semantically incorrect, or failed business validation.",
        issue,
        description,
    )


def invalid_request(issue: str, description: str = "") -> PayPalHTTPError:
    return error(
        400,
        "INVALID_REQUEST",
        "Request is not well-formed, syntactically incorrect, or violates schema.",
        issue,
        description,
    )


def not_found() -> PayPalHTTPError:
    return error(
        404,
        "RESOURCE_NOT_FOUND",
        "The specified resource does not exist.",
        "INVALID_RESOURCE_ID",
        "Specified resource ID does not exist. Please check the resource ID and try again.",
    )


def parse_money(value: Any, where: str) -> tuple[str, Decimal]:
    """PayPal's money object, checked as PayPal does: a supported currency, a decimal string with at most
    two decimals (none for HUF, JPY, TWD)."""
    if not isinstance(value, dict):
        raise invalid_request("MISSING_REQUIRED_PARAMETER", f"{where} is required")
    currency = value.get("currency_code")
    text = value.get("value")
    if currency not in SUPPORTED:
        raise unprocessable("CURRENCY_NOT_SUPPORTED", f"Currency code {currency} is not currently supported.")
    if not isinstance(text, str) or not re.fullmatch(r"\d{1,10}(\.\d{1,2})?", text):
        raise invalid_request("INVALID_PARAMETER_SYNTAX", f"{where}.value {text!r} is not a decimal string")
    if currency in NO_DECIMALS and "." in text:
        raise unprocessable("DECIMALS_NOT_SUPPORTED", f"Currency code {currency} does not support decimals.")
    return currency, Decimal(text)


def _money(currency: str, amount: Decimal) -> Json:
    places = Decimal(1) if currency in NO_DECIMALS else Decimal("0.01")
    return {"currency_code": currency, "value": str(amount.quantize(places))}


def _id(length: int = 17) -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


def _raw_member(raw: bytes, name: str) -> bytes:
    """The bytes of the top-level member `name` of the JSON object `raw`, as sent (b"" when absent).

    PayPal's signature covers the CRC32 of the event's bytes as it sent them, so the verification call
    checks the event embedded in its request byte for byte: a re-serialized or altered event fails."""
    text = raw.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    index = text.find("{") + 1
    while 0 < index < len(text):
        while text[index] in " \t\r\n,":
            index += 1
        if text[index] == "}":
            break
        key, index = decoder.raw_decode(text, index)
        while text[index] in " \t\r\n:":
            index += 1
        start = index
        _, index = decoder.raw_decode(text, index)
        if key == name:
            return text[start:index].encode()
    return b""


def _form_parts(content_type: str, raw: bytes) -> dict[str, bytes]:
    """The parts of a multipart/form-data body, by name."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    if not message.is_multipart():
        raise ValueError("not a multipart body")
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = payload
    return parts


@dataclass
class Fault:
    """`server_error`: 500, nothing done; `lost`: done, then 500; `slow`: done, answered after `delay` s."""

    kind: str
    path: str | None = None
    status: int = 500
    delay: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    request_id: str | None
    status: int = 0
    replayed: bool = False
    body: Json = field(default_factory=dict)


class FakePayPal:
    """The fake's state and routes; `start_fake_paypal()` serves it on a loopback port."""

    def __init__(
        self, *, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET, webhook_id: str = WEBHOOK_ID
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_id = webhook_id
        self.url = ""
        self.lock = threading.RLock()
        self.tokens: set[str] = set()
        self.orders: dict[str, Json] = {}
        self.authorizations: dict[str, Json] = {}
        self.captures: dict[str, Json] = {}
        self.refunds: dict[str, Json] = {}
        self.disputes: dict[str, Json] = {}
        #: The events PayPal would have sent, oldest first (`last_event` reads them).
        self.events: list[Json] = []
        #: order id -> the issue its authorize / capture answers until the buyer approves again.
        self.declined: dict[str, str] = {}
        #: What happens to each new order, for tests that cannot steer one order: approved at once (as
        #: with PayPal's buttons, where the buyer approves before the shop's server sees the order),
        #: and/or declined with this issue.
        self.approve_new_orders = False
        self.decline_new_orders: str | None = None
        self.request_ids: dict[tuple[str, str, str], tuple[int, Json]] = {}
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.invoice_ids: set[str] = set()
        self._signing_key = secrets.token_bytes(32)
        self._signed: dict[str, str] = {}
        self._seq = itertools.count(1)

    # -- driver hooks ------------------------------------------------------------------------------
    def approve(self, order_id: str, *, email: str = "buyer@example.com") -> Json:
        """The buyer approves the order on PayPal (and picks a funding source that works)."""
        with self.lock:
            order = self._order(order_id)
            if order["status"] not in ("CREATED", "PAYER_ACTION_REQUIRED", "APPROVED"):
                raise unprocessable("ORDER_CANNOT_BE_APPROVED", f"order is {order['status']}")
            order["status"] = "APPROVED"
            order["payer"] = {"email_address": email, "payer_id": "FAKEPAYER" + order_id[:4]}
            order["payment_source"] = {"paypal": {"email_address": email, "account_status": "VERIFIED"}}
            order["update_time"] = _now()
            self.declined.pop(order_id, None)
            return copy.deepcopy(order)

    def decline_instrument(self, order_id: str, issue: str = "INSTRUMENT_DECLINED") -> None:
        """The buyer's funding source is declined: authorize / capture answer `issue` (422) until the
        buyer approves again. `TRANSACTION_REFUSED` or `PAYER_CANNOT_PAY` stand for a hard decline."""
        with self.lock:
            self._order(order_id)
            self.declined[order_id] = issue

    def decline_next(self, order_id: str, issue: str = "INSTRUMENT_DECLINED") -> None:
        """The name the provider conformance kit uses for `decline_instrument`."""
        self.decline_instrument(order_id, issue)

    def fail_next(self, kind: str = "server_error", path: str | None = None, *, delay: float = 0.0) -> None:
        self.faults.append(Fault(kind=kind, path=path, delay=delay))

    def expire_request_ids(self) -> None:
        """Forget every PayPal-Request-Id, as PayPal does after its retention (6 hours by default)."""
        with self.lock:
            self.request_ids.clear()

    def refund_outside(self, capture_id: str, amount: Decimal | None = None, **extra: Any) -> Json:
        """A refund made at PayPal without paymod (the merchant's PayPal account)."""
        body: Json = dict(extra)
        if amount is not None:
            body["amount"] = _money(self.captures[capture_id]["amount"]["currency_code"], amount)
        with self.lock:
            return copy.deepcopy(self._refund_capture(capture_id, body))

    def void_outside(self, authorization_id: str) -> Json:
        with self.lock:
            return copy.deepcopy(self._void(authorization_id))

    def dispute_outside(
        self,
        capture_id: str,
        amount: Decimal | None = None,
        *,
        reason: str = "MERCHANDISE_OR_SERVICE_NOT_RECEIVED",
        stage: str = "CHARGEBACK",
        status: str = "WAITING_FOR_SELLER_RESPONSE",
    ) -> Json:
        """The buyer disputes a capture (all of it unless `amount`): an inquiry (`stage="INQUIRY"`)
        or a chargeback; emits `CUSTOMER.DISPUTE.CREATED`."""
        with self.lock:
            capture = self.captures[capture_id]
            currency = capture["amount"]["currency_code"]
            disputed = _money(currency, amount) if amount is not None else copy.deepcopy(capture["amount"])
            dispute_id = f"PP-D-{next(self._seq) + 10000}"
            dispute: Json = {
                "dispute_id": dispute_id,
                "create_time": _now(),
                "update_time": _now(),
                "disputed_transactions": [
                    {
                        "seller_transaction_id": capture_id,
                        "create_time": capture["create_time"],
                        "transaction_status": "COMPLETED",
                        "gross_amount": copy.deepcopy(capture["amount"]),
                        "invoice_number": capture.get("invoice_id"),
                        "custom": capture.get("custom_id"),
                        "seller": {"merchant_id": "FAKEMERCHANT"},
                    }
                ],
                "reason": reason,
                "status": status,
                "dispute_amount": disputed,
                "dispute_life_cycle_stage": stage,
                "dispute_channel": "INTERNAL" if stage == "INQUIRY" else "EXTERNAL",
                "seller_response_due_date": "2027-01-06T07:59:59.000Z",
            }
            base = f"{self.url}/v1/customer/disputes/{dispute_id}"
            dispute["links"] = [
                {"href": base, "rel": "self", "method": "GET"},
                {"href": f"{base}/accept-claim", "rel": "accept_claim", "method": "POST"},
                {"href": f"{base}/provide-evidence", "rel": "provide_evidence", "method": "POST"},
            ]
            self.disputes[dispute_id] = dispute
            self._emit("CUSTOMER.DISPUTE.CREATED", dispute)
            return copy.deepcopy(dispute)

    def update_dispute_outside(self, dispute_id: str, **changes: Any) -> Json:
        """PayPal changes the dispute (`status`, `dispute_life_cycle_stage`, ...); emits
        `CUSTOMER.DISPUTE.UPDATED`."""
        with self.lock:
            dispute = self.disputes[dispute_id]
            dispute.update(changes)
            dispute["update_time"] = _now()
            self._emit("CUSTOMER.DISPUTE.UPDATED", dispute)
            return copy.deepcopy(dispute)

    def resolve_dispute_outside(self, dispute_id: str, outcome_code: str) -> Json:
        """PayPal (or the bank) decides: `RESOLVED_BUYER_FAVOUR`, `RESOLVED_SELLER_FAVOUR`,
        `CANCELED_BY_BUYER`, ...; emits `CUSTOMER.DISPUTE.RESOLVED`."""
        with self.lock:
            return copy.deepcopy(self._resolve(self.disputes[dispute_id], outcome_code))

    def reverse_capture_outside(self, capture_id: str, amount: Decimal | None = None) -> Json:
        """PayPal takes (part of) a capture back (a chargeback); emits `PAYMENT.CAPTURE.REVERSED` with the
        reversal, a refund of the capture."""
        with self.lock:
            body: Json = {"note_to_payer": "Payment reversed"}
            if amount is not None:
                body["amount"] = _money(self.captures[capture_id]["amount"]["currency_code"], amount)
            reversal = self._refund_capture(capture_id, body)
            self._emit("PAYMENT.CAPTURE.REVERSED", reversal)
            return copy.deepcopy(reversal)

    def last_event(self, event_type: str) -> Json:
        with self.lock:
            return copy.deepcopy(next(e for e in reversed(self.events) if e["event_type"] == event_type))

    def _emit(self, event_type: str, resource: Json) -> None:
        self.events.append(self.event(event_type, resource))

    def _resolve(self, dispute: Json, outcome_code: str) -> Json:
        dispute["status"] = "RESOLVED"
        outcome: Json = {"outcome_code": outcome_code}
        if outcome_code in ("RESOLVED_BUYER_FAVOUR", "ACCEPTED"):
            outcome["amount_refunded"] = copy.deepcopy(dispute["dispute_amount"])
        dispute["dispute_outcome"] = outcome
        dispute["update_time"] = _now()
        dispute["links"] = dispute["links"][:1]
        self._emit("CUSTOMER.DISPUTE.RESOLVED", dispute)
        return dispute

    def _answerable(self, dispute_id: str) -> Json:
        dispute = self.disputes.get(dispute_id)
        if dispute is None:
            raise not_found()
        if dispute["status"] != "WAITING_FOR_SELLER_RESPONSE":
            # The issue name is this fake's: PayPal's reference lists no single one for it.
            raise unprocessable("ACTION_NOT_ALLOWED", f"the dispute is {dispute['status']}")
        return dispute

    def _accept_claim(self, dispute_id: str, body: Json) -> Json:
        dispute = self._answerable(dispute_id)
        if not body.get("note"):
            raise invalid_request("MISSING_REQUIRED_PARAMETER", "note is required")
        dispute["_accept_note"] = body["note"]
        self._resolve(dispute, "RESOLVED_BUYER_FAVOUR")
        return {"links": [{"href": f"{self.url}/v1/customer/disputes/{dispute_id}", "rel": "self"}]}

    def _provide_evidence(self, dispute_id: str, parts: dict[str, bytes]) -> Json:
        dispute = self._answerable(dispute_id)
        try:
            given = json.loads(parts.get("input") or b"null")
        except ValueError:
            given = None
        evidences = given.get("evidences") if isinstance(given, dict) else None
        if not isinstance(evidences, list) or not evidences:
            raise invalid_request("MISSING_REQUIRED_PARAMETER", "input.evidences is required")
        dispute.setdefault("evidences", []).extend(evidences)
        dispute["status"] = "UNDER_REVIEW"
        dispute["update_time"] = _now()
        self._emit("CUSTOMER.DISPUTE.UPDATED", dispute)
        return {"links": [{"href": f"{self.url}/v1/customer/disputes/{dispute_id}", "rel": "self"}]}

    def effects(self, method: str, pattern: str) -> int:
        """How many requests matching `pattern` (a regex on the path) had an effect (replays excluded)."""
        return sum(
            1
            for r in self.requests
            if r.method == method
            and re.fullmatch(pattern, r.path)
            and 200 <= r.status < 300
            and not r.replayed
        )

    def order(self, order_id: str) -> Json:
        with self.lock:
            return copy.deepcopy(self._order(order_id))

    # -- webhooks ----------------------------------------------------------------------------------
    def event(self, event_type: str, resource: Json, *, resource_type: str | None = None) -> Json:
        kind = resource_type or event_type.split(".")[1].lower()
        return {
            "id": f"WH-{_id(8)}-{_id(17)}",
            "event_version": "1.0",
            "create_time": _now(),
            "resource_type": kind,
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": f"{event_type} (fake)",
            "resource": self._public(resource),
            "links": [],
        }

    def sign(self, event: Json, *, webhook_id: str | None = None) -> tuple[bytes, dict[str, str]]:
        """The body and transmission headers PayPal sends for `event` to the webhook `webhook_id`."""
        body = json.dumps(event).encode()
        transmission_id = str(uuid.uuid4())
        transmission_time = _now()
        crc = zlib.crc32(body)
        signed = f"{transmission_id}|{transmission_time}|{webhook_id or self.webhook_id}|{crc}"
        signature = base64.b64encode(
            hmac.new(self._signing_key, signed.encode(), hashlib.sha256).digest()
        ).decode()
        with self.lock:
            self._signed[transmission_id] = signature
        headers = {
            "Content-Type": "application/json",
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "PAYPAL-CERT-URL": CERT_URL,
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-SIG": signature,
            "PAYPAL-TRANSMISSION-TIME": transmission_time,
        }
        return body, headers

    def deliver_webhook(
        self, url: str, event_type: str, resource: Json, *, tamper: bool = False, event: Json | None = None
    ) -> tuple[int, bytes, Json]:
        """Signs and POSTs an event to `url` (blocking); answers (status, body, the event sent). Pass an
        `event` sent before to send it again, as PayPal's retries do (same event id, new transmission)."""
        event = event or self.event(event_type, resource)
        body, headers = self.sign(event)
        if tamper:
            changed = copy.deepcopy(event)
            changed["resource"]["amount"] = {"currency_code": "USD", "value": "999999.00"}
            body = json.dumps(changed).encode()
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status), bytes(response.read()), event
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read()), event

    def _verify(self, body: Json, raw_event: bytes) -> Json:
        required = (
            "auth_algo",
            "cert_url",
            "transmission_id",
            "transmission_sig",
            "transmission_time",
            "webhook_id",
        )
        for name in (*required, "webhook_event"):
            if not body.get(name):
                raise error(
                    400,
                    "VALIDATION_ERROR",
                    "Invalid request - see details",
                    "MISSING_REQUIRED_PARAMETER",
                    name,
                )
        host = urlsplit(str(body["cert_url"])).hostname or ""
        signed = (
            f"{body['transmission_id']}|{body['transmission_time']}|{body['webhook_id']}|"
            f"{zlib.crc32(raw_event)}"
        )
        expected = base64.b64encode(
            hmac.new(self._signing_key, signed.encode(), hashlib.sha256).digest()
        ).decode()
        ok = (
            body["webhook_id"] == self.webhook_id
            and (host == "paypal.com" or host.endswith(".paypal.com"))
            and body["auth_algo"] == "SHA256withRSA"
            and self._signed.get(str(body["transmission_id"])) == body["transmission_sig"]
            and hmac.compare_digest(expected, str(body["transmission_sig"]))
        )
        return {"verification_status": "SUCCESS" if ok else "FAILURE"}

    # -- objects -----------------------------------------------------------------------------------
    def _order(self, order_id: str) -> Json:
        try:
            return self.orders[order_id]
        except KeyError:
            raise not_found() from None

    def _unit(self, order: Json) -> Json:
        unit: Json = order["purchase_units"][0]
        return unit

    def _links(self, kind: str, id: str, *extra: tuple[str, str, str]) -> list[Json]:
        links = [{"href": f"{self.url}/{kind}/{id}", "rel": "self", "method": "GET"}]
        links += [{"href": href, "rel": rel, "method": method} for href, rel, method in extra]
        return links

    def _create_order(self, body: Json) -> Json:
        intent = body.get("intent")
        if intent not in ("CAPTURE", "AUTHORIZE"):
            raise invalid_request("INVALID_PARAMETER_VALUE", f"intent {intent!r} is not CAPTURE or AUTHORIZE")
        units = body.get("purchase_units")
        if not isinstance(units, list) or len(units) != 1 or not isinstance(units[0], dict):
            raise invalid_request(
                "INVALID_ARRAY_MAX_ITEMS", "purchase_units must hold one purchase unit here"
            )
        unit = copy.deepcopy(units[0])
        currency, amount = parse_money(unit.get("amount"), "purchase_units[0].amount")
        unit["amount"] = _money(currency, amount)
        unit.setdefault("reference_id", "default")
        for key, limit in (("custom_id", 127), ("reference_id", 256), ("invoice_id", 127)):
            if len(str(unit.get(key) or "")) > limit:
                raise invalid_request("INVALID_STRING_LENGTH", f"{key} is longer than {limit}")
        order_id = _id()
        paypal = (body.get("payment_source") or {}).get("paypal")
        approve = f"{self.url}/checkoutnow?token={order_id}"
        order: Json = {
            "id": order_id,
            "intent": intent,
            "status": "PAYER_ACTION_REQUIRED" if paypal is not None else "CREATED",
            "purchase_units": [unit],
            "create_time": _now(),
            "update_time": _now(),
        }
        if paypal is not None:
            order["payment_source"] = {"paypal": {}}
            order["experience_context"] = copy.deepcopy(paypal.get("experience_context") or {})
        action = "authorize" if intent == "AUTHORIZE" else "capture"
        order["links"] = self._links(
            "v2/checkout/orders",
            order_id,
            (approve, "payer-action" if paypal is not None else "approve", "GET"),
            (f"{self.url}/v2/checkout/orders/{order_id}", "update", "PATCH"),
            (f"{self.url}/v2/checkout/orders/{order_id}/{action}", action, "POST"),
        )
        self.orders[order_id] = order
        if self.approve_new_orders:
            self.approve(order_id)
        if self.decline_new_orders:
            self.declined[order_id] = self.decline_new_orders
        return order

    def _patch_order(self, order_id: str, ops: Any) -> None:
        order = self._order(order_id)
        if order["status"] not in ("CREATED", "PAYER_ACTION_REQUIRED", "APPROVED"):
            raise unprocessable(
                "ORDER_ALREADY_COMPLETED", "The order cannot be patched after it is completed."
            )
        if not isinstance(ops, list) or not ops:
            raise invalid_request("MALFORMED_REQUEST_JSON", "the body must be a list of patch operations")
        unit = self._unit(order)
        for op in ops:
            match = re.fullmatch(r"/purchase_units/@reference_id=='(.+)'/amount", str(op.get("path")))
            if op.get("op") != "replace" or match is None:
                raise unprocessable(
                    "PATCH_PATH_REQUIRED", f"unsupported patch {op.get('op')} {op.get('path')}"
                )
            if match.group(1) != unit.get("reference_id"):
                raise unprocessable("INVALID_PATCH_PATH", f"no purchase unit {match.group(1)}")
            currency, amount = parse_money(op.get("value"), "value")
            unit["amount"] = _money(currency, amount)
        order["update_time"] = _now()

    def _complete_order(self, order_id: str, action: str) -> Json:
        order = self._order(order_id)
        if order["intent"] != action.upper():
            raise unprocessable(
                "ACTION_DOES_NOT_MATCH_INTENT",
                f"Order was created with an intent to {order['intent']}; {action} it accordingly.",
            )
        if order["status"] == "COMPLETED":
            issue = "ORDER_ALREADY_AUTHORIZED" if action == "authorize" else "ORDER_ALREADY_CAPTURED"
            raise unprocessable(issue)
        if order["status"] != "APPROVED":
            raise unprocessable("ORDER_NOT_APPROVED", "Payer has not yet approved the Order for payment.")
        if order_id in self.declined:
            raise unprocessable(
                self.declined[order_id],
                "The instrument presented was either declined by the processor or bank, or it can't be used "
                "for this payment.",
            )
        unit = self._unit(order)
        payments = unit.setdefault("payments", {})
        if action == "authorize":
            authorization = self._new_authorization(order, unit["amount"])
            payments.setdefault("authorizations", []).append(authorization)
        else:
            capture = self._new_capture(
                order, None, unit["amount"], final=True, invoice_id=unit.get("invoice_id")
            )
            payments.setdefault("captures", []).append(capture)
        order["status"] = "COMPLETED"
        order["update_time"] = _now()
        return order

    def _new_authorization(self, order: Json, amount: Json) -> Json:
        unit = self._unit(order)
        authorization_id = _id()
        authorization: Json = {
            "id": authorization_id,
            "status": "CREATED",
            "amount": copy.deepcopy(amount),
            "custom_id": unit.get("custom_id"),
            "invoice_id": unit.get("invoice_id"),
            "seller_protection": {"status": "ELIGIBLE"},
            "expiration_time": (datetime.now(UTC) + timedelta(days=29)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "create_time": _now(),
            "update_time": _now(),
            "supplementary_data": {"related_ids": {"order_id": order["id"]}},
        }
        base = f"{self.url}/v2/payments/authorizations/{authorization_id}"
        authorization["links"] = self._links(
            "v2/payments/authorizations",
            authorization_id,
            (f"{base}/capture", "capture", "POST"),
            (f"{base}/void", "void", "POST"),
            (f"{base}/reauthorize", "reauthorize", "POST"),
            (f"{self.url}/v2/checkout/orders/{order['id']}", "up", "GET"),
        )
        self.authorizations[authorization_id] = authorization
        return authorization

    def _new_capture(
        self, order: Json, authorization: Json | None, amount: Json, *, final: bool, invoice_id: Any
    ) -> Json:
        unit = self._unit(order)
        capture_id = _id()
        capture: Json = {
            "id": capture_id,
            "status": "COMPLETED",
            "amount": copy.deepcopy(amount),
            "final_capture": final,
            "custom_id": unit.get("custom_id"),
            "invoice_id": invoice_id,
            "seller_protection": {"status": "ELIGIBLE"},
            "create_time": _now(),
            "update_time": _now(),
            "supplementary_data": {"related_ids": {"order_id": order["id"]}},
        }
        if authorization is not None:
            capture["supplementary_data"]["related_ids"]["authorization_id"] = authorization["id"]
            up = f"{self.url}/v2/payments/authorizations/{authorization['id']}"
        else:
            up = f"{self.url}/v2/checkout/orders/{order['id']}"
        capture["links"] = self._links(
            "v2/payments/captures",
            capture_id,
            (f"{self.url}/v2/payments/captures/{capture_id}/refund", "refund", "POST"),
            (up, "up", "GET"),
        )
        self.captures[capture_id] = capture
        return capture

    def _order_of(self, resource: Json) -> Json:
        return self.orders[resource["supplementary_data"]["related_ids"]["order_id"]]

    def _captured(self, authorization: Json) -> Decimal:
        return sum(
            (
                Decimal(c["amount"]["value"])
                for c in self.captures.values()
                if c["supplementary_data"]["related_ids"].get("authorization_id") == authorization["id"]
                and c["status"] in ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED", "PENDING")
            ),
            Decimal(0),
        )

    def _capture_authorization(self, authorization_id: str, body: Json) -> Json:
        authorization = self.authorizations.get(authorization_id)
        if authorization is None:
            raise not_found()
        status = authorization["status"]
        if status == "VOIDED":
            raise unprocessable("AUTHORIZATION_VOIDED", "A voided authorization cannot be captured.")
        if status == "CAPTURED":
            raise unprocessable(
                "AUTHORIZATION_ALREADY_CAPTURED", "Authorization has been previously captured."
            )
        if status not in ("CREATED", "PARTIALLY_CAPTURED"):
            raise unprocessable("CANNOT_BE_ZERO_OR_NEGATIVE", f"authorization is {status}")
        currency = authorization["amount"]["currency_code"]
        remaining = Decimal(authorization["amount"]["value"]) - self._captured(authorization)
        if body.get("amount") is not None:
            given_currency, amount = parse_money(body["amount"], "amount")
            if given_currency != currency:
                raise unprocessable(
                    "CURRENCY_MISMATCH", "Currency of capture must match currency of authorization."
                )
        else:
            amount = remaining
        if amount <= 0:
            raise unprocessable("CANNOT_BE_ZERO_OR_NEGATIVE", "Capture amount must be greater than zero.")
        if amount > remaining:
            raise unprocessable(
                "MAX_CAPTURE_AMOUNT_EXCEEDED", "Capture amount exceeds the amount that can be captured."
            )
        invoice_id = body.get("invoice_id")
        if invoice_id:
            if invoice_id in self.invoice_ids:
                raise unprocessable(
                    "DUPLICATE_INVOICE_ID", "Requested invoice number has been previously captured."
                )
            self.invoice_ids.add(invoice_id)
        final = bool(body.get("final_capture", False)) or amount == remaining
        order = self._order_of(authorization)
        capture = self._new_capture(
            order, authorization, _money(currency, amount), final=final, invoice_id=invoice_id
        )
        self._unit(order).setdefault("payments", {}).setdefault("captures", []).append(capture)
        authorization["status"] = "CAPTURED" if final else "PARTIALLY_CAPTURED"
        authorization["update_time"] = _now()
        return capture

    def _void(self, authorization_id: str) -> Json:
        authorization = self.authorizations.get(authorization_id)
        if authorization is None:
            raise not_found()
        if authorization["status"] == "VOIDED":
            raise unprocessable("AUTHORIZATION_VOIDED", "The authorization has been voided already.")
        if authorization["status"] == "CAPTURED":
            raise unprocessable(
                "AUTHORIZATION_ALREADY_CAPTURED", "Authorization has been previously captured."
            )
        authorization["status"] = "VOIDED"
        authorization["update_time"] = _now()
        return authorization

    def _reauthorize(self, authorization_id: str, body: Json) -> Json:
        authorization = self.authorizations.get(authorization_id)
        if authorization is None:
            raise not_found()
        if authorization["status"] != "CREATED":
            raise unprocessable(
                "REAUTHORIZATION_NOT_SUPPORTED", f"authorization is {authorization['status']}"
            )
        amount = authorization["amount"]
        if body.get("amount") is not None:
            currency, value = parse_money(body["amount"], "amount")
            amount = _money(currency, value)
        order = self._order_of(authorization)
        renewed = self._new_authorization(order, amount)
        self._unit(order)["payments"]["authorizations"].append(renewed)
        return renewed

    def _refund_capture(self, capture_id: str, body: Json) -> Json:
        capture = self.captures.get(capture_id)
        if capture is None:
            raise not_found()
        if capture["status"] == "REFUNDED":
            raise unprocessable("CAPTURE_FULLY_REFUNDED", "The capture has already been fully refunded.")
        if capture["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED"):
            raise unprocessable("REFUND_NOT_ALLOWED", f"capture is {capture['status']}")
        currency = capture["amount"]["currency_code"]
        refunded = sum(
            (Decimal(r["amount"]["value"]) for r in self.refunds.values() if r["_capture_id"] == capture_id),
            Decimal(0),
        )
        left = Decimal(capture["amount"]["value"]) - refunded
        if body.get("amount") is not None:
            given_currency, amount = parse_money(body["amount"], "amount")
            if given_currency != currency:
                raise unprocessable(
                    "REFUND_CURRENCY_MISMATCH", "Refund must be in the currency of the capture."
                )
        else:
            amount = left
        if amount <= 0:
            raise unprocessable("REFUND_AMOUNT_TOO_LOW", "The refund amount must be greater than zero.")
        if amount > left:
            raise unprocessable(
                "REFUND_AMOUNT_EXCEEDED",
                "The refund amount must be less than or equal to the capture amount.",
            )
        refund_id = _id()
        refund: Json = {
            "id": refund_id,
            "status": "COMPLETED",
            "amount": _money(currency, amount),
            "custom_id": body.get("custom_id"),
            "invoice_id": body.get("invoice_id"),
            "note_to_payer": body.get("note_to_payer"),
            "seller_payable_breakdown": {"total_refunded_amount": _money(currency, refunded + amount)},
            "create_time": _now(),
            "update_time": _now(),
            "_capture_id": capture_id,
        }
        refund["links"] = self._links(
            "v2/payments/refunds", refund_id, (f"{self.url}/v2/payments/captures/{capture_id}", "up", "GET")
        )
        self.refunds[refund_id] = refund
        capture["status"] = "REFUNDED" if amount == left else "PARTIALLY_REFUNDED"
        capture["update_time"] = _now()
        order = self._order_of(capture)
        self._unit(order).setdefault("payments", {}).setdefault("refunds", []).append(refund)
        return refund

    @staticmethod
    def _public(resource: Json) -> Json:
        def strip(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: strip(v) for k, v in value.items() if not k.startswith("_") and v is not None}
            if isinstance(value, list):
                return [strip(v) for v in value]
            return value

        result: Json = strip(copy.deepcopy(resource))
        return result

    # -- HTTP --------------------------------------------------------------------------------------
    def handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Json | None, dict[str, str]]:
        """One request: (status, JSON body or None, extra headers)."""
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        request_id = headers.get("paypal-request-id")
        record = Recorded(method=method, path=path, request_id=request_id)
        self.requests.append(record)
        if method == "GET" and path == "/checkoutnow":
            token = (parse_qs(parts.query).get("token") or [""])[0]
            try:
                order = self.approve(token)
            except PayPalHTTPError as exc:
                record.status = exc.status
                return exc.status, exc.body, {}
            record.status = 302
            back = (order.get("experience_context") or {}).get("return_url") or f"{self.url}/approved"
            return 302, None, {"Location": f"{back}?token={token}&PayerID=FAKEPAYER"}
        try:
            fault = self._fault(path)
            if fault is not None and fault.kind == "server_error":
                raise error(fault.status, "INTERNAL_SERVER_ERROR", "An internal server error has occurred.")
            if path == "/v1/oauth2/token":
                status, body = self._token(headers, raw)
                record.status = status
                return status, body, {}
            self._authenticate(headers)
            try:
                body_in = (
                    _form_parts(headers["content-type"], raw)
                    if headers.get("content-type", "").startswith("multipart/form-data")
                    else json.loads(raw)
                    if raw
                    else {}
                )
            except ValueError:
                raise invalid_request(
                    "MALFORMED_REQUEST_JSON", "The request JSON is not well formed."
                ) from None
            with self.lock:
                key = (method, path, request_id) if request_id and method == "POST" else None
                if key is not None and key in self.request_ids:
                    status, stored = self.request_ids[key]
                    record.status, record.replayed = 200, True
                    return 200, copy.deepcopy(stored), {}
                status, body = self._route(method, path, body_in, headers, raw, parts.query)
                if key is not None and 200 <= status < 300 and body is not None:
                    self.request_ids[key] = (status, copy.deepcopy(body))
            record.status, record.body = status, body or {}
            if fault is not None and fault.kind == "lost":
                raise error(fault.status, "INTERNAL_SERVER_ERROR", "An internal server error has occurred.")
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)
            return status, body, {}
        except PayPalHTTPError as exc:
            if record.status == 0 or not (200 <= record.status < 300):
                record.status = exc.status
            return exc.status, exc.body, {}

    def _fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path is None or re.search(fault.path, path):
                    self.faults.remove(fault)
                    return fault
        return None

    def _token(self, headers: dict[str, str], raw: bytes) -> tuple[int, Json]:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("authorization") != f"Basic {expected}":
            return 401, {"error": "invalid_client", "error_description": "Client Authentication failed"}
        if parse_qs(raw.decode()).get("grant_type") != ["client_credentials"]:
            return 400, {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}
        token = "A21AA" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
        return 200, {
            "scope": "https://uri.paypal.com/services/payments/payment",
            "access_token": token,
            "token_type": "Bearer",
            "app_id": "APP-80W284485P519543T",
            "expires_in": 32400,
            "nonce": f"{_now()}{_id(8)}",
        }

    def _authenticate(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.tokens:
            raise error(
                401,
                "AUTHENTICATION_FAILURE",
                "Authentication failed due to invalid authentication credentials or a missing Authorization "
                "parameter.",
            )

    def _route(
        self, method: str, path: str, body: Any, headers: dict[str, str], raw: bytes = b"", query: str = ""
    ) -> tuple[int, Json | None]:
        full = "return=representation" in headers.get("prefer", "")
        if method == "POST" and path == "/v1/notifications/verify-webhook-signature":
            return 200, self._verify(body, _raw_member(raw, "webhook_event"))
        if method == "POST" and path == "/v2/checkout/orders":
            order = self._create_order(body)
            if full:
                return 201, self._public(order)
            return 201, {"id": order["id"], "status": order["status"], "links": order["links"]}
        match = re.fullmatch(r"/v2/checkout/orders/([^/]+)(?:/(authorize|capture))?", path)
        if match:
            order_id, action = match.groups()
            if method == "GET" and action is None:
                return 200, self._public(self._order(order_id))
            if method == "PATCH" and action is None:
                self._patch_order(order_id, body)
                return 204, None
            if method == "POST" and action:
                order = self._complete_order(order_id, action)
                return 201, self._public(order)
        match = re.fullmatch(r"/v2/payments/(authorizations|captures|refunds)/([^/]+)(?:/(\w+))?", path)
        if match:
            kind, id, action = match.groups()
            table = {
                "authorizations": self.authorizations,
                "captures": self.captures,
                "refunds": self.refunds,
            }[kind]
            if method == "GET" and action is None:
                if id not in table:
                    raise not_found()
                return 200, self._public(table[id])
            if method == "POST" and kind == "authorizations" and action == "capture":
                return 201, self._public(self._capture_authorization(id, body))
            if method == "POST" and kind == "authorizations" and action == "void":
                voided = self._void(id)
                return (200, self._public(voided)) if full else (204, None)
            if method == "POST" and kind == "authorizations" and action == "reauthorize":
                return 201, self._public(self._reauthorize(id, body))
            if method == "POST" and kind == "captures" and action == "refund":
                return 201, self._public(self._refund_capture(id, body))
        if method == "GET" and path == "/v1/customer/disputes":
            wanted = (parse_qs(query).get("disputed_transaction_id") or [None])[0]
            items = [
                {k: d[k] for k in ("dispute_id", "create_time", "update_time", "reason", "status", "links")}
                | {"dispute_amount": d["dispute_amount"]}
                for d in self.disputes.values()
                if wanted is None
                or any(t["seller_transaction_id"] == wanted for t in d["disputed_transactions"])
            ]
            return 200, {"items": self._public({"items": items})["items"], "links": []}
        match = re.fullmatch(r"/v1/customer/disputes/([^/]+)(?:/(accept-claim|provide-evidence))?", path)
        if match:
            dispute_id, action = match.groups()
            if method == "GET" and action is None:
                if dispute_id not in self.disputes:
                    raise not_found()
                return 200, self._public(self.disputes[dispute_id])
            if method == "POST" and action == "accept-claim":
                return 200, self._accept_claim(dispute_id, body)
            if method == "POST" and action == "provide-evidence":
                if not isinstance(body, dict) or not all(isinstance(v, bytes) for v in body.values()):
                    raise invalid_request(
                        "INVALID_CONTENT_TYPE", "provide-evidence takes multipart/form-data"
                    )
                return 200, self._provide_evidence(dispute_id, body)
        raise error(404, "RESOURCE_NOT_FOUND", f"No route {method} {path}.")


class _Handler(BaseHTTPRequestHandler):
    fake: FakePayPal
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body, extra = self.fake.handle(self.command, self.path, headers, raw)
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Paypal-Debug-Id", secrets.token_hex(6))
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@contextlib.contextmanager
def start_fake_paypal(**options: Any) -> Iterator[FakePayPal]:
    """Serves a `FakePayPal` on a free loopback port for the block; its base URL is `fake.url`."""
    fake = FakePayPal(**options)
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-paypal", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
