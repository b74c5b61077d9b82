"""Authorizations voided at the provider (issue 17): a `canceled` report on an authorized session
cancels its payment in paymod (or closes it after a partial capture), once. Through the testing
provider's webhooks, received and processed by the worker, on both databases."""

from __future__ import annotations

from decimal import Decimal

import pytest
from test_provider_refunds import deliver, events, quick, status

from paymod import PaymentModule
from paymod.domain.errors import InvalidDataError, ProviderError
from paymod.webhooks.inbox import list_webhook_events

__all__ = ["quick"]


async def authorized_payment(
    module: PaymentModule, amount: int = 100, scenario: str = "authorized"
) -> tuple[str, str, str]:
    """(collection, session, payment) of an authorized payment."""
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": amount})
    session = await module.create_payment_session(
        collection.id,
        {
            "provider_id": "pp_testing_default",
            "amount": amount,
            "currency_code": "usd",
            "data": {"scenario": scenario},
        },
    )
    payment = await module.authorize_payment_session(session.id)
    assert payment is not None
    return collection.id, session.id, payment.id


async def test_a_void_at_the_provider_cancels_the_authorized_payment_once(quick: PaymentModule) -> None:
    collection_id, session_id, payment_id = await authorized_payment(quick)
    body = {"id": "evt_v1", "action": "canceled", "session_id": session_id}
    await deliver(quick, body)
    await deliver(quick, {**body, "id": "evt_v2"})  # reported again: nothing more to do
    found = await quick.retrieve_payment(payment_id)
    assert found.canceled_at is not None and found.released_amount is None
    assert await status(quick, payment_id) == "canceled"
    collection = await quick.retrieve_payment_collection(collection_id)
    assert (collection.status, collection.authorized_amount) == ("canceled", Decimal(0))
    # The session keeps what it was: authorized (its payment is what the provider voided).
    assert (await quick.retrieve_payment_session(session_id)).status == "authorized"
    assert await events(quick, "payment.canceled") == [{"id": payment_id, "at_provider": True}]
    assert sorted(e["status"] for e in await list_webhook_events(quick)) == ["ignored", "processed"]
    with pytest.raises(InvalidDataError, match="has been canceled"):
        await quick.capture_payment({"payment_id": payment_id})


async def test_a_void_after_a_partial_capture_closes_the_payment(quick: PaymentModule) -> None:
    collection_id, session_id, payment_id = await authorized_payment(quick)
    await quick.capture_payment({"payment_id": payment_id, "amount": 30})
    await deliver(quick, {"id": "evt_p", "action": "canceled", "session_id": session_id})
    found = await quick.retrieve_payment(payment_id, {"relations": ["captures"]})
    assert found.canceled_at is not None and found.released_amount == Decimal(70)
    assert [c.amount for c in found.captures or []] == [Decimal(30)]
    assert await status(quick, payment_id) == "canceled"
    collection = await quick.retrieve_payment_collection(collection_id)
    assert (collection.status, collection.captured_amount) == ("partially_captured", Decimal(30))
    assert await events(quick, "payment.canceled") == [{"id": payment_id, "at_provider": True}]
    # What was captured stays refundable.
    await quick.refund_payment({"payment_id": payment_id, "amount": 30})


async def test_a_void_of_a_captured_payment_changes_nothing(quick: PaymentModule) -> None:
    collection_id, session_id, payment_id = await authorized_payment(quick)
    await quick.capture_payment({"payment_id": payment_id})
    await deliver(quick, {"id": "evt_c", "action": "canceled", "session_id": session_id})
    found = await quick.retrieve_payment(payment_id)
    assert (found.canceled_at, found.released_amount) == (None, None)
    assert await status(quick, payment_id) == "captured"
    assert (await quick.retrieve_payment_collection(collection_id)).status == "completed"
    assert await events(quick, "payment.canceled") == []


async def test_a_void_of_a_payment_paymod_canceled_changes_nothing(quick: PaymentModule) -> None:
    """paymod's own cancel makes the provider report the void too (Stripe: payment_intent.canceled)."""
    _, session_id, payment_id = await authorized_payment(quick)
    await quick.cancel_payment(payment_id)
    before = await quick.retrieve_payment(payment_id)
    await deliver(quick, {"id": "evt_own", "action": "canceled", "session_id": session_id})
    assert (await quick.retrieve_payment(payment_id)).canceled_at == before.canceled_at
    assert await events(quick, "payment.canceled") == []


async def test_canceled_before_authorization_still_cancels_the_session(quick: PaymentModule) -> None:
    collection = await quick.create_payment_collections({"currency_code": "usd", "amount": 10})
    session = await quick.create_payment_session(
        collection.id, {"provider_id": "pp_testing_default", "amount": 10, "currency_code": "usd"}
    )
    await deliver(quick, {"id": "evt_s", "action": "canceled", "session_id": session.id})
    assert (await quick.retrieve_payment_session(session.id)).status == "canceled"
    assert await events(quick, "payment.canceled") == []


async def test_the_module_records_a_provider_cancel_directly(quick: PaymentModule) -> None:
    _, _, payment_id = await authorized_payment(quick)
    canceled = await quick.record_provider_cancel(payment_id)
    assert canceled is not None and canceled.canceled_at is not None
    assert await quick.record_provider_cancel(payment_id) is None


async def test_a_capture_refused_because_the_provider_voided_cancels_the_payment(
    quick: PaymentModule,
) -> None:
    """The void's report has not come (or was lost): the refused capture asks the provider."""
    collection_id, session_id, payment_id = await authorized_payment(quick, scenario="voided")
    with pytest.raises(ProviderError, match="voided at the provider") as refused:
        await quick.capture_payment({"payment_id": payment_id})
    assert refused.value.code == "authorization_voided"
    found = await quick.retrieve_payment(payment_id, {"relations": ["captures"]})
    assert found.canceled_at is not None and (found.captures, found.released_amount) == ([], None)
    assert await status(quick, payment_id) == "canceled"
    assert (await quick.retrieve_payment_collection(collection_id)).status == "canceled"
    # The report that comes late finds it canceled already.
    await deliver(quick, {"id": "evt_late", "action": "canceled", "session_id": session_id})
    assert await events(quick, "payment.canceled") == [{"id": payment_id, "at_provider": True}]
    assert [e["status"] for e in await list_webhook_events(quick)] == ["ignored"]
    with pytest.raises(InvalidDataError, match="has been canceled"):
        await quick.capture_payment({"payment_id": payment_id})


async def test_a_capture_refused_for_another_reason_leaves_the_payment_authorized(
    quick: PaymentModule,
) -> None:
    _, _, payment_id = await authorized_payment(quick, scenario="capture_error")
    with pytest.raises(ProviderError) as refused:
        await quick.capture_payment({"payment_id": payment_id})
    assert refused.value.message == "The testing provider failed to capture the payment."
    assert await status(quick, payment_id) == "authorized"
    assert await events(quick, "payment.canceled") == []
