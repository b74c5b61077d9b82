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


class PaymentStatus(StrEnum):
    """Where a payment stands (`payment.status`, paymod's own: Medusa's payment has no status). It is
    derived from the payment's facts by `rules.payment_status` and stored so it can be filtered on."""

    AUTHORIZED = "authorized"
    PARTIALLY_CAPTURED = "partially_captured"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CANCELED = "canceled"


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
    #: The provider refunded money paymod did not ask for (its dashboard, its API): booked once.
    REFUNDED = "refunded"
    #: A refund the provider accepted has failed or was canceled since: the money is captured again.
    REFUND_FAILED = "refund_failed"
    #: The customer disputed a charge (a chargeback), or a dispute changed: recorded as a `dispute`.
    DISPUTED = "disputed"


class RunStatus(StrEnum):
    """A durable run (`workflow_run.status`)."""

    RUNNING = "running"
    SUSPENDED = "suspended"  # the outcome of a provider call is unknown: resumable, nothing undone
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class StepStatus(StrEnum):
    """A step's entry in a run's journal."""

    STARTED = "started"  # journaled before a provider call
    DONE = "done"
    COMPENSATED = "compensated"
    COMPENSATION_FAILED = "compensation_failed"


class WebhookEventStatus(StrEnum):
    """An inbound webhook in the inbox (`webhook_event.status`)."""

    PENDING = "pending"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


class OutboxStatus(StrEnum):
    """An event in the outbox (`event_outbox.status`)."""

    PENDING = "pending"
    DISPATCHED = "dispatched"
    FAILED = "failed"


class DeliveryStatus(StrEnum):
    """A delivery of an event to a signed HTTP endpoint (`webhook_delivery.status`)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class DisputeStatus(StrEnum):
    """Where a dispute (a chargeback) stands, in Stripe's words (`dispute.status`). The `warning_*`
    statuses are inquiries that may still become disputes."""

    WARNING_NEEDS_RESPONSE = "warning_needs_response"
    WARNING_UNDER_REVIEW = "warning_under_review"
    WARNING_CLOSED = "warning_closed"
    NEEDS_RESPONSE = "needs_response"
    UNDER_REVIEW = "under_review"
    WON = "won"
    LOST = "lost"

    @property
    def is_final(self) -> bool:
        """Closed: nothing about it changes any more (won, lost, or an inquiry closed)."""
        return self in (DisputeStatus.WON, DisputeStatus.LOST, DisputeStatus.WARNING_CLOSED)
