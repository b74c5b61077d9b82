"""The money flows' typed hand-offs: exact through the journal, and readable from an older journal."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from paymod.durable import codec
from paymod.durable.engine import fingerprint
from paymod.services.flow_values import (
    AlreadyCanceled,
    CancelBooked,
    CancelBooking,
    CaptureBooked,
    CaptureBooking,
    CaptureRequest,
    NothingToCapture,
    ProviderCaptured,
    RefundBooked,
)


def booked() -> CaptureBooked:
    return CaptureBooked(
        capture_id="capt_1",
        amount=Decimal("10.10"),
        captured_after=Decimal("30.10"),
        payment_amount=Decimal("100.00"),
        fully_captured=False,
        provider_id="pp_system_default",
        currency_code="usd",
        data={"id": "pi_1"},
        payment_collection_id="pay_col_1",
    )


def test_a_booking_survives_the_journal_exactly() -> None:
    stored = codec.dump(booked())
    assert stored["amount"] == "10.10"  # an exact decimal string, never a float
    assert json.loads(json.dumps(stored)) == stored
    assert codec.load(CaptureBooking, stored) == booked()


def test_the_two_kinds_of_capture_booking_are_told_apart() -> None:
    assert codec.load(CaptureBooking, codec.dump(NothingToCapture())) == NothingToCapture()
    closing = NothingToCapture(close=True, captured_after=Decimal("5"), payment_amount=Decimal("9.99"))
    assert codec.load(CaptureBooking, codec.dump(closing)) == closing
    assert codec.load(CancelBooking, {"noop": True}) == AlreadyCanceled()
    assert isinstance(
        codec.load(
            CancelBooking, {"noop": False, "provider_id": "p", "data": None, "payment_collection_id": "c"}
        ),
        CancelBooked,
    )


def test_a_journal_written_as_dicts_with_string_amounts_reads_back_typed() -> None:
    old = {
        "noop": False,
        "close": False,
        "capture_id": "capt_1",
        "amount": "10.10",
        "captured_after": "30.10",
        "payment_amount": "100.00",
        "fully_captured": False,
        "provider_id": "pp_system_default",
        "currency_code": "usd",
        "data": {"id": "pi_1"},
        "payment_collection_id": "pay_col_1",
    }
    assert codec.load(CaptureBooking, old) == booked()
    assert codec.load(ProviderCaptured, {"data": None}) == ProviderCaptured()
    refund = codec.load(
        RefundBooked,
        {
            "refund_id": "ref_1",
            "amount": "0.01",
            "reason": None,
            "provider_id": "p",
            "currency_code": "usd",
            "data": None,
            "payment_collection_id": "c",
        },
    )
    assert refund.amount == Decimal("0.01") and isinstance(refund.amount, Decimal)


def test_a_request_keeps_the_fingerprint_an_older_release_gave_its_key() -> None:
    request = CaptureRequest(payment_id="pay_1", amount=Decimal("12.50"), captured_by="admin")
    old_input = {
        "payment_id": "pay_1",
        "amount": "12.50",
        "captured_total": None,
        "remaining_capturable": None,
        "captured_by": "admin",
        "is_captured": False,
    }
    old = hashlib.sha256(json.dumps(old_input, sort_keys=True, default=str).encode()).hexdigest()
    assert fingerprint(request) == old
