"""What the money flows' steps hand each other: frozen dataclasses with `Decimal` amounts.

The durable store keeps them as JSON (`paymod.durable.codec`, the one place they are converted); the
field names are the journal's keys, so a run journaled by an earlier release resumes with these.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

# -- capture -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaptureRequest:
    """A capture as asked: `amount` None takes what remains; `captured_total` and
    `remaining_capturable` are what a provider's webhook reported."""

    payment_id: str
    amount: Decimal | None = None
    captured_total: Decimal | None = None
    remaining_capturable: Decimal | None = None
    captured_by: str | None = None
    is_captured: bool = False


@dataclass(frozen=True, slots=True)
class CaptureBooked:
    """A capture row written under the payment's lock, before the provider is asked."""

    capture_id: str
    amount: Decimal
    captured_after: Decimal
    payment_amount: Decimal
    fully_captured: bool
    provider_id: str
    currency_code: str
    data: dict[str, Any] | None
    payment_collection_id: str
    #: The provider reported it holds nothing more: the payment closes after this capture.
    close: bool = False
    noop: Literal[False] = False


@dataclass(frozen=True, slots=True)
class NothingToCapture:
    """Nothing to book. `close`: the provider closed the authorization, so the payment still closes
    (with what was captured, `captured_after`, of `payment_amount`)."""

    close: bool = False
    captured_after: Decimal | None = None
    payment_amount: Decimal | None = None
    fully_captured: bool = False
    payment_collection_id: str | None = None
    noop: Literal[True] = True


CaptureBooking = CaptureBooked | NothingToCapture


@dataclass(frozen=True, slots=True)
class ProviderCaptured:
    """The provider's answer to a capture: its data, and what it says stays capturable."""

    data: dict[str, Any] | None = None
    remaining_capturable: Decimal | None = None


# -- refund --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """A refund as asked: `amount` None takes what remains refundable."""

    payment_id: str
    amount: Decimal | None = None
    refund_reason_id: str | None = None
    note: str | None = None
    created_by: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RefundBooked:
    """A refund row written under the payment's lock, before the provider is asked."""

    refund_id: str
    amount: Decimal
    reason: str | None
    provider_id: str
    currency_code: str
    data: dict[str, Any] | None
    payment_collection_id: str


# -- cancel --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """A cancel as asked."""

    payment_id: str


@dataclass(frozen=True, slots=True)
class CancelBooked:
    """The payment marked canceled under its lock, before the provider is asked."""

    provider_id: str
    data: dict[str, Any] | None
    payment_collection_id: str
    noop: Literal[False] = False


@dataclass(frozen=True, slots=True)
class AlreadyCanceled:
    """The payment was canceled before: nothing to do."""

    noop: Literal[True] = True


CancelBooking = CancelBooked | AlreadyCanceled


@dataclass(frozen=True, slots=True)
class ProviderAnswered:
    """A provider's answer to a refund or a cancel: its data (None: unchanged), and the provider's id
    of the refund when it gave one."""

    data: dict[str, Any] | None = None
    refund_id: str | None = None
