"""Signatures of outbound events: Stripe's scheme, `Paymod-Signature: t=<unix>,v1=<hex>`.

v1 is the hex HMAC-SHA256, under the endpoint's secret, of `"{t}.{body}"`. Receivers call
`verify_signature` (constant-time compare, timestamp tolerance against replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from paymod.domain.errors import SignatureVerificationError as SignatureVerificationError

SIGNATURE_HEADER = "Paymod-Signature"
EVENT_ID_HEADER = "Paymod-Event-Id"
DEFAULT_TOLERANCE = 300


def _digest(payload: bytes, timestamp: int, secret: str) -> str:
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_payload(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The `Paymod-Signature` header value for a payload."""
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},v1={_digest(payload, moment, secret)}"


def verify_signature(
    payload: bytes | str,
    header: str,
    secret: str,
    tolerance: int = DEFAULT_TOLERANCE,
    *,
    now: int | None = None,
) -> None:
    """Raises SignatureVerificationError unless `header` signs `payload` with `secret`, recently."""
    body = payload.encode() if isinstance(payload, str) else payload
    timestamp: int | None = None
    signatures: list[str] = []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureVerificationError("The signature header is missing its timestamp or v1 signature.")
    expected = _digest(body, timestamp, secret)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureVerificationError("No signature matches the payload.")
    current = int(time.time()) if now is None else now
    if tolerance > 0 and abs(current - timestamp) > tolerance:
        raise SignatureVerificationError("The signature's timestamp is outside the tolerance.")
