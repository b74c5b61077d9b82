"""Refunds the provider reports (issue 17): made outside paymod and booked once, never past what was
captured; made by paymod and failed at the provider since. Through the testing provider's webhooks,
received and processed by the worker, on both databases."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from test_webhooks import quick as quick  # the fixture: processed at once, retried once

from paymod import PaymentModule
from paymod.persistence.tables import event_outbox, payment, refund
from paymod.providers.testing import SIGNATURE_HEADER, sign
from paymod.webhooks.inbox import list_webhook_events, receive_webhook
from paymod.webhooks.worker import Worker

SECRET = "whsec_testing"
PROVIDER = "testing_default"


async def captured_payment(module: PaymentModule, amount: int = 100) -> tuple[str, str, str]:
    """(collection, session, payment) of a payment captured in full."""
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": amount})
    session = await module.create_payment_session(
        collection.id, {"provider_id": "pp_testing_default", "amount": amount, "currency_code": "usd"}
    )
    payment = await module.authorize_payment_session(session.id)
    assert payment is not None
    await module.capture_payment({"payment_id": payment.id})
    return collection.id, session.id, payment.id


async def deliver(module: PaymentModule, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    await receive_webhook(module, PROVIDER, raw, {SIGNATURE_HEADER: sign(raw, SECRET)})
    worker = Worker(module)
    try:
        for _ in range(20):
            if not await worker.run_once():
                break
    finally:
        await worker.close()


async def refund_rows(module: PaymentModule, payment_id: str) -> list[dict[str, Any]]:
    async with module.database.read() as conn:
        found = await conn.execute(select(refund).where(refund.c.payment_id == payment_id))
        return [dict(r) for r in found.mappings()]


async def status(module: PaymentModule, payment_id: str) -> str:
    """The payment's stored status (`Ledger.refresh_status` keeps it)."""
    async with module.database.read() as conn:
        found = await conn.execute(select(payment.c.status).where(payment.c.id == payment_id))
        return str(found.scalar_one())


async def events(module: PaymentModule, name: str) -> list[dict[str, Any]]:
    async with module.database.read() as conn:
        found = await conn.execute(select(event_outbox.c.data).where(event_outbox.c.name == name))
        return [dict(r) for r in found.scalars()]


async def test_an_external_refund_is_booked_once(quick: PaymentModule) -> None:
    collection_id, session_id, payment_id = await captured_payment(quick)
    body = {"id": "evt_r1", "action": "refunded", "session_id": session_id, "refund_id": "re_1", "amount": 30}
    await deliver(quick, body)
    # The same refund again, under another event id (Stripe sends charge.refunded and refund.created).
    await deliver(quick, {**body, "id": "evt_r2"})
    [row] = await refund_rows(quick, payment_id)
    assert (row["amount"], row["provider_refund_id"], row["refund_reason_id"]) == (Decimal(30), "re_1", None)
    assert (row["note"], row["metadata"]) == ("refunded at the provider", {"external": True})
    assert await status(quick, payment_id) == "partially_refunded"
    collection = await quick.retrieve_payment_collection(collection_id)
    assert collection.refunded_amount == Decimal(30)
    assert await events(quick, "payment.refunded") == [
        {"id": payment_id, "refund_id": row["id"], "external": True}
    ]
    statuses = sorted(e["status"] for e in await list_webhook_events(quick))
    assert statuses == ["ignored", "processed"]


async def test_an_external_refund_past_what_was_captured_is_not_booked(quick: PaymentModule) -> None:
    """Retried (a capture reported later may make room), then parked as failed with a clear error."""
    _, session_id, payment_id = await captured_payment(quick)
    await quick.refund_payment({"payment_id": payment_id, "amount": 80})
    body = {
        "id": "evt_big",
        "action": "refunded",
        "session_id": session_id,
        "refund_id": "re_big",
        "amount": 30,
    }
    await deliver(quick, body)
    worker = Worker(quick)
    for _ in range(40):
        await worker.run_once()
        [event] = await list_webhook_events(quick)
        if event["status"] == "failed":
            break
        await asyncio.sleep(0.1)
    await worker.close()
    assert (event["status"], event["attempts"]) == ("failed", 2)
    assert "refund re_big of 30 usd was not booked" in event["last_error"]
    rows = await refund_rows(quick, payment_id)
    assert [r["amount"] for r in rows] == [Decimal(80)]
    assert await status(quick, payment_id) == "partially_refunded"


async def test_a_webhook_about_paymods_own_refund_books_nothing(quick: PaymentModule) -> None:
    _, session_id, payment_id = await captured_payment(quick)
    await quick.refund_payment({"payment_id": payment_id, "amount": 40})
    [own] = await refund_rows(quick, payment_id)
    # The testing provider answers its refund id, and paymod stores it.
    assert own["provider_refund_id"] == f"tre_{own['id']}"
    body = {
        "id": "evt_o",
        "action": "refunded",
        "session_id": session_id,
        "refund_id": own["provider_refund_id"],
    }
    await deliver(quick, {**body, "amount": 40})
    # Named by paymod's id only (a webhook that came before paymod stored the provider's id).
    await deliver(
        quick, {**body, "id": "evt_o2", "refund_id": "re_other", "paymod_refund_id": own["id"], "amount": 40}
    )
    assert [r["id"] for r in await refund_rows(quick, payment_id)] == [own["id"]]
    assert await status(quick, payment_id) == "partially_refunded"


async def test_a_refund_failed_at_the_provider_counts_as_captured_again(quick: PaymentModule) -> None:
    collection_id, session_id, payment_id = await captured_payment(quick)
    await quick.refund_payment({"payment_id": payment_id})
    [own] = await refund_rows(quick, payment_id)
    assert await status(quick, payment_id) == "refunded"
    body = {
        "id": "evt_f",
        "action": "refund_failed",
        "session_id": session_id,
        "refund_id": own["provider_refund_id"],
        "reason": "expired_or_canceled_card",
    }
    await deliver(quick, body)
    await deliver(quick, {**body, "id": "evt_f2"})  # again: nothing more to do
    [row] = await refund_rows(quick, payment_id)
    assert row["deleted_at"] is not None
    assert row["metadata"] == {"failed": "expired_or_canceled_card"}
    found = await quick.retrieve_payment(payment_id, {"relations": ["refunds"]})
    assert (await status(quick, payment_id), found.refunds) == ("captured", [])
    assert (await quick.retrieve_payment_collection(collection_id)).refunded_amount == Decimal(0)
    assert await events(quick, "payment.refund.failed") == [
        {"id": own["id"], "reason": "expired_or_canceled_card"}
    ]
    # The money is refundable again, and a late report of the failed refund does not book it.
    await deliver(quick, {**body, "id": "evt_late", "action": "refunded", "amount": 100})
    assert len(await refund_rows(quick, payment_id)) == 1
    await quick.refund_payment({"payment_id": payment_id, "amount": 100})
    assert await status(quick, payment_id) == "refunded"


async def test_the_module_books_a_provider_refund_directly(quick: PaymentModule) -> None:
    _, _, payment_id = await captured_payment(quick)
    booked = await quick.record_provider_refund(
        {"payment_id": payment_id, "provider_refund_id": "re_d", "amount": "12.5"}
    )
    assert booked is not None and booked.provider_refund_id == "re_d"
    again = await quick.record_provider_refund(
        {"payment_id": payment_id, "provider_refund_id": "re_d", "amount": "12.5"}
    )
    assert again is None
    failed = await quick.fail_provider_refund({"payment_id": payment_id, "provider_refund_id": "re_d"})
    assert failed is not None and failed.metadata == {"external": True, "failed": "failed"}
