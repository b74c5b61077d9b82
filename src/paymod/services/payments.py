"""Payments and the money flows: capture, refund and cancel run as durable flows
(`paymod.durable`), and the module's narrow API for the reconciler to finish runs left behind.

Each flow books its row under the payment's lock (one transaction with its recovery point), calls
the provider with a key that survives a crash, then records the outcome (`payment_steps`). A retry
with the same `idempotency_key` replays the result or resumes the run; without a key, each call is a
new run (the reconciler still sees it).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from paymod.domain.errors import (
    ConflictError,
    InvalidDataError,
    NotFoundError,
    ProviderError,
    RetryableProviderError,
)
from paymod.durable import codec
from paymod.durable.engine import Run, Step, Workflow
from paymod.durable.store import DatabaseRunStore
from paymod.persistence import entities as e
from paymod.persistence.repository import FindConfig
from paymod.services.core import Config, Filters
from paymod.services.dto import CaptureDTO, PaymentDTO, RefundDTO
from paymod.services.flow_values import (
    CancelBooking,
    CancelRequest,
    CaptureBooking,
    CaptureRequest,
    ProviderAnswered,
    ProviderCaptured,
    RefundBooked,
    RefundRequest,
)
from paymod.services.inputs import as_mapping, optional_object, optional_text, parse_amount, required
from paymod.services.payment_steps import PaymentStepsMixin
from paymod.services.provider_authorizations import ProviderAuthorizationsMixin
from paymod.services.relations import load_relations


def encode_payment_cursor(created_at: datetime, id: str) -> str:
    """The cursor of the page that starts after this payment (opaque to clients)."""
    text = json.dumps([created_at.isoformat(), id], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_payment_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment, id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        at = datetime.fromisoformat(moment)
        if not isinstance(id, str) or at.tzinfo is None:
            raise ValueError(cursor)
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise InvalidDataError(
            f"Invalid cursor {cursor[:100]!r}: pass a next_cursor as it was given"
        ) from None
    return at, id


class PaymentsMixin(PaymentStepsMixin, ProviderAuthorizationsMixin):
    """Payments, captures and refunds: reads, metadata, and the capture, refund and cancel flows."""

    # -- payments -------------------------------------------------------------------------
    async def retrieve_payment(self, id: str, config: Config = None) -> PaymentDTO:
        return await self._retrieve(e.PAYMENT, PaymentDTO, id, config)

    async def list_payments(self, filters: Filters | None = None, config: Config = None) -> list[PaymentDTO]:
        return await self._list(e.PAYMENT, PaymentDTO, filters, config)

    async def list_and_count_payments(
        self, filters: Filters | None = None, config: Config = None
    ) -> tuple[list[PaymentDTO], int]:
        return await self._list_and_count(e.PAYMENT, PaymentDTO, filters, config)

    async def list_payments_page(
        self, filters: Filters | None = None, config: Config = None, *, after: str | None = None
    ) -> tuple[list[PaymentDTO], str | None]:
        """A keyset page of payments: the `take` payments after the cursor `after` (None: the first
        page) in the order of `created_at` (ascending, or `{"order": {"created_at": "DESC"}}` for
        newest first), and the cursor of the next page (None after the last). Unlike an offset, a
        cursor costs the same at any depth, and rows created meanwhile neither repeat nor go missing."""
        cfg = FindConfig.of(config)
        if set(cfg.order) - {"created_at"}:
            raise InvalidDataError("Pages after a cursor are ordered by created_at")
        if cfg.skip:
            raise InvalidDataError("A cursor and an offset cannot be combined")
        position = None if after is None else decode_payment_cursor(after)
        async with self._reader(cfg) as conn:
            rows, more = await self._repo(e.PAYMENT).find_after(conn, filters, cfg, position)
            await load_relations(conn, self._repos, e.PAYMENT.name, rows, cfg.relations)
        cursor = encode_payment_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more and rows else None
        return [PaymentDTO.model_validate(r) for r in rows], cursor

    async def update_payment(self, data: Mapping[str, Any]) -> PaymentDTO:
        """Updates a payment's `metadata` (no provider call)."""
        data = as_mapping(data, "payment")
        payment_id = required(data, "Payment", "id")
        unknown = set(data) - {"id", "metadata"}
        if unknown:
            raise InvalidDataError(f"Unknown payment field(s): {', '.join(sorted(unknown))}")
        repo = self._repo(e.PAYMENT)
        async with self.database.write() as conn:
            if "metadata" in data:
                row = await repo.update(conn, payment_id, {"metadata": optional_object(data, "metadata")})
            else:
                row = await repo.get(conn, payment_id)
            self._emit(conn, "payment.updated", payment_id, row["payment_collection_id"])
        return PaymentDTO.model_validate(row)

    # -- the money flows (see the module's docstring) ------------------------------------
    def _flows(self) -> dict[str, Workflow]:
        return {
            "capture-payment": Workflow(
                "capture-payment",
                [
                    Step(
                        "book-capture",
                        self._book_capture,
                        self._unbook_capture,
                        local=True,
                        output=CaptureBooking,
                    ),
                    Step("provider-capture", self._provider_capture, output=ProviderCaptured),
                    Step("finish-capture", self._finish_capture, local=True, output=str),
                ],
                input=CaptureRequest,
            ),
            "refund-payment": Workflow(
                "refund-payment",
                [
                    Step(
                        "book-refund", self._book_refund, self._unbook_refund, local=True, output=RefundBooked
                    ),
                    Step("provider-refund", self._provider_refund, output=ProviderAnswered),
                    Step("finish-refund", self._finish_refund, local=True, output=str),
                ],
                input=RefundRequest,
            ),
            "cancel-payment": Workflow(
                "cancel-payment",
                [
                    Step(
                        "book-cancel",
                        self._book_cancel,
                        self._unbook_cancel,
                        local=True,
                        output=CancelBooking,
                    ),
                    Step("provider-cancel", self._provider_cancel, output=ProviderAnswered),
                    Step("finish-cancel", self._finish_cancel, local=True, output=str),
                ],
                input=CancelRequest,
            ),
        }

    async def _run_flow(
        self,
        name: str,
        input: CaptureRequest | RefundRequest | CancelRequest,
        key: str | None,
        *,
        implicit_key: str | None = None,
        scratch: dict[str, Any] | None = None,
    ) -> Any:
        """Runs a flow under the caller's key (None: a new run); under an implicit key (one cancel per
        payment), a concurrent caller waits for the running flow instead of getting a conflict."""
        if key is not None or implicit_key is None:
            return await self.runner.run(self.flows[name], input, key=key, scratch=scratch)
        for attempt in range(50):
            try:
                return await self.runner.run(self.flows[name], input, key=implicit_key, scratch=scratch)
            except ConflictError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        raise AssertionError("unreachable")

    async def _run_payment_flow(
        self, name: str, input: CaptureRequest | RefundRequest, key: str | None
    ) -> PaymentDTO:
        """Runs a capture or refund flow; the payment with its captures and refunds as the flow left
        it, or as stored when the run was replayed or finished by another call."""
        scratch: dict[str, Any] = {}
        await self._run_flow(name, input, key, scratch=scratch)
        if "result" in scratch:
            return PaymentDTO.model_validate(scratch["result"])
        return await self.retrieve_payment(input.payment_id, {"relations": ["captures", "refunds"]})

    async def capture_payment(self, data: Mapping[str, Any]) -> PaymentDTO:
        """Captures `amount` (default: what remains) of an authorized payment; returns the payment with
        its captures and refunds.

        The guard runs under a row lock on the payment and books the capture before the provider
        is called (so concurrent captures see it); a provider refusal removes it again. The provider
        is told the amount, with the capture's id as its idempotency key, which a resumed run reuses.

        `captured_total` (paymod's, for provider webhooks) asks for the payment's captures to add up
        to that total, computed under the lock: replaying the same report captures nothing twice.
        `remaining_capturable` (idem) says what the provider still holds: 0 closes the payment.

        When the provider answers that nothing stays capturable after a partial capture (Stripe
        without multicapture releases the rest), the payment is closed: `released_amount` records what
        was released and the payment is canceled for the rest, so the collection reads
        `partially_captured`.
        """
        data = as_mapping(data, "capture")
        remaining = data.get("remaining_capturable")
        request = CaptureRequest(
            payment_id=required(data, "Payment", "payment_id"),
            amount=None if data.get("amount") is None else parse_amount(data["amount"], signed=True),
            captured_total=(
                None if data.get("captured_total") is None else parse_amount(data["captured_total"])
            ),
            remaining_capturable=None if remaining is None else parse_amount(remaining),
            captured_by=optional_text(data, "captured_by") or optional_text(data, "created_by"),
            is_captured=bool(data.get("is_captured", False)),
        )
        try:
            return await self._run_payment_flow(
                "capture-payment", request, optional_text(data, "idempotency_key")
            )
        except RetryableProviderError:
            raise  # the outcome is unknown: the run stays resumable, nothing was unbooked
        except ProviderError as refusal:
            raise await self._refused_capture(request, refusal) from refusal

    async def _refused_capture(self, request: CaptureRequest, refusal: ProviderError) -> ProviderError:
        """The error for a capture the provider refused (and that was unbooked): the provider may have
        voided the authorization meanwhile, which is then booked."""
        if request.is_captured:
            return refusal
        return await self._void_behind_refused_capture(request.payment_id, refusal)

    async def refund_payment(self, data: Mapping[str, Any]) -> PaymentDTO:
        """Refunds `amount` (default: what remains refundable) of a captured payment; returns the payment
        with its captures and refunds.

        The amount is in whole minor units of the currency, and never more than what was captured
        and not yet refunded (compared at the currency's precision).
        """
        data = as_mapping(data, "refund")
        request = RefundRequest(
            payment_id=required(data, "Payment", "payment_id"),
            amount=None if data.get("amount") is None else parse_amount(data["amount"], signed=True),
            refund_reason_id=optional_text(data, "refund_reason_id"),
            note=optional_text(data, "note"),
            created_by=optional_text(data, "created_by"),
            metadata=optional_object(data, "metadata"),
        )
        return await self._run_payment_flow("refund-payment", request, optional_text(data, "idempotency_key"))

    async def cancel_payment(self, id: str, *, idempotency_key: str | None = None) -> PaymentDTO:
        """Cancels a payment that is not fully captured, and updates its collection (unlike Medusa).

        The cancel is booked under the payment's lock before the provider is called, so a capture
        racing it either comes first (and a full capture makes the cancel fail) or sees the payment
        canceled; a provider refusal un-books it. A payment is canceled once: its run is keyed by it.
        """
        if not isinstance(id, str) or not id:
            raise InvalidDataError("Payment id must be a non-empty string")
        await self._run_flow(
            "cancel-payment", CancelRequest(payment_id=id), idempotency_key, implicit_key=f"cancel:{id}"
        )
        return await self.retrieve_payment(id)

    # -- captures, refunds ----------------------------------------------------------------
    async def retrieve_capture(self, id: str, config: Config = None) -> CaptureDTO:
        return await self._retrieve(e.CAPTURE, CaptureDTO, id, config)

    async def list_captures(self, filters: Filters | None = None, config: Config = None) -> list[CaptureDTO]:
        return await self._list(e.CAPTURE, CaptureDTO, filters, config)

    async def list_and_count_captures(
        self, filters: Filters | None = None, config: Config = None
    ) -> tuple[list[CaptureDTO], int]:
        return await self._list_and_count(e.CAPTURE, CaptureDTO, filters, config)

    async def retrieve_refund(self, id: str, config: Config = None) -> RefundDTO:
        return await self._retrieve(e.REFUND, RefundDTO, id, config)

    async def list_refunds(self, filters: Filters | None = None, config: Config = None) -> list[RefundDTO]:
        return await self._list(e.REFUND, RefundDTO, filters, config)

    async def list_and_count_refunds(
        self, filters: Filters | None = None, config: Config = None
    ) -> tuple[list[RefundDTO], int]:
        return await self._list_and_count(e.REFUND, RefundDTO, filters, config)

    # -- the reconciler's narrow API -----------------------------------------------------
    async def stale_runs(self, *, older_than: timedelta) -> list[Mapping[str, Any]]:
        """Flow runs left running or suspended by a caller that went away, untouched for `older_than`."""
        return list(await self._run_store().stale(older_than))

    async def claim_run(self, stale: Mapping[str, Any]) -> Run:
        """Claims a stale run for this process (`ConflictError` when another holds it); `NotFoundError`
        when this process has no flow of that name."""
        if stale["name"] not in self.flows:
            raise NotFoundError("no such flow in this process")
        return await self._run_store().claim(dict(stale), stale["fingerprint"])

    async def resume_run(self, run: Run) -> None:
        """Finishes a claimed run from its last recovery point (its provider calls reuse its keys)."""
        workflow = self.flows[run.name]
        try:
            await self.runner.resume(workflow, run)
        except RetryableProviderError:
            raise
        except ProviderError as refusal:
            request = codec.load(workflow.input, run.input)
            if not isinstance(request, CaptureRequest):
                raise
            raise await self._refused_capture(request, refusal) from refusal

    def _run_store(self) -> DatabaseRunStore:
        store = self.runner.store
        assert isinstance(store, DatabaseRunStore), "runs are resumed from the database"
        return store
