"""The module's entities over their tables, and the relations between them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table

from paymod.domain import ids
from paymod.persistence import tables as t
from paymod.persistence.repository import Entity

PAYMENT_COLLECTION = Entity("PaymentCollection", t.payment_collection, ids.PAYMENT_COLLECTION)
PAYMENT_SESSION = Entity("PaymentSession", t.payment_session, ids.PAYMENT_SESSION)
PAYMENT = Entity("Payment", t.payment, ids.PAYMENT)
CAPTURE = Entity("Capture", t.capture, ids.CAPTURE)
REFUND = Entity("Refund", t.refund, ids.REFUND)
REFUND_REASON = Entity(
    "RefundReason", t.refund_reason, ids.REFUND_REASON, searchable=("label", "code", "description")
)
PAYMENT_PROVIDER = Entity("PaymentProvider", t.payment_provider, None)
ACCOUNT_HOLDER = Entity("AccountHolder", t.account_holder, ids.ACCOUNT_HOLDER)
DISPUTE = Entity("Dispute", t.dispute, ids.DISPUTE)

ENTITIES = {
    e.name: e
    for e in (
        PAYMENT_COLLECTION,
        PAYMENT_SESSION,
        PAYMENT,
        CAPTURE,
        REFUND,
        REFUND_REASON,
        PAYMENT_PROVIDER,
        ACCOUNT_HOLDER,
        DISPUTE,
    )
}


@dataclass(frozen=True, slots=True)
class Relation:
    """`target` rows whose `remote` column equals the parent's `local` column (through a pivot if given)."""

    target: str
    local: str
    remote: str
    many: bool
    through: Table | None = None
    through_target: str | None = None


RELATIONS: dict[str, dict[str, Relation]] = {
    "PaymentCollection": {
        "payment_sessions": Relation("PaymentSession", "id", "payment_collection_id", True),
        "payments": Relation("Payment", "id", "payment_collection_id", True),
        "payment_providers": Relation(
            "PaymentProvider",
            "id",
            "payment_collection_id",
            True,
            through=t.payment_collection_payment_providers,
            through_target="payment_provider_id",
        ),
    },
    "PaymentSession": {
        "payment": Relation("Payment", "id", "payment_session_id", False),
        "payment_collection": Relation("PaymentCollection", "payment_collection_id", "id", False),
    },
    "Payment": {
        "captures": Relation("Capture", "id", "payment_id", True),
        "refunds": Relation("Refund", "id", "payment_id", True),
        "disputes": Relation("Dispute", "id", "payment_id", True),
        "payment_session": Relation("PaymentSession", "payment_session_id", "id", False),
        "payment_collection": Relation("PaymentCollection", "payment_collection_id", "id", False),
    },
    "Capture": {"payment": Relation("Payment", "payment_id", "id", False)},
    "Refund": {
        "payment": Relation("Payment", "payment_id", "id", False),
        "refund_reason": Relation("RefundReason", "refund_reason_id", "id", False),
    },
    "RefundReason": {"refunds": Relation("Refund", "id", "refund_reason_id", True)},
    "PaymentProvider": {},
    "AccountHolder": {},
    "Dispute": {"payment": Relation("Payment", "payment_id", "id", False)},
}
