"""Refunds the provider reports: made outside paymod (its dashboard, its API) and booked once, or
made by paymod and failed at the provider since.

Both run under the payment's lock, like an admin refund (`payment_steps`), so an external refund
racing an admin refund on the same payment is checked against the other's booking: together they
never refund more than was captured. A refund is known by the provider's refund id
(`refund.provider_refund_id`, unique among live refunds) or, for refunds paymod made, by paymod's
refund id the provider echoes back (Stripe: the refund's metadata `paymod_refund_id`), so a webhook
about a refund paymod made is recognised even before paymod stored the provider's id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain import rules
from paymod.domain.errors import InvalidDataError
from paymod.persistence import entities as e
from paymod.persistence import outbox
from paymod.persistence import tables as t
from paymod.persistence.repository import Row, utc_now
from paymod.services.core import ModuleCore
from paymod.services.dto import RefundDTO
from paymod.services.inputs import as_mapping, optional_text, parse_amount, required

#: The note of a refund booked from the provider's report (its reason stays empty: see docs/concepts.md).
EXTERNAL_REFUND_NOTE = "refunded at the provider"


class ProviderRefundsMixin(ModuleCore):
    """Books the refunds a provider reports, and marks paymod's refunds that failed at the provider."""

    async def _known_refund(
        self, conn: AsyncConnection, payment_id: str, provider_refund_id: str, paymod_refund_id: str | None
    ) -> Row | None:
        """The refund (live or not) with this provider id, else paymod's refund the provider names."""
        refund = t.refund
        match = refund.c.provider_refund_id == provider_refund_id
        if paymod_refund_id is not None:
            match = or_(match, refund.c.id == paymod_refund_id)
        rows = [
            dict(row)
            for row in (
                await conn.execute(select(refund).where(refund.c.payment_id == payment_id, match))
            ).mappings()
        ]
        by_provider_id = [r for r in rows if r["provider_refund_id"] == provider_refund_id]
        found = by_provider_id or rows
        return found[0] if found else None

    async def record_provider_refund(self, data: Mapping[str, Any]) -> RefundDTO | None:
        """Books a refund the provider made (`payment_id`, `provider_refund_id`, `amount`, optional
        `paymod_refund_id`) unless it is known already; returns the new refund, or None when known.

        Raises `InvalidDataError` when it would refund more than was captured and not yet refunded:
        nothing is booked, and the webhook that reported it is retried, then parked as failed.
        """
        data = as_mapping(data, "provider refund")
        payment_id = required(data, "Payment", "payment_id")
        provider_refund_id = required(data, "Refund", "provider_refund_id")
        paymod_refund_id = optional_text(data, "paymod_refund_id")
        if data.get("amount") is None:
            raise InvalidDataError("amount is required for a refund made at the provider")
        requested = parse_amount(data["amount"], signed=True)
        async with self.database.write() as conn:
            locked = await self.ledger.lock_payment(conn, payment_id)
            payment = locked.row
            known = await self._known_refund(conn, payment_id, provider_refund_id, paymod_refund_id)
            if known is not None:
                if known["provider_refund_id"] is None and known["deleted_at"] is None:
                    # paymod's own refund, reported before paymod stored the provider's id.
                    await self._repo(e.REFUND).update(
                        conn, known["id"], {"provider_refund_id": provider_refund_id}
                    )
                return None
            try:
                # Made at the provider already: an open dispute does not stop it, a lost one counts.
                amount = rules.plan_refund(
                    currency_code=payment["currency_code"],
                    captured=locked.captures,
                    refunded=locked.refunds,
                    requested=requested,
                    lost=locked.disputes.lost,
                )
            except InvalidDataError as exc:
                raise InvalidDataError(
                    f"The provider's refund {provider_refund_id} of {requested} {payment['currency_code']} "
                    f"was not booked on payment {payment_id}: {exc}"
                ) from None
            [refund] = await self._repo(e.REFUND).insert(
                conn,
                [
                    {
                        "payment_id": payment_id,
                        "amount": amount,
                        "refund_reason_id": None,
                        "note": EXTERNAL_REFUND_NOTE,
                        "metadata": {"external": True},
                        "provider_refund_id": provider_refund_id,
                    }
                ],
            )
            await self.ledger.refresh_status(conn, payment_id)
            collection_id = payment["payment_collection_id"]
            outbox.emit(conn, "payment.refund.created", {"id": refund["id"], "external": True}, collection_id)
            outbox.emit(
                conn,
                "payment.refunded",
                {"id": payment_id, "refund_id": refund["id"], "external": True},
                collection_id,
            )
            await self._recompute_collection(conn, collection_id)
        return RefundDTO.model_validate(refund)

    async def fail_provider_refund(self, data: Mapping[str, Any]) -> RefundDTO | None:
        """Marks a live refund failed at the provider (`payment_id`, `provider_refund_id`, optional
        `paymod_refund_id`, `reason`): soft-deleted with `metadata.failed` = the reason, so what it
        refunded counts as captured again. Returns it, or None when no live refund matches (unknown,
        or failed already)."""
        data = as_mapping(data, "failed refund")
        payment_id = required(data, "Payment", "payment_id")
        provider_refund_id = required(data, "Refund", "provider_refund_id")
        paymod_refund_id = optional_text(data, "paymod_refund_id")
        reason = optional_text(data, "reason") or "failed"
        async with self.database.write() as conn:
            payment = (await self.ledger.lock_payment(conn, payment_id)).row
            known = await self._known_refund(conn, payment_id, provider_refund_id, paymod_refund_id)
            if known is None or known["deleted_at"] is not None:
                return None
            failed = await self._repo(e.REFUND).update(
                conn,
                known["id"],
                {
                    "deleted_at": utc_now(),
                    "provider_refund_id": provider_refund_id,
                    "metadata": {**(known["metadata"] or {}), "failed": reason},
                },
            )
            await self.ledger.refresh_status(conn, payment_id)
            collection_id = payment["payment_collection_id"]
            outbox.emit(conn, "payment.refund.failed", {"id": known["id"], "reason": reason}, collection_id)
            await self._recompute_collection(conn, collection_id)
        return RefundDTO.model_validate(failed)
