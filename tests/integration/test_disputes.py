"""Disputes (chargebacks) the provider reports: recorded once, updated, closed won or lost; refunds
refused while one is open; a lost one's amount no longer refundable; evidence and accepting answered
at the provider. Through the testing provider's webhooks and the worker, on both databases."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from test_provider_refunds import captured_payment, deliver, events, refund_rows
from test_webhooks import quick as quick  # the fixture: processed at once, retried once

from paymod import PaymentModule
from paymod.domain.errors import InvalidDataError, NotAllowedError
from paymod.persistence.tables import dispute
from paymod.providers.testing import TestingPaymentProvider
from paymod.webhooks.inbox import list_webhook_events


def disputed(session_id: str, event_id: str, **fields: Any) -> dict[str, Any]:
    body = {
        "id": event_id,
        "action": "disputed",
        "session_id": session_id,
        "dispute_id": "dp_1",
        "amount": 100,
        "status": "needs_response",
        "reason": "fraudulent",
        "evidence_due_by": "2026-12-20T23:59:59+00:00",
    }
    return {**body, **fields}


async def dispute_rows(module: PaymentModule) -> list[dict[str, Any]]:
    async with module.database.read() as conn:
        return [dict(r) for r in (await conn.execute(select(dispute))).mappings()]


async def test_a_reported_dispute_is_recorded_once(quick: PaymentModule) -> None:
    collection_id, session_id, payment_id = await captured_payment(quick)
    await deliver(quick, disputed(session_id, "evt_d1"))
    await deliver(quick, disputed(session_id, "evt_d1"))  # the same delivery again
    await deliver(quick, disputed(session_id, "evt_d2"))  # the same news under another event id
    [row] = await dispute_rows(quick)
    assert row["id"].startswith("disp_")
    assert (row["payment_id"], row["provider_dispute_id"], row["amount"]) == (
        payment_id,
        "dp_1",
        Decimal(100),
    )
    assert (row["currency_code"], row["status"], row["reason"]) == ("usd", "needs_response", "fraudulent")
    assert row["evidence_due_by"].isoformat() == "2026-12-20T23:59:59+00:00"
    assert row["provider_id"] == "pp_testing_default" and row["closed_at"] is None
    assert await events(quick, "payment.disputed") == [
        {"id": payment_id, "dispute_id": row["id"], "status": "needs_response"}
    ]
    assert await events(quick, "payment.dispute.updated") == []
    # The payment's status stays; the payment shows its dispute.
    payment = await quick.retrieve_payment(payment_id, {"relations": ["disputes"]})
    assert [d.id for d in payment.disputes or []] == [row["id"]]
    assert (await quick.retrieve_payment_collection(collection_id)).status == "completed"
    assert sorted(e["status"] for e in await list_webhook_events(quick)) == ["ignored", "processed"]


@pytest.mark.parametrize("outcome", ["won", "lost"])
async def test_a_dispute_is_updated_then_closed(quick: PaymentModule, outcome: str) -> None:
    _, session_id, payment_id = await captured_payment(quick)
    await deliver(quick, disputed(session_id, "evt_1", amount=60))
    await deliver(quick, disputed(session_id, "evt_2", amount=60, status="under_review"))
    await deliver(quick, disputed(session_id, "evt_3", amount=60, status=outcome))
    [row] = await dispute_rows(quick)
    assert (row["status"], row["amount"]) == (outcome, Decimal(60))
    assert row["closed_at"] is not None
    updates = await events(quick, "payment.dispute.updated")
    assert [u["status"] for u in updates] == ["under_review", outcome]
    assert await events(quick, "payment.dispute.closed") == [
        {
            "id": row["id"],
            "payment_id": payment_id,
            "status": outcome,
            "won": outcome == "won",
            "lost": outcome == "lost",
        }
    ]


async def test_a_late_report_does_not_reopen_a_closed_dispute(quick: PaymentModule) -> None:
    _, session_id, _ = await captured_payment(quick)
    # Delivered out of order: the closing event first, then the older ones.
    await deliver(quick, disputed(session_id, "evt_3", status="lost"))
    await deliver(quick, disputed(session_id, "evt_1", status="needs_response"))
    await deliver(quick, disputed(session_id, "evt_2", status="under_review"))
    [row] = await dispute_rows(quick)
    assert row["status"] == "lost" and row["closed_at"] is not None
    assert len(await events(quick, "payment.disputed")) == 1
    assert len(await events(quick, "payment.dispute.closed")) == 1
    assert await events(quick, "payment.dispute.updated") == []


async def test_a_refund_is_refused_while_a_dispute_is_open(quick: PaymentModule) -> None:
    _, session_id, payment_id = await captured_payment(quick)
    await deliver(quick, disputed(session_id, "evt_1", amount=40, status="warning_needs_response"))
    with pytest.raises(NotAllowedError, match="open dispute"):
        await quick.refund_payment({"payment_id": payment_id, "amount": 10})
    assert await refund_rows(quick, payment_id) == []
    await deliver(quick, disputed(session_id, "evt_2", amount=40, status="won"))
    await quick.refund_payment({"payment_id": payment_id, "amount": 100})
    assert [r["amount"] for r in await refund_rows(quick, payment_id)] == [Decimal(100)]


async def test_a_lost_dispute_is_no_longer_refundable(quick: PaymentModule) -> None:
    _, session_id, payment_id = await captured_payment(quick)
    await deliver(quick, disputed(session_id, "evt_1", amount=30, status="lost"))
    with pytest.raises(InvalidDataError, match="disputes lost"):
        await quick.refund_payment({"payment_id": payment_id, "amount": 71})
    # Without an amount: what remains refundable, the captured amount less the lost dispute.
    payment = await quick.refund_payment({"payment_id": payment_id})
    assert [r.amount for r in payment.refunds or []] == [Decimal(70)]
    # A refund made at the provider is held to the same rule.
    with pytest.raises(InvalidDataError, match="was not booked"):
        await quick.record_provider_refund(
            {"payment_id": payment_id, "provider_refund_id": "re_y", "amount": Decimal(1)}
        )


async def test_evidence_and_accepting_are_answered_at_the_provider(quick: PaymentModule) -> None:
    _, session_id, payment_id = await captured_payment(quick)
    await deliver(quick, disputed(session_id, "evt_1"))
    [row] = await dispute_rows(quick)
    provider = quick.provider("pp_testing_default")
    assert isinstance(provider, TestingPaymentProvider)

    saved = await quick.submit_dispute_evidence(row["id"], {"customer_name": "Ada"}, submit=False)
    assert saved.status == "needs_response" and saved.evidence_submitted_at is None
    # The same call again is the same provider call (one idempotency key).
    await quick.submit_dispute_evidence(row["id"], {"customer_name": "Ada"}, submit=False)
    assert provider.count("submit_dispute_evidence") == 2
    assert len({key for (method, key) in provider.calls if method == "submit_dispute_evidence"}) == 1

    submitted = await quick.submit_dispute_evidence(row["id"], {"customer_name": "Ada"}, submit=True)
    assert submitted.status == "under_review" and submitted.evidence_submitted_at is not None
    accepted = await quick.accept_dispute(row["id"])
    assert (accepted.status, accepted.accepted_at is not None, accepted.closed_at is not None) == (
        "lost",
        True,
        True,
    )
    assert [c["status"] for c in await events(quick, "payment.dispute.closed")] == ["lost"]
    # Closed: nothing more to answer.
    with pytest.raises(NotAllowedError, match="closed"):
        await quick.accept_dispute(row["id"])
    with pytest.raises(NotAllowedError, match="closed"):
        await quick.submit_dispute_evidence(row["id"], {}, submit=True)
    # The provider's own report of the loss changes nothing more.
    await deliver(quick, disputed(session_id, "evt_2", status="lost"))
    assert len(await events(quick, "payment.dispute.closed")) == 1
    assert payment_id


async def test_disputes_are_listed_and_filtered(quick: PaymentModule) -> None:
    _, first_session, first = await captured_payment(quick)
    _, second_session, second = await captured_payment(quick)
    await deliver(quick, disputed(first_session, "evt_1", dispute_id="dp_a", status="won"))
    await deliver(quick, disputed(second_session, "evt_2", dispute_id="dp_b"))
    items, count = await quick.list_and_count_disputes()
    assert count == 2 and [d.provider_dispute_id for d in items] == ["dp_b", "dp_a"]
    assert [d.payment_id for d in await quick.list_disputes({"status": "won"})] == [first]
    assert [d.payment_id for d in await quick.list_disputes({"payment_id": second})] == [second]
    assert len(await quick.list_disputes({"provider_id": "pp_testing_default"})) == 2
    one = await quick.retrieve_dispute(items[0].id)
    assert one.provider_dispute_id == "dp_b"


async def test_a_dispute_in_another_currency_is_not_recorded(quick: PaymentModule) -> None:
    _, session_id, _ = await captured_payment(quick)
    await deliver(quick, disputed(session_id, "evt_1", currency_code="eur"))
    assert await dispute_rows(quick) == []


async def test_a_provider_that_cannot_answer_disputes_is_refused_with_not_allowed(
    quick: PaymentModule,
) -> None:
    """The system provider (manual payments) has no dispute methods: the merchant answers elsewhere."""
    collection = await quick.create_payment_collections({"currency_code": "usd", "amount": 50})
    session = await quick.create_payment_session(
        collection.id, {"provider_id": "pp_system_default", "amount": 50, "currency_code": "usd"}
    )
    payment = await quick.authorize_payment_session(session.id)
    assert payment is not None
    await quick.capture_payment({"payment_id": payment.id})
    recorded = await quick.record_provider_dispute(
        {
            "payment_id": payment.id,
            "dispute": {
                "id": "dp_manual",
                "amount": "50",
                "currency_code": "usd",
                "status": "needs_response",
            },
        }
    )
    assert recorded is not None and recorded.provider_id == "pp_system_default"
    with pytest.raises(NotAllowedError, match="does not take dispute evidence"):
        await quick.submit_dispute_evidence(recorded.id, {"note": "x"}, submit=True)
    with pytest.raises(NotAllowedError, match="cannot accept disputes"):
        await quick.accept_dispute(recorded.id)
    assert (await quick.retrieve_dispute(recorded.id)).status == "needs_response"
