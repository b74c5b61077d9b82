"""Payment-collection flows (Medusa's `create-payment-sessions`, `mark-payment-collection-as-paid`,
checkout authorization, and the collection's update and delete)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paymod.domain.errors import (
    InvalidDataError,
    NotAllowedError,
    NotFoundError,
    PaymentAuthorizationError,
    ProviderError,
    RetryableProviderError,
)
from paymod.domain.statuses import PaymentCollectionStatus, PaymentSessionStatus
from paymod.providers.registry import SYSTEM_PROVIDER_ID
from paymod.services.dto import PaymentCollectionDTO, PaymentDTO, PaymentSessionDTO
from paymod.services.payment_module import PaymentModule

log = logging.getLogger("paymod.workflows")

COLLECTION_RELATIONS = ["payment_sessions", "payments", "payments.captures", "payments.refunds"]
#: The relations a collection the module's transaction wrote whole comes with.
_WRITTEN_WHOLE = set(COLLECTION_RELATIONS)

# Sessions a checkout can still complete (Medusa's validate-cart-payments).
_PROCESSABLE = {
    PaymentSessionStatus.PENDING,
    PaymentSessionStatus.REQUIRES_MORE,
    PaymentSessionStatus.AUTHORIZED,
    PaymentSessionStatus.CAPTURED,
    PaymentSessionStatus.PENDING_AUTHORIZATION,
}
# A collection with sessions and nothing authorized is `awaiting`: still not paid.
_UNPAID = (PaymentCollectionStatus.NOT_PAID, PaymentCollectionStatus.AWAITING)


async def _collection(module: PaymentModule, id: str) -> PaymentCollectionDTO:
    return await module.retrieve_payment_collection(id, {"relations": COLLECTION_RELATIONS})


async def create_payment_sessions(
    module: PaymentModule,
    payment_collection_id: str,
    *,
    provider_id: str,
    data: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> PaymentSessionDTO:
    """Creates a session for the collection's amount that replaces the earlier ones (no split
    payments), in one transaction under the collection's lock: however many requests race, the
    collection ends with one session; the losers get 409 `conflict`."""
    return await module.create_payment_session(
        payment_collection_id,
        {"provider_id": provider_id, "data": dict(data or {}), "context": dict(context) if context else None},
        replace=True,
    )


@dataclass(frozen=True)
class Authorization:
    """A checkout's outcome: the payment, or the session when the customer must act first."""

    payment_collection: PaymentCollectionDTO
    payment: PaymentDTO | None = None
    payment_session: PaymentSessionDTO | None = None

    @property
    def action_required(self) -> bool:
        return (
            self.payment is None
            and self.payment_session is not None
            and self.payment_session.status == PaymentSessionStatus.REQUIRES_MORE
        )


def _decline(session: PaymentSessionDTO) -> PaymentAuthorizationError:
    decline_code = session.data.get("decline_code")
    return PaymentAuthorizationError(
        "Payment authorization failed",
        code=decline_code if isinstance(decline_code, str) and decline_code else None,
    )


async def _authorize_session(
    module: PaymentModule, session_id: str, context: Mapping[str, Any] | None
) -> tuple[PaymentDTO | None, PaymentSessionDTO]:
    """Medusa's authorize-payment-session step: the payment, or the session saying why there is none."""
    refused: NotAllowedError | None = None
    try:
        payment = await module.authorize_payment_session(session_id, context)
    except RetryableProviderError:
        raise
    except ProviderError as exc:
        raise PaymentAuthorizationError(exc.message) from exc
    except NotAllowedError as exc:
        payment, refused = None, exc
    # An authorization returns its payment with the session; otherwise the session says why not.
    session = (
        payment.payment_session
        if payment is not None and payment.payment_session is not None
        else await module.retrieve_payment_session(session_id)
    )
    if payment is not None or session.status in (
        PaymentSessionStatus.REQUIRES_MORE,
        PaymentSessionStatus.PENDING_AUTHORIZATION,
    ):
        return payment, session
    if session.status in (PaymentSessionStatus.ERROR, PaymentSessionStatus.CANCELED):
        raise _decline(session) from refused
    if refused is not None:
        raise refused
    raise PaymentAuthorizationError("Payment authorization failed")


