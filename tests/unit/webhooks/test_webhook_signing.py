"""`Paymod-Signature` (Stripe's scheme): what receivers of paymod's events verify."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from paymod.webhooks import SignatureVerificationError, sign_payload, verify_signature

SECRET = "whsec_unit"
BODY = b'{"id":"evt_1","type":"payment.captured"}'
AT = 1_700_000_000


def test_the_header_is_the_timestamp_and_the_hex_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{AT}.".encode() + BODY, hashlib.sha256).hexdigest()

    assert sign_payload(BODY, SECRET, timestamp=AT) == f"t={AT},v1={expected}"


def test_a_signature_verifies_within_the_tolerance_as_bytes_or_text() -> None:
    header = sign_payload(BODY, SECRET, timestamp=AT)

    verify_signature(BODY, header, SECRET, now=AT + 299)
    verify_signature(BODY.decode(), header, SECRET, now=AT - 299)


def test_one_matching_signature_among_several_is_enough() -> None:
    """Receivers rotating a secret see one v1 per secret."""
    good = sign_payload(BODY, SECRET, timestamp=AT).split(",")[1]

    verify_signature(BODY, f"t={AT},v1={'0' * 64},{good}", SECRET, now=AT)


@pytest.mark.parametrize(
    ("body", "secret", "now", "message"),
    [
        (BODY + b" ", SECRET, AT, "No signature matches"),
        (BODY, "whsec_other", AT, "No signature matches"),
        (BODY, SECRET, AT + 301, "outside the tolerance"),
        (BODY, SECRET, AT - 301, "outside the tolerance"),
    ],
    ids=["tampered body", "wrong secret", "stale", "from the future"],
)
def test_a_tampered_foreign_or_stale_signature_is_refused(
    body: bytes, secret: str, now: int, message: str
) -> None:
    header = sign_payload(BODY, SECRET, timestamp=AT)

    with pytest.raises(SignatureVerificationError, match=message):
        verify_signature(body, header, secret, now=now)


@pytest.mark.parametrize("header", ["", f"t={AT}", "v1=abc", f"t=soon,v1={'0' * 64}", "garbage"])
def test_a_header_without_timestamp_or_signature_is_refused(header: str) -> None:
    with pytest.raises(SignatureVerificationError, match="missing its timestamp or v1"):
        verify_signature(BODY, header, SECRET, now=AT)


def test_a_tolerance_of_zero_skips_the_age_check() -> None:
    verify_signature(BODY, sign_payload(BODY, SECRET, timestamp=AT), SECRET, tolerance=0, now=AT + 10**6)
