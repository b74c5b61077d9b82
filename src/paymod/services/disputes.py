"""Disputes (chargebacks) as their providers report them, and the merchant's answers to them.

A dispute is recorded once per provider dispute id and updated by the provider's later reports,
under the payment's and the collection's locks, the locks a refund takes: a dispute reported while an
admin refunds the payment is seen by the refund's guard, or sees the refund. A dispute does not
change the payment's status; while one is open the payment cannot be refunded, and a lost dispute's
amount is no longer refundable (`domain.disputes`, `rules.plan_refund`).

Answers (evidence, accepting) are provider calls, made outside any transaction with an idempotency
key derived from the dispute and the call, and their outcome is stored afterwards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain import disputes as rules
from paymod.domain.errors import InvalidDataError, NotAllowedError
from paymod.domain.money import AmountError, round_amount, to_amount
from paymod.domain.statuses import DisputeStatus
from paymod.persistence import entities as e
from paymod.persistence import outbox
from paymod.persistence import tables as t
from paymod.persistence.repository import FindConfig, Row, utc_now
from paymod.providers.base import DisputeEvidenceInput, DisputeInput, DisputeOutput, ProviderDispute
from paymod.services.core import Config, Filters, ModuleCore
from paymod.services.dto import DisputeDTO, WebhookDispute
from paymod.services.inputs import as_mapping, parse_currency, provider_context, required, webhook_text


def webhook_dispute(dispute: ProviderDispute) -> WebhookDispute:
    """A provider's dispute checked like every webhook field: a signed event with a 3 KB id or an
    amount of NaN is refused before anything is stored."""
    try:
        amount = to_amount(dispute.amount, "dispute amount")
        currency_code = None if dispute.currency_code is None else parse_currency(dispute.currency_code)
        status = DisputeStatus(dispute.status)
    except (AmountError, InvalidDataError, ValueError) as exc:
        raise InvalidDataError(f"The webhook's dispute is invalid: {exc}", code="invalid_webhook") from None
    if amount < 0:
        raise InvalidDataError("The webhook's dispute amount is negative.", code="invalid_webhook")
    dispute_id = webhook_text(dispute.id, "dispute id")
    if not dispute_id:
        raise InvalidDataError("The webhook names a dispute without an id.", code="invalid_webhook")
    return WebhookDispute(
        id=dispute_id,
        amount=amount,
        currency_code=currency_code,
        status=status,
        reason=webhook_text(dispute.reason, "dispute reason"),
        evidence_due_by=dispute.evidence_due_by,
        funds_withdrawn=dispute.funds_withdrawn,
        funds_reinstated=dispute.funds_reinstated,
        data=dict(dispute.data),
    )


def dispute_record(dispute: WebhookDispute) -> dict[str, Any]:
    """A webhook's dispute as the inbox stores it (JSON: the amount as exact decimal text)."""
    return dispute.model_dump(mode="json")


