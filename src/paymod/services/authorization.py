"""Authorization: a session claimed under the collection's lock, authorized by its provider, and
its payment written once (the claim and the final write each check that the payment still fits)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain import rules
from paymod.domain.errors import (
    ConflictError,
    DuplicateError,
    InvalidDataError,
    NotAllowedError,
    PaymodError,
    RetryableProviderError,
)
from paymod.domain.ids import PAYMENT, new_id
from paymod.domain.money import round_amount
from paymod.domain.rules import PaymentFacts
from paymod.domain.statuses import PaymentSessionStatus
from paymod.durable.engine import fault_point
from paymod.observability.metrics import measured_flow
from paymod.persistence import entities as e
from paymod.persistence import tables as t
from paymod.persistence.ledger import CollectionFacts, NewRow, SessionWrite
from paymod.persistence.repository import Row, utc_now
from paymod.providers.base import (
    ProviderInput,
)
from paymod.services.core import ModuleCore
from paymod.services.dto import (
    PaymentDTO,
)
from paymod.services.inputs import (
    provider_context,
)

#: How long an authorization may claim its session at most (its process dying frees it at once).
AUTHORIZATION_CLAIM = timedelta(minutes=5)
_AUTHORIZED = {PaymentSessionStatus.AUTHORIZED, PaymentSessionStatus.CAPTURED}


class Refused(Exception):
    """The collection refuses a payment the provider authorized: it is canceled there, `error` raised."""

    def __init__(self, error: PaymodError) -> None:
        super().__init__(error.message)
        self.error = error


class AuthorizationMixin(ModuleCore):
    """`authorize_payment_session` and its claim, release and record."""

    @measured_flow("authorize", outcome=lambda payment: "pending" if payment is None else None)
    async def authorize_payment_session(
        self, id: str, context: Mapping[str, Any] | None = None
    ) -> PaymentDTO | None:
        """Authorizes a session with its provider and creates its payment.

        Idempotent: an authorized session returns its existing payment without a provider call.
        Returns None when the provider answers `pending_authorization`; raises `NotAllowedError` for
        any other non-authorized status, after recording it on the session.

        The payment comes with its captures, refunds and session; when the collection has no other
        session or payment, with the collection too (`payment_collection`, its sessions and payments).

        Under the collection's lock, first the session is claimed (the collection must be able to take
        its payment: the live payments, the authorizations in flight and this one stay within its
        amount), then the provider is asked, then the payment is written, checked again. A session
        deleted or replaced meanwhile, or a payment that no longer fits, is canceled at the provider.
        """
        if not isinstance(id, str) or not id:
            raise InvalidDataError("PaymentSession id must be a non-empty string")
        claimed = await self._claim_authorization(id)
        if isinstance(claimed, str):
            return await self._retrieve(
                e.PAYMENT, PaymentDTO, claimed, {"relations": ["captures", "refunds", "payment_session"]}
            )
        session = claimed
        provider = self.provider(session["provider_id"])
        try:
            result = await provider.authorize_payment(
                ProviderInput(data=dict(session["data"]), context=provider_context(context, id))
            )
        except RetryableProviderError:
            raise  # the provider may have authorized: the claim stays until it lapses
        except BaseException:
            await self._quietly(self._release_authorization(id))
            raise
        fault_point("after-provider-authorize")
        status = PaymentSessionStatus(result.status)
        data = dict(result.data if result.data is not None else session["data"])
        if status not in _AUTHORIZED:
            collection_id = session["payment_collection_id"]
            async with self.database.write() as conn:
                await self.ledger.lock_collection(conn, collection_id)
                await self._repo(e.PAYMENT_SESSION).update_where(
                    conn,
                    (t.payment_session.c.id == id) & t.payment_session.c.authorized_at.is_(None),
                    {"status": status.value, "data": data, "authorizing_until": None, "authorizing_by": None},
                )
                self._emit(conn, "payment-session.updated", id, collection_id)
                await self._recompute_collection(conn, collection_id, locked=True)
            if status == PaymentSessionStatus.PENDING_AUTHORIZATION:
                return None
            raise NotAllowedError(f"Session: {id} was not authorized with the provider.")
        try:
            recorded = await self._record_authorization(
                session, data, captured=status == PaymentSessionStatus.CAPTURED, expires_at=result.expires_at
            )
        except Refused as refused:
            await self._quietly(
                provider.cancel_payment(
                    ProviderInput(data=data, context=provider_context(context, f"{id}:cancel"))
                )
            )
            raise refused.error from None
        except PaymodError:
            raise
        except Exception:
            await self._quietly(
                provider.cancel_payment(
                    ProviderInput(data=data, context=provider_context(context, f"{id}:cancel"))
                )
            )
            raise
        if isinstance(recorded, PaymentDTO):
            return recorded
        return await self._retrieve(
            e.PAYMENT, PaymentDTO, recorded, {"relations": ["captures", "refunds", "payment_session"]}
        )

    async def _claim_authorization(self, session_id: str) -> Row | str:
        """Claims the session for an authorization (under the collection's lock); the session row, or
        the id of its payment when it has one already."""
        claim = SessionWrite(
            "claim", session_id, {"until": utc_now() + AUTHORIZATION_CLAIM, "by": self.process_id}
        )
        async with self.database.write() as conn:
            facts = await self.ledger.lock_collection_of_session(conn, session_id, write=claim)
            current = facts.session(session_id)
            assert current is not None  # the ledger found it
            live = facts.live_payment_of(session_id)
            if live is not None:
                return live.id  # the claim was not written: the session has a payment
            self._check_payment_fits(facts, current)
            claimed = await self.ledger.written_session(conn, claim)
            assert claimed is not None  # a claim of a session that is gone raises
            return claimed

    @staticmethod
    def _check_payment_fits(facts: CollectionFacts, session: rules.SessionFacts) -> None:
        rules.check_payment_fits(
            collection_id=facts.id,
            collection_amount=facts.amount,
            currency_code=facts.currency_code,
            payments=facts.payments,
            in_flight=[s.amount for s in facts.sessions if s.authorizing and s.id != session.id],
            amount=session.amount,
        )

    async def _release_authorization(self, session_id: str) -> None:
        table = t.payment_session
        async with self.database.write() as conn:
            await conn.execute(
                update(table)
                .where(table.c.id == session_id, table.c.authorizing_by == self.process_id)
                .values(authorizing_until=None, authorizing_by=None)
            )

    async def _record_authorization(
        self, session: Row, data: dict[str, Any], *, captured: bool, expires_at: datetime | None = None
    ) -> PaymentDTO | str:
        """Marks the session authorized and writes its payment, once, under the collection's lock.

        Returns the new payment (built from the rows written) or, when the session had a payment
        already (a concurrent authorization won), that payment's id. Raises `Refused` when the
        session was deleted or replaced meanwhile, or its payment no longer fits the collection."""
        session_id = session["id"]
        collection_id = session["payment_collection_id"]
        try:
            now = utc_now()
            authorization = SessionWrite("authorize", session_id, {"data": data, "now": now})
            async with self.database.write() as conn:
                facts = await self.ledger.lock_collection(conn, collection_id, write=authorization)
                live = facts.live_payment_of(session_id)
                if live is not None:
                    return live.id
                current = facts.session(session_id)
                if current is None:
                    raise Refused(
                        ConflictError(
                            f"Payment session {session_id} was deleted or replaced while it was being "
                            "authorized; the authorization was canceled."
                        )
                    )
                try:
                    self._check_payment_fits(facts, current)
                except NotAllowedError as exc:
                    raise Refused(exc) from None
                locked = await self.ledger.written_session(conn, authorization)
                if locked is None:
                    return await self._live_payment_id(conn, session_id)
                # A payment holds what the provider can move: whole minor units.
                amount = round_amount(locked["amount"], locked["currency_code"])
                payment_values = {
                    "id": new_id(PAYMENT),
                    "amount": amount,
                    "currency_code": locked["currency_code"],
                    "provider_id": locked["provider_id"],
                    "payment_collection_id": collection_id,
                    "payment_session_id": session_id,
                    "data": data,
                    "captured_at": now if captured else None,
                    "authorization_expires_at": None if captured else expires_at,
                    "status": rules.payment_status(
                        canceled=False,
                        fully_captured=captured,
                        captured=amount if captured else Decimal(0),
                        refunded=Decimal(0),
                    ),
                }
                # The payment is written by the statement that stores the collection's totals, unless
                # a capture must refer to it first.
                new_payment = None if captured else NewRow(e.PAYMENT, payment_values)
                payment: Row = payment_values
                if captured:
                    payment = (await self._repo(e.PAYMENT).insert(conn, [payment_values]))[0]
                self._emit(conn, "payment-session.updated", session_id, collection_id)
                self._emit(conn, "payment.created", payment["id"], collection_id)
                captures: list[Row] = []
                if captured:
                    # The provider captured on authorization: book it without asking it to capture again.
                    captures = await self._repo(e.CAPTURE).insert(
                        conn, [{"payment_id": payment["id"], "amount": payment["amount"]}]
                    )
                    self._emit(conn, "capture.created", captures[0]["id"], collection_id)
                    self._emit(conn, "captured", payment["id"], collection_id)
                authorized = replace(current, status=PaymentSessionStatus.AUTHORIZED.value, authorizing=False)
                booked = PaymentFacts(
                    currency_code=payment["currency_code"],
                    canceled=False,
                    captures=[amount] if captured else [],
                    refunds=[],
                    id=payment["id"],
                    session_id=session_id,
                    amount=amount,
                )
                collection = await self._recompute_collection(
                    conn,
                    collection_id,
                    facts=facts.changed(
                        sessions=[authorized if s.id == session_id else s for s in facts.sessions],
                        payments=[*facts.payments, booked],
                    ),
                    new_row=new_payment,
                )
                if new_payment is not None:
                    assert new_payment.row is not None
                    payment = new_payment.row
            recorded: dict[str, Any] = {
                **payment,
                "captures": captures,
                "refunds": [],
                "payment_session": locked,
            }
            if len(facts.sessions) == 1 and not facts.payments:
                # The transaction wrote all there is of the collection: its row, its one session and
                # this payment. It comes along, so the checkout need not read it again.
                recorded["payment_collection"] = {
                    **collection,
                    "payment_sessions": [locked],
                    "payments": [{**payment, "captures": captures, "refunds": []}],
                }
            return PaymentDTO.model_validate(recorded)
        except DuplicateError:
            # A concurrent authorization of the same session won the unique index: return its payment.
            async with self.database.single() as conn:
                return await self._live_payment_id(conn, session_id)

    async def _live_payment_id(self, conn: AsyncConnection, session_id: str) -> str:
        found = await self.ledger.session_and_payment(conn, session_id)
        if found is None:
            raise self._repo(e.PAYMENT_SESSION).not_found(session_id)
        if found[1] is None:
            raise ConflictError(f"Payment session {session_id} changed while it was being authorized.")
        return found[1]
