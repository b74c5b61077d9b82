"""Status vocabularies, with the wire strings as values."""

from __future__ import annotations

from enum import StrEnum


class PaymentCollectionStatus(StrEnum):
    NOT_PAID = "not_paid"
    AWAITING = "awaiting"
    AUTHORIZED = "authorized"
    PARTIALLY_AUTHORIZED = "partially_authorized"
    CANCELED = "canceled"
    FAILED = "failed"
    PARTIALLY_CAPTURED = "partially_captured"
    COMPLETED = "completed"


class PaymentSessionStatus(StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    PENDING = "pending"
    REQUIRES_MORE = "requires_more"
    ERROR = "error"
    CANCELED = "canceled"
    PENDING_AUTHORIZATION = "pending_authorization"


class PaymentAction(StrEnum):
    """What a provider's webhook event asks the module to do."""

    AUTHORIZED = "authorized"
    SUCCESSFUL = "captured"
    FAILED = "failed"
    PENDING = "pending"
    REQUIRES_MORE = "requires_more"
    CANCELED = "canceled"
    NOT_SUPPORTED = "not_supported"
    PENDING_AUTHORIZATION = "pending_authorization"
