"""Payment-collection flows (Medusa's `create-payment-sessions`, `mark-payment-collection-as-paid`,
checkout authorization, and the collection's update and delete)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
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

# Sessions a checkout can still complete (Medusa's validate-cart-payments).
_PROCESSABLE = {
    PaymentSessionStatus.PENDING,
    PaymentSessionStatus.REQUIRES_MORE,
    PaymentSessionStatus.AUTHORIZED,
    PaymentSessionStatus.CAPTURED,
    PaymentSessionStatus.PENDING_AUTHORIZATION,
}
_MONEY_FIELDS = ("amount", "currency_code")


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
    """Creates a session for the collection's amount and deletes the earlier ones (no split payments)."""
    collection = await _collection(module, payment_collection_id)
    if any(p.canceled_at is None for p in collection.payments or []):
        raise NotAllowedError(
            f"Payment collection {payment_collection_id} has an authorized payment; "
            "cancel it before creating a new payment session."
        )
    session = await module.create_payment_session(
        payment_collection_id,
        {
            "provider_id": provider_id,
            "amount": collection.amount,
            "currency_code": collection.currency_code,
            "data": dict(data or {}),
            "context": dict(context) if context else None,
        },
    )
    try:
        for earlier in collection.payment_sessions or []:
            await module.delete_payment_session(earlier.id)
    except BaseException:
        # Compensation: the collection keeps its earlier sessions rather than ending with two.
        try:
            await module.delete_payment_session(session.id)
        except Exception:
            log.warning("could not delete payment session %s while compensating", session.id, exc_info=True)
        raise
    return session


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
) -> Authorization:
    """The checkout's completion: authorizes the collection's session (the given one, or the latest)."""
    collection = await module.retrieve_payment_collection(
        payment_collection_id, {"relations": ["payment_sessions"]}
    )
    sessions = collection.payment_sessions or []
    if session_id is not None:
        session = next((s for s in sessions if s.id == session_id), None)
        if session is None:
            raise NotFoundError(
                f"PaymentSession with id: {session_id} was not found in payment collection "
                f"{payment_collection_id}"
            )
    else:
        processable = [s for s in sessions if s.status in _PROCESSABLE]
        if not processable:
            raise InvalidDataError("Payment sessions are required to complete the payment collection")
        session = processable[-1]
    payment, session = await _authorize_session(module, session.id, context)
    collection = await _collection(module, payment_collection_id)
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
    """Records a payment made outside paymod: session, authorization and capture of the whole amount."""
    collection = await module.retrieve_payment_collection(payment_collection_id)
    if collection.status != PaymentCollectionStatus.NOT_PAID:
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
        await module.capture_payment(
            {"payment_id": payment.id, "amount": collection.amount, "captured_by": captured_by}
        )
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
    """Updates metadata at any time; amount and currency only before anything was authorized.

    Changing the amount deletes the collection's sessions, as Medusa does when a cart's total
    changes: they were initiated for the old amount.
    """
    collection = await module.retrieve_payment_collection(
        payment_collection_id, {"relations": ["payment_sessions"]}
    )
    values = dict(data)
    changes_money = any(
        field in values and values[field] is not None and values[field] != getattr(collection, field)
        for field in _MONEY_FIELDS
    )
    if changes_money:
        if collection.status not in (PaymentCollectionStatus.NOT_PAID, PaymentCollectionStatus.AWAITING):
            raise NotAllowedError(
                f"Cannot change the amount or currency of a payment collection that is {collection.status}"
            )
        for session in collection.payment_sessions or []:
            await module.delete_payment_session(session.id)
        if collection.payment_sessions:
            values["status"] = PaymentCollectionStatus.NOT_PAID.value
    return await module.update_payment_collections(payment_collection_id, values)


async def delete_payment_collection(module: PaymentModule, payment_collection_id: str) -> None:
    """Deletes a collection nobody paid (its sessions are dropped with their providers first)."""
    collection = await module.retrieve_payment_collection(
        payment_collection_id, {"relations": ["payment_sessions"]}
    )
    if collection.status != PaymentCollectionStatus.NOT_PAID:
        raise NotAllowedError("Can only delete payment collections where status is not_paid")
    for session in collection.payment_sessions or []:
        await module.delete_payment_session(session.id)
    await module.soft_delete_payment_collections(payment_collection_id)
