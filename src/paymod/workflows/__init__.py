"""Multi-step flows over the public `PaymentModule` API, named after Medusa's workflows.

They are plain async functions for now; a later step makes them durable (journaled, resumable).
"""

from paymod.workflows.payment import process_payment
from paymod.workflows.payment_collection import (
    Authorization,
    authorize_payment_collection,
    create_payment_sessions,
    delete_payment_collection,
    mark_payment_collection_as_paid,
    update_payment_collection,
)

__all__ = [
    "Authorization",
    "authorize_payment_collection",
    "create_payment_sessions",
    "delete_payment_collection",
    "mark_payment_collection_as_paid",
    "process_payment",
    "update_payment_collection",
]
