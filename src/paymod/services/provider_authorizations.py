"""Authorizations the provider voided (Stripe: `payment_intent.canceled` on an authorized intent,
voided in its dashboard or through its API): the payment is canceled in paymod, without calling the
provider back.

It runs under the payment's lock, like a capture's booking (`payment_steps`), so a void racing an
admin capture on the same payment has one winner: the void first, and the capture is refused as for
any canceled payment; the capture first, and the void finds nothing left to cancel (a full capture)
or closes the payment for the rest (a partial one), as a partial capture that released the rest does.

A capture booked while the void's report is on its way makes the void find nothing to cancel; the
provider then refuses the capture, which is unbooked. So a capture the provider refuses asks it
what it holds, outside any transaction, and books the void here if it says canceled: whichever of
the two books it first wins, the other finds the payment canceled.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain import rules
from paymod.domain.errors import ProviderError
from paymod.domain.money import round_amount
from paymod.domain.statuses import PaymentSessionStatus
from paymod.persistence import entities as e
from paymod.persistence import outbox
from paymod.persistence import tables as t
from paymod.persistence.ledger import LockedPayment
from paymod.persistence.repository import Row, utc_now
from paymod.providers.base import ProviderInput
from paymod.services.core import ModuleCore
from paymod.services.dto import PaymentDTO
from paymod.services.inputs import provider_context

log = logging.getLogger("paymod.payments")


class ProviderAuthorizationsMixin(ModuleCore):
    """Books what the provider did to an authorization without asking paymod."""

    async def record_provider_cancel(self, payment_id: str) -> PaymentDTO | None:
        """Cancels a payment whose authorization the provider voided; returns it, or None when
        there was nothing to cancel (canceled already, or captured in full: the provider cannot
        void a captured charge, and a capture booked first wins).

        Nothing captured: the payment is canceled, as an admin cancel leaves it. Part captured: the
        payment is closed, `released_amount` = what was not captured, and keeps its captures.
        """
        async with self.database.write() as conn:
            locked = await self.ledger.lock_payment(conn, payment_id)
            row = await self._book_void(
                conn, locked, "payment.canceled", {"id": payment_id, "at_provider": True}, {}
            )
        return None if row is None else PaymentDTO.model_validate(row)

    async def _void_behind_refused_capture(self, payment_id: str, refusal: ProviderError) -> ProviderError:
        """After the provider refused a capture (and it was unbooked): asks the provider what it holds
        and, if it voided the authorization, books the void as its report would. Returns the error for
        the capture's caller: the refusal, saying so when the authorization was voided."""
        async with self.database.read() as conn:
            found = (
                await conn.execute(
                    select(t.payment.c.provider_id, t.payment.c.data).where(
                        t.payment.c.id == payment_id,
                        t.payment.c.deleted_at.is_(None),
                        # Canceled already may be the void's report, booked since the refusal: asked too.
                        t.payment.c.captured_at.is_(None),
                    )
                )
            ).first()
        if found is None:
            return refusal
        try:
            answer = await self.provider(found.provider_id).get_payment_status(
                ProviderInput(
                    data=dict(found.data or {}), context=provider_context(None, f"{payment_id}:status")
                )
            )
        except NotImplementedError:
            return refusal  # the provider cannot say: its void's report is all paymod will know
        except Exception as exc:  # the refusal stands; the provider's report of a void still books it
            log.warning("capture of payment %s refused; asking the provider failed: %s", payment_id, exc)
            return refusal
        if answer.status != PaymentSessionStatus.CANCELED:
            return refusal
        if await self.record_provider_cancel(payment_id) is not None:
            log.info("capture of payment %s refused: voided at the provider, canceled", payment_id)
        message = (
            f"{refusal.message} The authorization was voided at the provider: "
            f"the payment: {payment_id} has been canceled."
        )
        return type(refusal)(message, code=refusal.code)

    async def _book_void(
        self,
        conn: AsyncConnection,
        locked: LockedPayment,
        event: str,
        event_data: dict[str, Any],
        values: dict[str, Any],
    ) -> Row | None:
        """Books an authorization that ended without paymod asking (voided or lapsed at the provider),
        under the payment's lock: canceled when nothing was captured, else closed with `released_amount`
        = what was not captured; `event` is emitted. None when nothing was left to end."""
        payment = locked.row
        payment_id = payment["id"]
        currency = payment["currency_code"]
        captured = rules.total(locked.captures)
        remaining = round_amount(payment["amount"], currency) - captured
        if payment["canceled_at"] is not None:
            return None
        if payment["captured_at"] is not None or remaining <= 0:
            log.warning("authorization of payment %s ended, captured in full already: ignored", payment_id)
            return None
        values = {**values, "canceled_at": utc_now()}
        if captured > 0:
            values["released_amount"] = remaining
        row = await self._repo(e.PAYMENT).update(conn, payment_id, values)
        await self.ledger.refresh_status(conn, payment_id)
        collection_id = payment["payment_collection_id"]
        outbox.emit(conn, event, event_data, collection_id)
        await self._recompute_collection(conn, collection_id)
        return row
