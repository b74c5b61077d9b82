"""Inbound webhooks (verified inbox, exactly-once processing) and outbound events (outbox, endpoints)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from paymod import PaymentModule, ProviderError
from paymod.persistence.tables import event_outbox, webhook_event
from paymod.providers.testing import SIGNATURE_HEADER, TestingPaymentProvider, sign
from paymod.webhooks import SignatureVerificationError, sign_payload, verify_signature
from paymod.webhooks.inbox import list_webhook_events, receive_webhook, replay_webhook_event, same_account
from paymod.webhooks.outbox import create_webhook_endpoint
from paymod.webhooks.worker import Worker

SECRET = "whsec_testing"
PROVIDER = "testing_default"


def signed(body: dict[str, Any], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, {SIGNATURE_HEADER: sign(raw, secret), "content-type": "application/json"}


@pytest.fixture
async def quick(database_url: str) -> AsyncIterator[PaymentModule]:
    """A module whose webhooks are processed at once and retried once."""
    providers = [
        {"resolve": "paymod.providers.testing", "id": "default", "options": {"webhook_secret": SECRET}}
    ]
    options = {"webhook_delay": 0, "webhook_retries": 1}
    async with await PaymentModule.connect(
        database_url, providers=providers, options=options, migrate=False
    ) as m:
        yield m


async def session_for(module: PaymentModule, amount: int = 100, **data: Any) -> tuple[str, str]:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": amount})
    session = await module.create_payment_session(
        collection.id,
        {"provider_id": "pp_testing_default", "amount": amount, "currency_code": "usd", "data": data},
    )
    return collection.id, session.id


async def drain(module: PaymentModule, worker: Worker | None = None) -> None:
    worker = worker or Worker(module)
    try:
        for _ in range(50):
            if not await worker.run_once():
                return
    finally:
        await worker.close()


async def count(module: PaymentModule, table: Any, *where: Any) -> int:
    async with module.database.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


async def test_a_verified_event_is_stored_once_and_authorizes_the_session(quick: PaymentModule) -> None:
    collection_id, session_id = await session_for(quick)
    raw, headers = signed({"id": "evt_1", "action": "authorized", "session_id": session_id, "amount": 100})
    first = await receive_webhook(quick, PROVIDER, raw, headers)
    again = await receive_webhook(quick, PROVIDER, raw, headers)
    assert (first.duplicate, again.duplicate, again.id) == (False, True, first.id)
    await drain(quick)
    payments = await quick.list_payments({"payment_session_id": session_id})
    assert len(payments) == 1
    assert (await quick.retrieve_payment_collection(collection_id)).status == "authorized"
    [event] = await list_webhook_events(quick)
    assert (event["status"], event["attempts"]) == ("processed", 1)


async def test_ten_concurrent_deliveries_of_one_event_are_processed_once(quick: PaymentModule) -> None:
    provider = quick.provider("pp_testing_default")
    assert isinstance(provider, TestingPaymentProvider)
    _, session_id = await session_for(quick)
    raw, headers = signed({"id": "evt_dup", "action": "captured", "session_id": session_id, "amount": 100})
    results = await asyncio.gather(*(receive_webhook(quick, PROVIDER, raw, headers) for _ in range(10)))
    assert sum(not r.duplicate for r in results) == 1
    assert await count(quick, webhook_event) == 1
    await asyncio.gather(drain(quick), drain(quick))
    [payment] = await quick.list_payments({"payment_session_id": session_id}, {"relations": ["captures"]})
    assert [c.amount for c in payment.captures or []] == [Decimal(100)]
    assert provider.count("authorize_payment") == 1
    assert provider.count("capture_payment") == 0  # the provider reported the capture: not asked again


@pytest.mark.parametrize(
    "headers",
    [
        {SIGNATURE_HEADER: sign(b"{}", "wrong-secret")},
        {SIGNATURE_HEADER: "0" * 64},
        {},
    ],
    ids=["wrong-secret", "garbage", "missing"],
)
async def test_an_event_that_does_not_verify_is_refused_and_not_stored(
    quick: PaymentModule, headers: dict[str, str]
) -> None:
    _, session_id = await session_for(quick)
    raw = json.dumps(
        {"id": "evt_bad", "action": "captured", "session_id": session_id, "amount": 100}
    ).encode()
    with pytest.raises(ProviderError) as info:
        await receive_webhook(quick, PROVIDER, raw, headers)
    assert info.value.code == "invalid_signature"
    assert await count(quick, webhook_event) == 0


async def test_a_tampered_body_is_refused(quick: PaymentModule) -> None:
    _, session_id = await session_for(quick)
    raw, headers = signed({"id": "evt_t", "action": "captured", "session_id": session_id, "amount": 1})
    tampered = raw.replace(b'"amount": 1', b'"amount": 100')
    with pytest.raises(ProviderError):
        await receive_webhook(quick, PROVIDER, tampered, headers)
    assert await count(quick, webhook_event) == 0


async def test_captured_before_authorized_ends_captured_and_the_late_authorized_changes_nothing(
    quick: PaymentModule,
) -> None:
    collection_id, session_id = await session_for(quick)
    for event in (
        {"id": "evt_c", "action": "captured", "session_id": session_id, "amount": 100},
        {"id": "evt_a", "action": "authorized", "session_id": session_id, "amount": 100},
    ):
        raw, headers = signed(event)
        await receive_webhook(quick, PROVIDER, raw, headers)
        await drain(quick)
    [payment] = await quick.list_payments({"payment_session_id": session_id}, {"relations": ["captures"]})
    assert [c.amount for c in payment.captures or []] == [Decimal(100)]
    assert payment.captured_at is not None
    collection = await quick.retrieve_payment_collection(collection_id)
    assert (collection.status, collection.captured_amount) == ("completed", Decimal(100))


async def test_a_webhook_capture_racing_an_admin_capture_never_captures_twice(quick: PaymentModule) -> None:
    for round_ in range(5):
        collection_id, session_id = await session_for(quick)
        payment = await quick.authorize_payment_session(session_id)
        assert payment is not None
        raw, headers = signed(
            {"id": f"evt_r{round_}", "action": "captured", "session_id": session_id, "amount": 100}
        )
        await receive_webhook(quick, PROVIDER, raw, headers)
        results = await asyncio.gather(
            drain(quick),
            quick.capture_payment({"payment_id": payment.id, "amount": 100}),
            return_exceptions=True,
        )
        assert all(not isinstance(r, Exception) or "cannot capture more" in str(r) for r in results), results
        collection = await quick.retrieve_payment_collection(collection_id)
        assert collection.captured_amount == Decimal(100)
        assert len(await quick.list_payments({"payment_session_id": session_id})) == 1


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("failed", "error"),
        ("canceled", "canceled"),
        ("requires_more", "requires_more"),
        ("pending", "pending"),
    ],
)
async def test_non_payment_actions_record_the_session_status(
    quick: PaymentModule, action: str, status: str
) -> None:
    _, session_id = await session_for(quick, scenario="pending_authorization")
    raw, headers = signed({"id": f"evt_{action}", "action": action, "session_id": session_id, "amount": 100})
    await receive_webhook(quick, PROVIDER, raw, headers)
    await drain(quick)
    assert (await quick.retrieve_payment_session(session_id)).status == status


async def test_a_late_failure_does_not_downgrade_an_authorized_session(quick: PaymentModule) -> None:
    _, session_id = await session_for(quick)
    await quick.authorize_payment_session(session_id)
    raw, headers = signed({"id": "evt_late", "action": "failed", "session_id": session_id, "amount": 100})
    await receive_webhook(quick, PROVIDER, raw, headers)
    await drain(quick)
    assert (await quick.retrieve_payment_session(session_id)).status == "authorized"


async def test_an_event_that_keeps_failing_is_parked_as_failed_and_can_be_replayed(
    quick: PaymentModule,
) -> None:
    """webhook_retries=1: two attempts, then `failed`; a replay puts it back in the queue."""
    _, session_id = await session_for(quick, scenario="pending_authorization")
    raw, headers = signed({"id": "evt_wait", "action": "captured", "session_id": session_id, "amount": 100})
    received = await receive_webhook(quick, PROVIDER, raw, headers)
    worker = Worker(quick)
    for _ in range(40):
        await worker.run_once()
        [event] = await list_webhook_events(quick)
        if event["status"] == "failed":
            break
        await asyncio.sleep(0.1)
    await worker.close()
    assert (event["status"], event["attempts"]) == ("failed", 2)
    assert "not authorized yet" in event["last_error"]
    assert [e["id"] for e in await list_webhook_events(quick, status="failed")] == [received.id]

    await quick.update_payment_session({"id": session_id, "data": {"payment_received": True}})
    await replay_webhook_event(quick, received.id)
    await drain(quick)
    [event] = await list_webhook_events(quick)
    assert event["status"] == "processed"
    [payment] = await quick.list_payments({"payment_session_id": session_id})
    assert payment.captured_at is not None


async def test_zero_retries_means_one_attempt(database_url: str) -> None:
    providers = [
        {"resolve": "paymod.providers.testing", "id": "default", "options": {"webhook_secret": SECRET}}
    ]
    options = {"webhook_delay": 0, "webhook_retries": 0}
    async with await PaymentModule.connect(
        database_url, providers=providers, options=options, migrate=False
    ) as m:
        _, session_id = await session_for(m, scenario="pending_authorization")
        raw, headers = signed({"id": "evt_0", "action": "captured", "session_id": session_id, "amount": 100})
        await receive_webhook(m, PROVIDER, raw, headers)
        await drain(m)
        [event] = await list_webhook_events(m)
        assert (event["status"], event["attempts"]) == ("failed", 1)


async def test_a_webhook_delay_holds_the_event_back(database_url: str) -> None:
    providers = [
        {"resolve": "paymod.providers.testing", "id": "default", "options": {"webhook_secret": SECRET}}
    ]
    async with await PaymentModule.connect(
        database_url, providers=providers, options={"webhook_delay": 3600}, migrate=False
    ) as m:
        _, session_id = await session_for(m)
        raw, headers = signed(
            {"id": "evt_later", "action": "authorized", "session_id": session_id, "amount": 1}
        )
        await receive_webhook(m, PROVIDER, raw, headers)
        await drain(m)
        [event] = await list_webhook_events(m)
        assert (event["status"], event["attempts"]) == ("pending", 0)


async def test_every_change_writes_its_events_and_subscribers_receive_them_in_order(
    quick: PaymentModule,
) -> None:
    received: list[dict[str, Any]] = []

    async def record(event: dict[str, Any]) -> None:
        received.append(event)

    quick.subscribe("*", record)
    collection_id, session_id = await session_for(quick)
    payment = await quick.authorize_payment_session(session_id)
    assert payment is not None
    await quick.capture_payment({"payment_id": payment.id, "amount": 60})
    await quick.refund_payment({"payment_id": payment.id, "amount": 10})
    await drain(quick)
    names = [e["type"] for e in received if e["payment_collection_id"] == collection_id]
    assert names == [
        "payment.payment-collection.created",
        "payment.payment-session.created",
        "payment.payment-collection.updated",  # awaiting: a session exists
        "payment.payment-session.updated",
        "payment.payment.created",
        "payment.payment-collection.updated",
        "payment.capture.created",
        "payment.captured",
        "payment.payment-collection.updated",
        "payment.refund.created",
        "payment.refunded",
        "payment.payment-collection.updated",
    ]
    assert len({e["id"] for e in received}) == len(received)
    assert await count(quick, event_outbox, event_outbox.c.status == "pending") == 0


async def test_a_failed_capture_writes_no_capture_event(quick: PaymentModule) -> None:
    _, session_id = await session_for(quick, scenario="capture_error")
    payment = await quick.authorize_payment_session(session_id)
    assert payment is not None
    with pytest.raises(ProviderError):
        await quick.capture_payment({"payment_id": payment.id})
    assert await count(quick, event_outbox, event_outbox.c.name == "payment.captured") == 0


async def test_a_failing_subscriber_is_retried_until_it_succeeds(quick: PaymentModule) -> None:
    calls: list[str] = []

    async def flaky(event: dict[str, Any]) -> None:
        calls.append(event["id"])
        if len(calls) == 1:
            raise RuntimeError("subscriber down")

    quick.subscribe("payment.payment-collection.created", flaky)
    await quick.create_payment_collections({"currency_code": "usd", "amount": 1})
    worker = Worker(quick)
    for _ in range(40):
        await worker.run_once()
        if len(calls) >= 2:
            break
        await asyncio.sleep(0.1)
    await worker.close()
    assert len(calls) == 2 and calls[0] == calls[1]


def test_outbound_signatures_verify_and_reject_tampering_staleness_and_other_secrets() -> None:
    body = b'{"id":"evt_1"}'
    header = sign_payload(body, "whsec_a", timestamp=1_000_000)
    verify_signature(body, header, "whsec_a", now=1_000_100)
    for payload, secret, now in (
        (b'{"id":"evt_2"}', "whsec_a", 1_000_100),
        (body, "whsec_b", 1_000_100),
        (body, "whsec_a", 1_000_301),
    ):
        with pytest.raises(SignatureVerificationError):
            verify_signature(payload, header, secret, now=now)
    with pytest.raises(SignatureVerificationError):
        verify_signature(body, "v1=abc", "whsec_a")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A loopback HTTP receiver (plain asyncio) that fails its first three deliveries."""
    seen: list[tuple[dict[str, str], bytes]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        seen.append((headers, body))
        status = "503 Service Unavailable" if len(seen) <= 3 else "200 OK"
        writer.write(f"HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook", seen
    finally:
        server.close()
        await server.wait_closed()


async def test_an_endpoint_that_fails_three_times_gets_the_signed_event_on_the_fourth(
    quick: PaymentModule, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, seen = receiver
    endpoint = await create_webhook_endpoint(quick, url, events=["payment.payment-collection.created"])
    collection = await quick.create_payment_collections({"currency_code": "usd", "amount": 5})
    worker = Worker(quick, delivery_retry_base=0.05)
    for _ in range(100):
        await worker.run_once()
        if len(seen) >= 4:
            break
        await asyncio.sleep(0.05)
    await worker.close()
    assert len(seen) == 4
    headers, body = seen[-1]
    verify_signature(body, headers["paymod-signature"], endpoint["secret"])
    document = json.loads(body)
    assert document["type"] == "payment.payment-collection.created"
    assert document["data"] == {"id": collection.id}
    assert headers["paymod-event-id"] == document["id"]
    assert len({json.loads(b)["id"] for _, b in seen}) == 1


def test_a_provider_speaks_for_its_own_sessions_and_its_family_on_one_configuration() -> None:
    assert same_account("pp_stripe_stripe", "pp_stripe_stripe")
    assert same_account("pp_stripe_stripe", "pp_stripe-ideal_stripe")
    assert not same_account("pp_testing_default", "pp_stripe_stripe")
    assert not same_account("pp_stripe_eu", "pp_stripe_us")
    assert not same_account("pp_system_default", "pp_system_default_2")


async def test_a_verified_event_naming_another_providers_session_is_ignored(quick: PaymentModule) -> None:
    collection = await quick.create_payment_collections({"currency_code": "usd", "amount": 10})
    session = await quick.create_payment_session(
        collection.id, {"provider_id": "pp_system_default", "amount": 10, "currency_code": "usd"}
    )
    raw, headers = signed({"id": "evt_x", "action": "captured", "session_id": session.id, "amount": 10})
    await receive_webhook(quick, PROVIDER, raw, headers)
    await drain(quick)
    [event] = await list_webhook_events(quick)
    assert event["status"] == "ignored"
    assert await quick.list_payments({"payment_session_id": session.id}) == []


async def test_an_unverifiable_event_that_asks_nothing_is_not_stored(quick: PaymentModule) -> None:
    received = await receive_webhook(quick, "system_default", b'{"anything": 1}', {})
    assert (received.id, received.action) == ("", "not_supported")
    assert await count(quick, webhook_event) == 0


async def test_a_final_captured_report_for_less_than_the_payment_closes_it(quick: PaymentModule) -> None:
    """A provider that says nothing stays capturable (Stripe's `payment_intent.succeeded` after a
    partial capture) closes the payment: the rest is released, whatever the report's repetitions."""
    collection_id, session_id = await session_for(quick, amount=100)
    payment = await quick.authorize_payment_session(session_id)
    assert payment is not None
    event = {"id": "evt_final", "action": "captured", "session_id": session_id, "amount": 30}
    for delivery in ({**event, "remaining_capturable": 0}, {**event, "remaining_capturable": 0}):
        raw, headers = signed(delivery)
        await receive_webhook(quick, PROVIDER, raw, headers)
        await drain(quick)
    again = {**event, "id": "evt_final_again", "remaining_capturable": 0}
    raw, headers = signed(again)
    await receive_webhook(quick, PROVIDER, raw, headers)
    await drain(quick)

    stored = await quick.retrieve_payment(payment.id, {"relations": ["captures"]})
    assert [c.amount for c in stored.captures or []] == [Decimal(30)]
    assert (stored.released_amount, stored.canceled_at is not None) == (Decimal(70), True)
    collection = await quick.retrieve_payment_collection(collection_id)
    assert (collection.status, collection.captured_amount) == ("partially_captured", Decimal(30))
