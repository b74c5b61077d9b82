"""Stripe's dispute events mapped and applied, and disputes answered (evidence, accepting), with
Stripe answered by the in-memory fake behind the SDK's HTTP client (localstripe has no disputes), on
SQLite and PostgreSQL.

Shapes (docs.stripe.com/api/events/types, /api/disputes/object): `charge.dispute.created`,
`.updated`, `.closed`, `.funds_withdrawn`, `.funds_reinstated` carry the Dispute (`id`, `amount` in
the currency's smallest unit, `currency`, `charge`, `payment_intent`, `reason`, `status`,
`evidence_details.due_by` in epoch seconds, `balance_transactions`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fake_stripe import FakeStripe
from sqlalchemy import select
from test_stripe_refund_webhooks_fake import captured, deliver
from test_stripe_refund_webhooks_fake import module as module  # the fixture

from paymod import PaymentModule
from paymod.domain.errors import NotAllowedError
from paymod.domain.statuses import DisputeStatus
from paymod.persistence.tables import dispute, event_outbox
from paymod.providers.stripe.disputes import dispute_status, provider_dispute


async def dispute_rows(module: PaymentModule) -> list[dict[str, Any]]:
    async with module.database.read() as conn:
        return [dict(r) for r in (await conn.execute(select(dispute))).mappings()]


async def event_names(module: PaymentModule) -> list[str]:
    async with module.database.read() as conn:
        found = await conn.execute(select(event_outbox.c.name).order_by(event_outbox.c.sequence))
        return [n for n in found.scalars() if "dispute" in n]


def test_statuses_and_amounts_map_onto_paymods() -> None:
    assert dispute_status("needs_response") == DisputeStatus.NEEDS_RESPONSE
    assert dispute_status("appeal_under_review") == DisputeStatus.UNDER_REVIEW
    assert dispute_status("prevented") == DisputeStatus.WON
    assert dispute_status("something_new") is None
    mapped = provider_dispute(
        {
            "id": "du_1",
            "amount": 1050,
            "currency": "jpy",
            "status": "needs_response",
            "reason": "duplicate",
            "evidence_details": {"due_by": 1_800_000_000},
            "balance_transactions": [{"amount": -1050}],
        }
    )
    assert mapped is not None
    assert (mapped.amount, mapped.currency_code, mapped.reason) == (Decimal(1050), "jpy", "duplicate")
    assert mapped.evidence_due_by == datetime.fromtimestamp(1_800_000_000, UTC)
    assert (mapped.funds_withdrawn, mapped.funds_reinstated) == (True, None)
    assert provider_dispute({"id": "du_2", "amount": 100, "currency": "usd", "status": "odd"}) is None


async def test_a_chargeback_is_recorded_then_closed_won(module: PaymentModule, fake: FakeStripe) -> None:
    payment_id, intent_id = await captured(module, "100")
    created = fake.dispute_outside(intent_id, 4000, reason="product_not_received")
    assert await deliver(module, fake, fake.last_event("charge.dispute.created")) == "processed"
    # The Dispute of `created` shows the withdrawal already: this one is no news.
    assert await deliver(module, fake, fake.last_event("charge.dispute.funds_withdrawn")) == "ignored"
    [row] = await dispute_rows(module)
    assert (row["payment_id"], row["provider_dispute_id"], row["amount"]) == (
        payment_id,
        created["id"],
        Decimal(40),
    )
    assert (row["status"], row["reason"], row["funds_withdrawn"]) == (
        "needs_response",
        "product_not_received",
        True,
    )
    assert row["evidence_due_by"] == datetime.fromtimestamp(1_800_000_000, UTC)
    # Open: no refund (Stripe would refuse it too).
    with pytest.raises(NotAllowedError):
        await module.refund_payment({"payment_id": payment_id, "amount": 10})
    fake.close_dispute_outside(created["id"], "won")
    assert await deliver(module, fake, fake.last_event("charge.dispute.closed")) == "processed"
    assert await deliver(module, fake, fake.last_event("charge.dispute.funds_reinstated")) == "processed"
    [row] = await dispute_rows(module)
    assert (row["status"], row["funds_reinstated"], row["closed_at"] is not None) == ("won", True, True)
    assert await event_names(module) == [
        "payment.disputed",
        "payment.dispute.updated",  # won
        "payment.dispute.closed",
        "payment.dispute.updated",  # funds reinstated
    ]
    await module.refund_payment({"payment_id": payment_id, "amount": 100})


async def test_evidence_is_submitted_and_a_dispute_accepted_through_stripe(
    module: PaymentModule, fake: FakeStripe
) -> None:
    payment_id, intent_id = await captured(module, "80")
    created = fake.dispute_outside(intent_id)
    await deliver(module, fake, fake.last_event("charge.dispute.created"))
    [row] = await dispute_rows(module)

    staged = await module.submit_dispute_evidence(row["id"], {"customer_name": "Ada Lovelace"}, submit=False)
    assert staged.status == "needs_response" and staged.evidence_submitted_at is None
    [call] = fake.calls("POST", f"/v1/disputes/{created['id']}")
    assert call.params == {"evidence": {"customer_name": "Ada Lovelace"}, "submit": "false"}
    assert call.idempotency_key is not None
    submitted = await module.submit_dispute_evidence(
        row["id"], {"uncategorized_text": "Delivered, signed for."}, submit=True
    )
    assert submitted.status == "under_review" and submitted.evidence_submitted_at is not None
    assert fake.objects[created["id"]]["evidence"] == {
        "customer_name": "Ada Lovelace",
        "uncategorized_text": "Delivered, signed for.",
    }
    # Stripe's own report of what paymod did changes nothing more.
    assert await deliver(module, fake, fake.last_event("charge.dispute.updated")) == "ignored"

    second_payment, second_intent = await captured(module, "50")
    other = fake.dispute_outside(second_intent)
    await deliver(module, fake, fake.last_event("charge.dispute.created"))
    [lost] = [d for d in await dispute_rows(module) if d["provider_dispute_id"] == other["id"]]
    accepted = await module.accept_dispute(lost["id"])
    assert (accepted.status, accepted.accepted_at is not None) == ("lost", True)
    assert fake.calls("POST", f"/v1/disputes/{other['id']}/close")
    assert fake.objects[other["id"]]["status"] == "lost"
    with pytest.raises(NotAllowedError):
        await module.accept_dispute(lost["id"])
    # Lost in full: nothing left to refund.
    with pytest.raises(Exception, match="disputes lost"):
        await module.refund_payment({"payment_id": second_payment})
    assert payment_id


async def test_a_dispute_of_a_charge_paymod_did_not_make_is_not_ours(
    module: PaymentModule, fake: FakeStripe
) -> None:
    _, intent_id = await captured(module, "20")
    fake.dispute_outside(intent_id)
    event = json.loads(json.dumps(fake.last_event("charge.dispute.created")))
    event["data"]["object"]["payment_intent"] = None
    event["id"] = "evt_not_ours"
    assert await deliver(module, fake, event) == "ignored"
    assert await dispute_rows(module) == []
