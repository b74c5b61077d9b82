"""The money flows' steps: capture, refund and cancel, each booked under the payment's lock, then
asked of the provider, then finished (events, the collection's status) in the flow's last
transaction. The flows that run them are in `payments`."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain import rules
from paymod.domain.disputes import check_no_open_dispute
from paymod.domain.expiry import check_capturable
from paymod.domain.money import round_amount
from paymod.durable.engine import StepContext
from paymod.persistence import entities as e
from paymod.persistence import tables as t
from paymod.persistence.repository import Row, utc_now
from paymod.providers.base import (
    CapturePaymentInput,
    CapturePaymentOutput,
    ProviderInput,
    RefundPaymentInput,
    RefundPaymentOutput,
)
from paymod.services.core import ModuleCore
from paymod.services.flow_values import (
    AlreadyCanceled,
    CancelBooked,
    CancelBooking,
    CancelRequest,
    CaptureBooked,
    CaptureBooking,
    CaptureRequest,
    NothingToCapture,
    ProviderAnswered,
    ProviderCaptured,
    RefundBooked,
    RefundRequest,
)
from paymod.services.inputs import provider_context


def _conn(ctx: StepContext) -> AsyncConnection:
    assert ctx.conn is not None, "a local step runs in a transaction"
    return ctx.conn


class PaymentStepsMixin(ModuleCore):
    """The steps of the capture, refund and cancel flows (book, ask the provider, finish)."""

    # -- capture ------------------------------------------------------------------------
    async def _book_capture(self, ctx: StepContext) -> CaptureBooking:
        conn, request = _conn(ctx), ctx.input
        assert isinstance(request, CaptureRequest)
        payment_id = request.payment_id
        locked = await self.ledger.lock_payment(conn, payment_id)
        payment, captured = locked.row, locked.captures
        ctx.scratch["payment"] = payment
        if not request.is_captured:
            # Checked again under the lock: the expiry job may have marked it expired meanwhile.
            expires_at, expired_at = payment["authorization_expires_at"], payment["expired_at"]
            check_capturable(payment_id, expires_at, expired_at, utc_now())
        requested = request.amount
        closes = request.remaining_capturable is not None and request.remaining_capturable == 0
        if request.captured_total is not None:
            # The provider reports what it moved (whole minor units), and may report more than was
            # authorized to us: never book past the amount.
            currency = payment["currency_code"]
            reported = round_amount(request.captured_total, currency)
            requested = min(reported, round_amount(payment["amount"], currency)) - rules.total(captured)
            if requested <= 0:
                return self._nothing_to_capture(payment, captured, closes)
        plan = rules.plan_capture(
            payment_id=payment_id,
            payment_amount=payment["amount"],
            currency_code=payment["currency_code"],
            captured=captured,
            requested=requested,
            canceled=payment["canceled_at"] is not None,
            already_fully_captured=payment["captured_at"] is not None,
        )
        if plan is None:
            return self._nothing_to_capture(payment, captured, closes)
        capture_id = await self.ledger.book_movement(
            conn,
            t.capture,
            {
                "payment_id": payment_id,
                "amount": plan.amount,
                "created_by": request.captured_by,
            },
            status=locked.status_with(captured=plan.amount),
        )
        return CaptureBooked(
            capture_id=capture_id,
            amount=plan.amount,
            captured_after=rules.total(captured) + plan.amount,
            payment_amount=round_amount(payment["amount"], payment["currency_code"]),
            fully_captured=plan.fully_captured,
            provider_id=payment["provider_id"],
            currency_code=payment["currency_code"],
            data=payment["data"],
            payment_collection_id=payment["payment_collection_id"],
            close=closes,
        )

    @staticmethod
    def _nothing_to_capture(payment: Row, captured: Sequence[Decimal], closes: bool) -> NothingToCapture:
        """Nothing to book; a provider that closed the authorization still closes the payment."""
        if not closes or payment["captured_at"] is not None or payment["canceled_at"] is not None:
            return NothingToCapture()
        return NothingToCapture(
            close=True,
            captured_after=rules.total(captured),
            payment_amount=round_amount(payment["amount"], payment["currency_code"]),
            payment_collection_id=payment["payment_collection_id"],
        )

    async def _unbook_capture(self, ctx: StepContext, booked: CaptureBooking | None) -> None:
        if isinstance(booked, CaptureBooked):
            async with self.database.write() as conn:
                await self._repo(e.CAPTURE).delete(conn, [booked.capture_id])
                await self.ledger.refresh_status(conn, ctx.input.payment_id, locked=False)

    async def _provider_capture(self, ctx: StepContext) -> ProviderCaptured:
        booked = ctx.outputs["book-capture"]
        if not isinstance(booked, CaptureBooked) or ctx.input.is_captured:
            return ProviderCaptured()
        result = await self.provider(booked.provider_id).capture_payment(
            CapturePaymentInput(
                data=dict(booked.data or {}),
                context=provider_context(None, booked.capture_id, resumed=ctx.resumed),
                amount=booked.amount,
                currency_code=booked.currency_code,
            )
        )
        remaining = result.remaining_capturable if isinstance(result, CapturePaymentOutput) else None
        return ProviderCaptured(data=result.data, remaining_capturable=remaining)

    async def _finish_capture(self, ctx: StepContext) -> str:
        conn, booked = _conn(ctx), ctx.outputs["book-capture"]
        payment_id: str = ctx.input.payment_id
        answer: ProviderCaptured = ctx.outputs["provider-capture"]
        remaining = answer.remaining_capturable
        closes = booked.close or (remaining is not None and remaining == 0)
        if isinstance(booked, NothingToCapture) and not closes:
            return str(payment_id)
        values: dict[str, Any] = {}
        booked_data = booked.data if isinstance(booked, CaptureBooked) else None
        if answer.data is not None and answer.data != booked_data:
            values["data"] = answer.data
        if booked.fully_captured:
            values["captured_at"] = utc_now()
        elif closes:
            # The provider released what was not captured: the payment is closed, canceled for the rest.
            assert booked.payment_amount is not None and booked.captured_after is not None
            values["released_amount"] = booked.payment_amount - booked.captured_after
            values["canceled_at"] = utc_now()
        collection_id = booked.payment_collection_id
        assert collection_id is not None
        if isinstance(booked, NothingToCapture):
            updated = await self._repo(e.PAYMENT).update_where(
                conn,
                (t.payment.c.id == payment_id)
                & t.payment.c.captured_at.is_(None)
                & t.payment.c.canceled_at.is_(None),
                values,
            )
            if updated:
                await self.ledger.refresh_status(conn, payment_id)
                self._emit(conn, "payment.updated", payment_id, collection_id)
                await self._recompute_collection(conn, collection_id)
            return str(payment_id)
        payment = ctx.scratch.get("payment")
        movements = None
        if values:
            payment = await self.ledger.update_uncaptured_payment(conn, payment_id, values)
            if payment is not None:
                movements = await self.ledger.refresh_status_with_movements(conn, payment_id)
        self._emit(conn, "capture.created", booked.capture_id, collection_id)
        self._emit(conn, "captured", payment_id, collection_id)
        await self._recompute_collection(conn, collection_id)
        await self._hand_back(ctx, conn, payment, movements)
        return str(payment_id)

    async def _hand_back(
        self,
        ctx: StepContext,
        conn: AsyncConnection,
        payment: Row | None,
        movements: tuple[list[Row], list[Row]] | None = None,
    ) -> None:
        """Leaves the payment as this flow wrote it, with its captures and refunds, for the caller (read
        in the flow's last transaction, so the caller does not read it again). `movements`: read
        already by this transaction."""
        if payment is None:
            return  # resumed in another call, or changed by a concurrent one: the caller reads it
        captures, refunds = movements or await self.ledger.movements(conn, payment["id"])
        ctx.scratch["result"] = {**payment, "captures": captures, "refunds": refunds}

    # -- refund -------------------------------------------------------------------------
    async def _book_refund(self, ctx: StepContext) -> RefundBooked:
        conn, request = _conn(ctx), ctx.input
        assert isinstance(request, RefundRequest)
        payment_id = request.payment_id
        locked = await self.ledger.lock_payment(conn, payment_id)
        payment = locked.row
        ctx.scratch["payment"] = payment
        reason = None
        if request.refund_reason_id is not None:
            reason = await self._repo(e.REFUND_REASON).get(conn, request.refund_reason_id)
        disputes = locked.disputes
        check_no_open_dispute(payment_id, disputes.statuses)
        amount = rules.plan_refund(
            currency_code=payment["currency_code"],
            captured=locked.captures,
            refunded=locked.refunds,
            requested=request.amount,
            lost=disputes.lost,
        )
        refund_id = await self.ledger.book_movement(
            conn,
            t.refund,
            {
                "payment_id": payment_id,
                "amount": amount,
                "refund_reason_id": request.refund_reason_id,
                "note": request.note,
                "created_by": request.created_by,
                "metadata": request.metadata,
            },
            status=locked.status_with(refunded=amount),
        )
        return RefundBooked(
            refund_id=refund_id,
            amount=amount,
            reason=reason["code"] if reason else None,
            provider_id=payment["provider_id"],
            currency_code=payment["currency_code"],
            data=payment["data"],
            payment_collection_id=payment["payment_collection_id"],
        )

    async def _unbook_refund(self, ctx: StepContext, booked: RefundBooked | None) -> None:
        if booked:
            async with self.database.write() as conn:
                await self._repo(e.REFUND).delete(conn, [booked.refund_id])
                await self.ledger.refresh_status(conn, ctx.input.payment_id, locked=False)

    async def _provider_refund(self, ctx: StepContext) -> ProviderAnswered:
        booked: RefundBooked = ctx.outputs["book-refund"]
        result = await self.provider(booked.provider_id).refund_payment(
            RefundPaymentInput(
                data=dict(booked.data or {}),
                context=provider_context(None, booked.refund_id, resumed=ctx.resumed),
                amount=booked.amount,
                currency_code=booked.currency_code,
                reason=booked.reason,
                note=ctx.input.note,
            )
        )
        refund_id = result.refund_id if isinstance(result, RefundPaymentOutput) else None
        return ProviderAnswered(data=result.data, refund_id=refund_id)

    async def _finish_refund(self, ctx: StepContext) -> str:
        conn, booked = _conn(ctx), ctx.outputs["book-refund"]
        assert isinstance(booked, RefundBooked)
        payment_id: str = ctx.input.payment_id
        answer: ProviderAnswered = ctx.outputs["provider-refund"]
        provider_data = answer.data
        payment = ctx.scratch.get("payment")
        if provider_data is not None and provider_data != booked.data:
            payment = await self._repo(e.PAYMENT).update(conn, payment_id, {"data": provider_data})
        if answer.refund_id is not None:
            await self._store_provider_refund_id(conn, payment_id, booked.refund_id, answer.refund_id)
        collection_id = booked.payment_collection_id
        self._emit(conn, "refund.created", booked.refund_id, collection_id)
        self._emit(conn, "refunded", payment_id, collection_id)
        await self._recompute_collection(conn, collection_id)
        await self._hand_back(ctx, conn, payment)
        return str(payment_id)

    async def _store_provider_refund_id(
        self, conn: AsyncConnection, payment_id: str, refund_id: str, provider_refund_id: str
    ) -> None:
        """Stores the provider's id on paymod's refund. A provider that does not echo paymod's refund
        id in its webhooks may have had this refund booked as external already (its webhook came
        first): that booking is a duplicate of this one and is dropped, under the payment's lock."""
        await self.ledger.lock_payment(conn, payment_id)
        refund = t.refund
        duplicates = await self._repo(e.REFUND).update_where(
            conn,
            (refund.c.provider_refund_id == provider_refund_id)
            & (refund.c.id != refund_id)
            & refund.c.deleted_at.is_(None),
            {"deleted_at": utc_now(), "metadata": {"external": True, "duplicate_of": refund_id}},
        )
        await self._repo(e.REFUND).update_where(
            conn,
            (refund.c.id == refund_id) & refund.c.provider_refund_id.is_(None),
            {"provider_refund_id": provider_refund_id},
        )
        if duplicates:
            await self.ledger.refresh_status(conn, payment_id)

    # -- cancel -------------------------------------------------------------------------
    async def _book_cancel(self, ctx: StepContext) -> CancelBooking:
        conn, request = _conn(ctx), ctx.input
        assert isinstance(request, CancelRequest)
        id = request.payment_id
        locked = await self.ledger.lock_payment(conn, id)
        payment = locked.row
        if payment["canceled_at"] is not None:
            return AlreadyCanceled()
        rules.check_cancel(
            payment_id=id,
            payment_amount=payment["amount"],
            currency_code=payment["currency_code"],
            captured=locked.captures,
            already_fully_captured=payment["captured_at"] is not None,
        )
        await self._repo(e.PAYMENT).update(conn, id, {"canceled_at": utc_now()})
        await self.ledger.refresh_status(conn, id)
        await self._recompute_collection(conn, payment["payment_collection_id"])
        return CancelBooked(
            provider_id=payment["provider_id"],
            data=payment["data"],
            payment_collection_id=payment["payment_collection_id"],
        )

    async def _unbook_cancel(self, ctx: StepContext, booked: CancelBooking | None) -> None:
        if isinstance(booked, CancelBooked):
            async with self.database.write() as conn:
                await self._repo(e.PAYMENT).update(conn, ctx.input.payment_id, {"canceled_at": None})
                await self.ledger.refresh_status(conn, ctx.input.payment_id)
                await self._recompute_collection(conn, booked.payment_collection_id)

    async def _provider_cancel(self, ctx: StepContext) -> ProviderAnswered:
        booked = ctx.outputs["book-cancel"]
        if not isinstance(booked, CancelBooked):
            return ProviderAnswered()
        id = ctx.input.payment_id
        result = await self.provider(booked.provider_id).cancel_payment(
            ProviderInput(
                data=dict(booked.data or {}),
                context=provider_context(None, f"{id}:cancel", resumed=ctx.resumed),
            )
        )
        return ProviderAnswered(data=result.data)

    async def _finish_cancel(self, ctx: StepContext) -> str:
        conn, id = _conn(ctx), ctx.input.payment_id
        if not isinstance(ctx.outputs["book-cancel"], CancelBooked):
            return str(id)
        provider_data = ctx.outputs["provider-cancel"].data
        row = (
            await self._repo(e.PAYMENT).update(conn, id, {"data": provider_data})
            if provider_data is not None
            else await self._repo(e.PAYMENT).get(conn, id)
        )
        self._emit(conn, "payment.updated", id, row["payment_collection_id"])
        return str(id)
