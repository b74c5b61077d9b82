"""Concurrent captures, refunds and authorizations on real databases (SQLite and PostgreSQL).

The guards run under a lock on the payment row, so however requests interleave, no more is captured
than authorized and no more is refunded than captured (DESIGN.md "Money", "Workflows ... locking").
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

from paymod import PaymentModule
from paymod.domain.errors import InvalidDataError, NotAllowedError
from paymod.domain.rules import CAPTURE_EXCEEDS, REFUND_EXCEEDS
from paymod.services.dto import PaymentCollectionDTO, PaymentDTO

D = Decimal
PROVIDER = "pp_testing_default"


async def authorized_payment(
    module: PaymentModule, amount: int | str = 500, currency: str = "usd"
) -> tuple[PaymentCollectionDTO, PaymentDTO]:
    collection = await module.create_payment_collections({"currency_code": currency, "amount": amount})
    session = await module.create_payment_session(
        collection.id, {"provider_id": PROVIDER, "amount": amount, "currency_code": currency, "data": {}}
    )
    payment = await module.authorize_payment_session(session.id)
    assert payment is not None
    return collection, payment


def split(results: Sequence[object]) -> tuple[list[PaymentDTO], list[BaseException]]:
    ok = [r for r in results if isinstance(r, PaymentDTO)]
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(ok) + len(errors) == len(results), results
    return ok, errors


async def test_concurrent_captures_never_exceed_the_authorized_amount(module: PaymentModule) -> None:
    collection, payment = await authorized_payment(module, 500)

    results = await asyncio.gather(
        *(module.capture_payment({"payment_id": payment.id, "amount": 30}) for _ in range(20)),
        return_exceptions=True,
    )

    ok, errors = split(results)
    assert len(ok) == 16, errors
    assert len(errors) == 4
    for error in errors:
        assert isinstance(error, InvalidDataError), repr(error)
        assert error.message == CAPTURE_EXCEEDS
    captures = await module.list_captures({"payment_id": payment.id})
    assert len(captures) == 16
    assert all(c.amount == 30 for c in captures)
    assert sum(c.amount for c in captures) == D(480)
    stored = await module.retrieve_payment(payment.id)
    assert stored.captured_at is None  # 480 of 500: not fully captured
    collection = await module.retrieve_payment_collection(collection.id)
    assert collection.captured_amount == D(480)
    assert collection.authorized_amount == D(500)
    assert collection.status == "authorized"

    # what remains (20) can still be captured, and then the payment is complete
    final = await module.capture_payment({"payment_id": payment.id})
    assert sum(c.amount for c in final.captures or []) == D(500)
    assert final.captured_at is not None
    collection = await module.retrieve_payment_collection(collection.id)
    assert collection.status == "completed"
    assert collection.captured_amount == D(500)


async def test_concurrent_captures_without_amount_capture_once(module: PaymentModule) -> None:
    collection, payment = await authorized_payment(module, 500)

    results = await asyncio.gather(
        *(module.capture_payment({"payment_id": payment.id}) for _ in range(10)), return_exceptions=True
    )

    ok, errors = split(results)
    assert errors == []
    assert len(ok) == 10
    captures = await module.list_captures({"payment_id": payment.id})
    assert [c.amount for c in captures] == [D(500)]
    collection = await module.retrieve_payment_collection(collection.id)
    assert collection.captured_amount == D(500)
    assert collection.status == "completed"


async def test_concurrent_refunds_never_exceed_the_captured_amount(module: PaymentModule) -> None:
    collection, payment = await authorized_payment(module, 500)
    await module.capture_payment({"payment_id": payment.id, "amount": 500})

    results = await asyncio.gather(
        *(module.refund_payment({"payment_id": payment.id, "amount": 30}) for _ in range(20)),
        return_exceptions=True,
    )

    ok, errors = split(results)
    assert len(ok) == 16, errors
    assert len(errors) == 4
    for error in errors:
        assert isinstance(error, InvalidDataError), repr(error)
        assert error.message == REFUND_EXCEEDS
    refunds = await module.list_refunds({"payment_id": payment.id})
    assert len(refunds) == 16
    assert sum(r.amount for r in refunds) == D(480)
    collection = await module.retrieve_payment_collection(collection.id)
    assert collection.refunded_amount == D(480)
    assert collection.captured_amount == D(500)
    assert collection.status == "completed"


async def test_concurrent_refunds_without_amount_refund_what_remains_once(module: PaymentModule) -> None:
    collection, payment = await authorized_payment(module, 500)
    await module.capture_payment({"payment_id": payment.id, "amount": 500})
    await module.refund_payment({"payment_id": payment.id, "amount": 100})

    results = await asyncio.gather(
        *(module.refund_payment({"payment_id": payment.id}) for _ in range(10)), return_exceptions=True
    )

    ok, errors = split(results)
    assert len(ok) == 1, errors
    assert len(errors) == 9
    assert all(isinstance(e, InvalidDataError) and e.message == REFUND_EXCEEDS for e in errors), errors
    refunds = await module.list_refunds({"payment_id": payment.id})
    assert sorted(r.amount for r in refunds) == [D(100), D(400)]
    collection = await module.retrieve_payment_collection(collection.id)
    assert collection.refunded_amount == D(500)


async def test_concurrent_captures_and_refunds_keep_refunds_within_captures(module: PaymentModule) -> None:
    collection, payment = await authorized_payment(module, 500)
    await module.capture_payment({"payment_id": payment.id, "amount": 100})

    calls = []
    for i in range(10):
        calls.append(module.capture_payment({"payment_id": payment.id, "amount": 40}))
        calls.append(module.refund_payment({"payment_id": payment.id, "amount": 25 + i}))
    results = await asyncio.gather(*calls, return_exceptions=True)

    # only refunds may fail, and only because not enough was captured yet when they ran
    for i, result in enumerate(results):
        if isinstance(result, BaseException):
            assert i % 2 == 1, repr(result)
            assert isinstance(result, InvalidDataError) and result.message == REFUND_EXCEEDS, repr(result)
    # every refund that succeeded fitted in what was captured at the time; so does their sum now
    stored = await module.retrieve_payment(payment.id, {"relations": ["captures", "refunds"]})
    captured = sum((c.amount for c in stored.captures or []), D(0))
    refunded = sum((r.amount for r in stored.refunds or []), D(0))
    assert captured == D(500)  # 100 + 10 x 40 fits exactly in 500
    assert refunded <= captured + D("0.01")
    assert stored.captured_at is not None
    collection = await module.retrieve_payment_collection(collection.id)
    assert collection.captured_amount == captured
    assert collection.refunded_amount == refunded


async def test_concurrent_authorizations_create_one_payment(module: PaymentModule) -> None:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 500})
    session = await module.create_payment_session(
        collection.id, {"provider_id": PROVIDER, "amount": 500, "currency_code": "usd", "data": {}}
    )

    results = await asyncio.gather(
        *(module.authorize_payment_session(session.id) for _ in range(10)), return_exceptions=True
    )

    ok, errors = split(results)
    assert errors == []
    assert len(ok) == 10
    assert len({p.id for p in ok}) == 1
    payments = await module.list_payments({"payment_session_id": session.id})
    assert [p.id for p in payments] == [ok[0].id]
    assert payments[0].amount == D(500)
    stored = await module.retrieve_payment_session(session.id)
    assert stored.status == "authorized"
    assert stored.authorized_at is not None
    collection = await module.retrieve_payment_collection(collection.id)
    assert collection.status == "authorized"
    assert collection.authorized_amount == D(500)
    # and a later call still returns that payment
    again = await module.authorize_payment_session(session.id)
    assert again is not None and again.id == ok[0].id


async def test_concurrent_captures_on_several_payments_keep_collection_totals(module: PaymentModule) -> None:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 300})
    payments = []
    for _ in range(3):
        session = await module.create_payment_session(
            collection.id, {"provider_id": PROVIDER, "amount": 100, "currency_code": "usd", "data": {}}
        )
        payment = await module.authorize_payment_session(session.id)
        assert payment is not None
        payments.append(payment)

    # 6 x 20 on each payment of 100: 5 fit on each
    calls = [
        module.capture_payment({"payment_id": payment.id, "amount": 20})
        for _ in range(6)
        for payment in payments
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)

    # a capture on a fully captured payment is a no-op (Medusa), or fails the guard when it runs before
    # the completing capture has stamped captured_at: never is more booked than authorized
    _, errors = split(results)
    assert len(errors) <= 3
    assert all(isinstance(e, InvalidDataError) and e.message == CAPTURE_EXCEEDS for e in errors), errors
    assert len(await module.list_captures({"payment_id": [p.id for p in payments]})) == 15
    rows = await module.list_payments(
        {"payment_collection_id": collection.id}, {"relations": ["captures", "refunds"]}
    )
    assert len(rows) == 3
    for row in rows:
        assert sum((c.amount for c in row.captures or []), D(0)) == D(100)
        assert row.captured_at is not None
    total = sum((c.amount for row in rows for c in row.captures or []), D(0))
    collection = await module.retrieve_payment_collection(collection.id)
    assert collection.captured_amount == total == D(300)
    assert collection.authorized_amount == D(300)
    assert collection.status == "completed"

    # concurrent refunds on the three payments: the collection's refunded amount is their sum
    refunds = [
        module.refund_payment({"payment_id": payment.id, "amount": 15})
        for _ in range(4)
        for payment in payments
    ]
    await asyncio.gather(*refunds)
    rows = await module.list_payments({"payment_collection_id": collection.id}, {"relations": ["refunds"]})
    refunded = sum((r.amount for row in rows for r in row.refunds or []), D(0))
    assert refunded == D(180)
    collection = await module.retrieve_payment_collection(collection.id)
    assert collection.refunded_amount == refunded
    assert collection.captured_amount == D(300)


async def test_concurrent_partial_captures_on_several_payments_keep_collection_totals(
    module: PaymentModule,
) -> None:
    collection = await module.create_payment_collections({"currency_code": "kwd", "amount": "30.003"})
    payments = []
    for _ in range(3):
        session = await module.create_payment_session(
            collection.id, {"provider_id": PROVIDER, "amount": "10.001", "currency_code": "kwd", "data": {}}
        )
        payment = await module.authorize_payment_session(session.id)
        assert payment is not None
        payments.append(payment)

    amounts = ["1.111", "2.222", "0.333", "3.001"]
    calls = [
        module.capture_payment({"payment_id": payment.id, "amount": amount})
        for amount in amounts
        for payment in payments[:2]
    ]
    await asyncio.gather(*calls)

    rows = await module.list_payments({"payment_collection_id": collection.id}, {"relations": ["captures"]})
    per_payment = {row.id: sum((c.amount for c in row.captures or []), D(0)) for row in rows}
    assert per_payment == {payments[0].id: D("6.667"), payments[1].id: D("6.667"), payments[2].id: D(0)}
    collection = await module.retrieve_payment_collection(collection.id)
    assert collection.captured_amount == D("13.334")
    assert collection.authorized_amount == D("30.003")
    assert collection.status == "authorized"


async def test_cancel_racing_a_full_capture_lets_only_one_win(module: PaymentModule) -> None:
    """A payment ends either fully captured (cancel refused) or canceled (capture refused), never both."""
    for _ in range(8):
        collection, payment = await authorized_payment(module, 100)

        capture, cancel = await asyncio.gather(
            module.capture_payment({"payment_id": payment.id, "amount": 100}),
            module.cancel_payment(payment.id),
            return_exceptions=True,
        )

        stored = await module.retrieve_payment(payment.id, {"relations": ["captures"]})
        captured = sum((c.amount for c in stored.captures or []), D(0))
        assert not (stored.canceled_at is not None and stored.captured_at is not None), (capture, cancel)
        if stored.canceled_at is not None:
            assert isinstance(capture, InvalidDataError), repr(capture)
            assert captured == 0
            assert isinstance(cancel, PaymentDTO)
        else:
            assert isinstance(capture, PaymentDTO), repr(capture)
            assert isinstance(cancel, NotAllowedError), repr(cancel)
            assert captured == D(100)
            assert stored.captured_at is not None
        collection = await module.retrieve_payment_collection(collection.id)
        assert collection.status == ("canceled" if stored.canceled_at is not None else "completed")