def _call_key(dispute_id: str, call: str, body: Mapping[str, Any]) -> str:
    """The same answer asked twice is the same provider call (a retried request is not a second one)."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{dispute_id}:{call}:{digest}"


class DisputesMixin(ModuleCore):
    """Records the disputes providers report; lists them; answers them at the provider."""

    async def record_provider_dispute(self, data: Mapping[str, Any]) -> DisputeDTO | None:
        """Records a dispute of `payment_id` its provider reported (`dispute`: a `WebhookDispute` or
        its fields): created once per provider dispute id, then updated by later reports. Returns
        the dispute when this report changed it, None when it was known already (a duplicate) or
        older than what is recorded (a closed dispute is not reopened by a late report).

        Events: `payment.disputed` (new), `payment.dispute.updated` (changed),
        `payment.dispute.closed` (now won, lost or closed).
        """
        data = as_mapping(data, "provider dispute")
        payment_id = required(data, "Dispute", "payment_id")
        reported = WebhookDispute.model_validate(required(data, "Dispute", "dispute"))
        async with self.database.write() as conn:
            payment = (await self.ledger.lock_payment(conn, payment_id)).row
            collection_id = payment["payment_collection_id"]
            # Events of one collection are written under its lock (they are delivered in that order).
            await self.ledger.lock_collection(conn, collection_id)
            currency = payment["currency_code"]
            if reported.currency_code not in (None, currency):
                raise InvalidDataError(
                    f"The provider's dispute {reported.id} is in {reported.currency_code}, "
                    f"payment {payment_id} in {currency}: not recorded."
                )
            values: dict[str, Any] = {
                "amount": round_amount(reported.amount, currency),
                "status": reported.status.value,
                "reason": reported.reason,
                "evidence_due_by": reported.evidence_due_by,
                "funds_withdrawn": reported.funds_withdrawn,
                "funds_reinstated": reported.funds_reinstated,
            }
            known = await self._dispute_by_provider_id(conn, reported.id)
            if known is None:
                now = utc_now()
                [row] = await self._repo(e.DISPUTE).insert(
                    conn,
                    [
                        {
                            **values,
                            "payment_id": payment_id,
                            "provider_id": payment["provider_id"],
                            "provider_dispute_id": reported.id,
                            "currency_code": currency,
                            "data": reported.data,
                            "closed_at": now if reported.status.is_final else None,
                        }
                    ],
                )
                outbox.emit(
                    conn,
                    "payment.disputed",
                    {"id": payment_id, "dispute_id": row["id"], "status": row["status"]},
                    collection_id,
                )
                if reported.status.is_final:
                    self._emit_closed(conn, row, collection_id)
                return DisputeDTO.model_validate(row)
            if known["payment_id"] != payment_id:
                raise InvalidDataError(
                    f"The provider's dispute {reported.id} is recorded on payment {known['payment_id']}, "
                    f"not {payment_id}."
                )
            current = DisputeStatus(known["status"])
            if rules.is_regression(current, reported.status):
                return None
            # Fields a report leaves out (None) keep what an earlier report said.
            changes = {
                name: value for name, value in values.items() if value is not None and known[name] != value
            }
            if not changes:
                return None
            changes["data"] = reported.data
            closes = reported.status.is_final and not current.is_final
            if closes:
                changes["closed_at"] = utc_now()
            row = await self._repo(e.DISPUTE).update(conn, known["id"], changes)
            outbox.emit(
                conn,
                "payment.dispute.updated",
                {"id": row["id"], "payment_id": payment_id, "status": row["status"]},
                collection_id,
            )
            if reported.status.is_final and row["status"] != current.value:
                self._emit_closed(conn, row, collection_id)
        return DisputeDTO.model_validate(row)

    @staticmethod
    def _emit_closed(conn: AsyncConnection, row: Row, collection_id: str) -> None:
        status = DisputeStatus(row["status"])
        outbox.emit(
            conn,
            "payment.dispute.closed",
            {
                "id": row["id"],
                "payment_id": row["payment_id"],
                "status": status.value,
                "won": status == DisputeStatus.WON,
                "lost": status == DisputeStatus.LOST,
            },
            collection_id,
        )

    @staticmethod
    async def _dispute_by_provider_id(conn: AsyncConnection, provider_dispute_id: str) -> Row | None:
        found = await conn.execute(
            select(t.dispute).where(t.dispute.c.provider_dispute_id == provider_dispute_id)
        )
        row = found.mappings().first()
        return None if row is None else dict(row)

    # -- reads ----------------------------------------------------------------------------
    async def retrieve_dispute(self, id: str, config: Config = None) -> DisputeDTO:
        return await self._retrieve(e.DISPUTE, DisputeDTO, id, config)

    async def list_disputes(self, filters: Filters | None = None, config: Config = None) -> list[DisputeDTO]:
        return (await self.list_and_count_disputes(filters, config))[0]

    async def list_and_count_disputes(
        self, filters: Filters | None = None, config: Config = None
    ) -> tuple[list[DisputeDTO], int]:
        """Disputes, newest first unless ordered; filters on any column (`payment_id`, `status`,
        `provider_id`, ...), a list meaning any of."""
        cfg = FindConfig.of(config)
        if not cfg.order:
            cfg = dataclasses.replace(cfg, order={"created_at": "DESC", "id": "DESC"})
        return await self._list_and_count(e.DISPUTE, DisputeDTO, filters, cfg)

    # -- answers --------------------------------------------------------------------------
    async def submit_dispute_evidence(
        self, dispute_id: str, evidence: Mapping[str, Any] | None = None, submit: bool = False
    ) -> DisputeDTO:
        """Saves `evidence` (the provider's field names) on an open dispute at its provider; with
        `submit`, sends it to the bank (no further change possible). Refused (`not_allowed`) when
        the dispute is closed or its provider does not take evidence."""
        if evidence is not None and not isinstance(evidence, Mapping):
            raise InvalidDataError("evidence must be an object")
        body = dict(evidence or {})
        dispute = await self._open_dispute(dispute_id)
        provider = self.provider(dispute["provider_id"])
        try:
            answer = await provider.submit_dispute_evidence(
                DisputeEvidenceInput(
                    data=dict(dispute["data"] or {}),
                    context=provider_context(
                        None, _call_key(dispute_id, "evidence", {"evidence": body, "submit": submit})
                    ),
                    dispute_id=dispute["provider_dispute_id"],
                    evidence=body,
                    submit=bool(submit),
                )
            )
        except NotImplementedError:
            raise NotAllowedError(
                f"Provider {dispute['provider_id']} does not take dispute evidence through paymod; "
                f"answer dispute {dispute_id} in the provider's dashboard."
            ) from None
        return await self._store_answer(dispute_id, answer, "evidence_submitted_at" if submit else None)

    async def accept_dispute(self, dispute_id: str) -> DisputeDTO:
        """Accepts an open dispute at its provider (it is then lost). Refused (`not_allowed`) when the
        dispute is closed or its provider cannot accept disputes."""
        dispute = await self._open_dispute(dispute_id)
        provider = self.provider(dispute["provider_id"])
        try:
            answer = await provider.accept_dispute(
                DisputeInput(
                    data=dict(dispute["data"] or {}),
                    context=provider_context(None, f"{dispute_id}:accept"),
                    dispute_id=dispute["provider_dispute_id"],
                )
            )
        except NotImplementedError:
            raise NotAllowedError(
                f"Provider {dispute['provider_id']} cannot accept disputes through paymod; "
                f"answer dispute {dispute_id} in the provider's dashboard."
            ) from None
        if answer.status is None:
            answer.status = DisputeStatus.LOST
        return await self._store_answer(dispute_id, answer, "accepted_at")

    async def _open_dispute(self, dispute_id: str) -> Row:
        if not isinstance(dispute_id, str) or not dispute_id:
            raise InvalidDataError("Dispute id must be a non-empty string")
        async with self.database.single() as conn:
            dispute = await self._repo(e.DISPUTE).get(conn, dispute_id)
        if DisputeStatus(dispute["status"]).is_final:
            raise NotAllowedError(f"Dispute {dispute_id} is {dispute['status']}: it is closed.")
        return dispute

    async def _store_answer(self, dispute_id: str, answer: DisputeOutput, stamp: str | None) -> DisputeDTO:
        """Stores the status the provider answered, as a report of it would (the webhook that follows
        then changes nothing), and when the answer was given."""
        async with self.database.write() as conn:
            dispute = await self._repo(e.DISPUTE).get(conn, dispute_id)
            payment = (await self.ledger.lock_payment(conn, dispute["payment_id"])).row
            collection_id = payment["payment_collection_id"]
            await self.ledger.lock_collection(conn, collection_id)
            # Read again under the locks: a webhook may have changed it during the provider call.
            dispute = await self._repo(e.DISPUTE).get(conn, dispute_id)
            current = DisputeStatus(dispute["status"])
            changes: dict[str, Any] = {}
            if stamp is not None and dispute[stamp] is None:
                changes[stamp] = utc_now()
            status = answer.status
            if status is not None and status != current and not rules.is_regression(current, status):
                changes["status"] = status.value
                if status.is_final:
                    changes["closed_at"] = utc_now()
            if not changes:
                return DisputeDTO.model_validate(dispute)
            row = await self._repo(e.DISPUTE).update(conn, dispute_id, changes)
            if "status" in changes:
                outbox.emit(
                    conn,
                    "payment.dispute.updated",
                    {"id": dispute_id, "payment_id": row["payment_id"], "status": row["status"]},
                    collection_id,
                )
                if DisputeStatus(row["status"]).is_final:
                    self._emit_closed(conn, row, collection_id)
        return DisputeDTO.model_validate(row)


__all__ = ["DisputesMixin", "dispute_record", "webhook_dispute"]