async def authorize_payment_collection(
    module: PaymentModule,
    payment_collection_id: str,
    *,
    session_id: str | None = None,
    context: Mapping[str, Any] | None = None,
    relations: Sequence[str] = COLLECTION_RELATIONS,
) -> Authorization:
    """The checkout's completion: authorizes the collection's session (the given one, or the latest).

    The collection is read again afterwards with `relations` (a caller that shows less of it reads
    less)."""
    sessions = await module.payment_session_statuses(payment_collection_id)
    if session_id is not None:
        if all(id != session_id for id, _ in sessions):
            raise NotFoundError(
                f"PaymentSession with id: {session_id} was not found in payment collection "
                f"{payment_collection_id}"
            )
    else:
        processable = [id for id, status in sessions if status in _PROCESSABLE]
        if not processable:
            raise InvalidDataError("Payment sessions are required to complete the payment collection")
        session_id = processable[-1]
    payment, session = await _authorize_session(module, session_id, context)
    written = payment.payment_collection if payment is not None else None
    collection = (
        written
        if written is not None and set(relations) <= _WRITTEN_WHOLE
        else await module.retrieve_payment_collection(payment_collection_id, {"relations": list(relations)})
    )
    if payment is not None:
        return Authorization(collection, payment=payment)
    return Authorization(collection, payment_session=session)


async def mark_payment_collection_as_paid(
    module: PaymentModule,
    payment_collection_id: str,
    *,
    provider_id: str | None = None,
    captured_by: str | None = None,
) -> PaymentCollectionDTO:
    """Records a payment made outside paymod: session, authorization and capture of the whole amount.

    Concurrent calls book the amount once: the session replaces the others under the collection's
    lock and the authorization checks that the collection can still take a payment."""
    collection = await module.retrieve_payment_collection(payment_collection_id)
    if collection.status not in _UNPAID:
        raise NotAllowedError("Can only mark 'not_paid' payment collection as paid")
    if collection.amount <= 0:
        raise InvalidDataError("Capture amount must be greater than 0.")
    session = await create_payment_sessions(
        module, payment_collection_id, provider_id=provider_id or SYSTEM_PROVIDER_ID
    )
    payment, session = await _authorize_session(module, session.id, None)
    if payment is None:
        raise PaymentAuthorizationError("Payment authorization failed")
    try:
        # What remains of the payment: all of it, in the currency's precision.
        await module.capture_payment({"payment_id": payment.id, "captured_by": captured_by})
    except BaseException:
        try:
            await module.cancel_payment(payment.id)
        except Exception:
            log.warning("could not cancel payment %s while compensating", payment.id, exc_info=True)
        raise
    return await _collection(module, payment_collection_id)


async def update_payment_collection(
    module: PaymentModule, payment_collection_id: str, data: Mapping[str, Any]
) -> PaymentCollectionDTO:
    """Updates metadata at any time; the amount while it still covers the collection's payments (the
    currency only while it has none). Changing the amount drops the sessions that have no payment,
    as Medusa does when a cart's total changes: they were initiated for the old amount."""
    return await module.update_payment_collections(payment_collection_id, dict(data))


async def delete_payment_collection(module: PaymentModule, payment_collection_id: str) -> None:
    """Deletes a collection nobody paid (its sessions are dropped with their providers too)."""
    collection = await module.retrieve_payment_collection(payment_collection_id)
    if collection.status not in _UNPAID:
        raise NotAllowedError("Can only delete payment collections where status is not_paid")
    await module.soft_delete_payment_collections(payment_collection_id)
