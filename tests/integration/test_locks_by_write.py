"""A collection's and a payment's row locks, with the facts read under them (`persistence.ledger`).

On PostgreSQL the lock is a write that changes no value, and the lock and the facts are one statement
when no holder of the lock committed after that statement's snapshot. These tests make a second
transaction wait for a holder that wrote rows the facts include without touching the locked row
itself: the waiter must still see them (it reads again after the lock)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import event, select, text, update

from paymod import PaymentModule
from paymod.domain.errors import NotAllowedError, NotFoundError
from paymod.persistence import entities as e
from paymod.persistence import payment_status
from paymod.persistence import tables as t
from paymod.persistence.ledger import SessionWrite
from paymod.persistence.repository import Repository, utc_now

SYSTEM = "pp_system_default"
T = TypeVar("T")


async def _with_session(module: PaymentModule) -> tuple[Any, Any]:
    """A collection of 50.00 EUR and its pending session of the whole amount."""
    [collection] = await module.create_payment_collections([{"currency_code": "eur", "amount": "50.00"}])
    session = await module.create_payment_session(
        collection.id, {"provider_id": SYSTEM, "amount": "50.00", "currency_code": "eur", "data": {}}
    )
    return collection, session


async def _authorized(module: PaymentModule) -> tuple[str, str, str]:
    collection, session = await _with_session(module)
    payment = await module.authorize_payment_session(session.id, {})
    assert payment is not None
    return collection.id, session.id, payment.id


async def _waiting_for_a_lock(module: PaymentModule) -> None:
    """Returns once another connection of the test database waits for a row lock."""
    for _ in range(500):
        async with module.database.read() as conn:
            waiting = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            ).scalar_one()
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the second transaction never waited for the lock")


async def _after_holder(
    module: PaymentModule,
    hold: Callable[[Any], Awaitable[None]],
    wait: Callable[[Any], Awaitable[T]],
) -> tuple[T, list[str]]:
    """Runs `hold` in a transaction, then `wait` in another one that blocks on `hold`'s lock until
    `hold`'s transaction commits; `wait`'s result and the statements it sent."""
    sent: list[str] = []
    waiter_connection: list[Any] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if waiter_connection and conn is waiter_connection[0]:
            sent.append(statement)

    async def waiter() -> T:
        async with module.database.write() as conn:
            waiter_connection.append(conn.sync_connection)
            return await wait(conn)

    engine = module.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        async with module.database.write() as holder:
            await hold(holder)
            waiting = asyncio.create_task(waiter())
            await _waiting_for_a_lock(module)
        return await waiting, sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_a_collection_locked_after_a_holder_has_the_holders_sessions(module: PaymentModule) -> None:
    [collection] = await module.create_payment_collections([{"currency_code": "eur", "amount": "50.00"}])
    sessions = Repository(e.PAYMENT_SESSION, module.database.dialect)

    async def hold(conn: Any) -> None:
        await module.ledger.lock_collection(conn, collection.id)
        # A row the facts include, written without touching the collection's row.
        await sessions.insert(
            conn,
            [
                {
                    "payment_collection_id": collection.id,
                    "provider_id": SYSTEM,
                    "currency_code": "eur",
                    "amount": "50.00",
                    "data": {},
                    "status": "pending",
                }
            ],
        )

    facts, sent = await _after_holder(
        module, hold, lambda conn: module.ledger.lock_collection(conn, collection.id)
    )
    assert len(facts.sessions) == 1
    # The one-statement lock updated nothing; the lock and the facts were taken again.
    assert len(sent) == 3, sent


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_a_session_claimed_by_a_holder_is_seen_by_the_next_authorization(module: PaymentModule) -> None:
    _, session = await _with_session(module)

    async def hold(conn: Any) -> None:
        facts = await module.ledger.lock_collection_of_session(conn, session.id)
        assert not facts.session(session.id).authorizing  # type: ignore[union-attr]
        await conn.execute(
            update(t.payment_session)
            .where(t.payment_session.c.id == session.id)
            .values(authorizing_until=text("now() + interval '1 minute'"), authorizing_by=None)
        )

    facts, sent = await _after_holder(
        module, hold, lambda conn: module.ledger.lock_collection_of_session(conn, session.id)
    )
    claimed = facts.session(session.id)
    assert claimed is not None and claimed.authorizing
    assert len(sent) == 3, sent


@pytest.mark.parametrize("holder_lock", ["ledger", "status writer"])
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_a_payment_locked_after_a_holder_has_the_holders_captures(
    module: PaymentModule, holder_lock: str
) -> None:
    _, _, payment_id = await _authorized(module)
    captures = Repository(e.CAPTURE, module.database.dialect)

    async def hold(conn: Any) -> None:
        if holder_lock == "ledger":
            await module.ledger.lock_payment(conn, payment_id)
        else:
            await payment_status._LOCK.execute(conn, {"id": payment_id})
        # A capture written without the payment's status (which a partial capture may leave as it is).
        await captures.insert(conn, [{"payment_id": payment_id, "amount": "20.00"}])

    locked, sent = await _after_holder(
        module, hold, lambda conn: module.ledger.lock_payment(conn, payment_id)
    )
    assert [str(amount) for amount in locked.captures] == ["20.00"]
    assert len(sent) == 3, sent


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_an_uncontended_lock_is_one_statement_and_changes_no_value(module: PaymentModule) -> None:
    collection_id, session_id, payment_id = await _authorized(module)

    async def rows() -> tuple[Any, Any]:
        async with module.database.read() as conn:
            collection = (
                await conn.execute(
                    select(t.payment_collection).where(t.payment_collection.c.id == collection_id)
                )
            ).one()
            payment = (await conn.execute(select(t.payment).where(t.payment.c.id == payment_id))).one()
        return collection, payment

    before = await rows()
    sent: list[str] = []
    engine = module.database.engine.sync_engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        async with module.database.write() as conn:
            facts = await module.ledger.lock_collection(conn, collection_id)
            assert len(sent) == 1
            assert await module.ledger.lock_collection_of_session(conn, session_id) == facts
            assert len(sent) == 2
            locked = await module.ledger.lock_payment(conn, payment_id)
            assert len(sent) == 3
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [p.id for p in facts.payments] == [payment_id]
    assert locked.row["id"] == payment_id and locked.captures == []
    assert await rows() == before


async def test_locking_what_is_not_there_is_not_found(module: PaymentModule) -> None:
    collection_id, session_id, payment_id = await _authorized(module)
    async with module.database.write() as conn:
        await conn.execute(
            update(t.payment_collection)
            .where(t.payment_collection.c.id == collection_id)
            .values(deleted_at=text("CURRENT_TIMESTAMP"))
        )
        await conn.execute(
            update(t.payment).where(t.payment.c.id == payment_id).values(deleted_at=text("CURRENT_TIMESTAMP"))
        )
    cases: list[Callable[[Any], Awaitable[Any]]] = [
        lambda conn: module.ledger.lock_collection(conn, collection_id),
        lambda conn: module.ledger.lock_collection(conn, "pay_col_missing"),
        lambda conn: module.ledger.lock_collection_of_session(conn, session_id),
        lambda conn: module.ledger.lock_collection_of_session(conn, "payses_missing"),
        lambda conn: module.ledger.lock_payment(conn, payment_id),
        lambda conn: module.ledger.lock_payment(conn, "pay_missing"),
    ]
    for lock in cases:
        with pytest.raises(NotFoundError):
            async with module.database.write() as conn:
                await lock(conn)


async def _session_row(module: PaymentModule, session_id: str) -> Any:
    async with module.database.read() as conn:
        return (
            await conn.execute(select(t.payment_session).where(t.payment_session.c.id == session_id))
        ).one()


async def test_a_claim_refused_by_the_checks_is_not_left_behind(module: PaymentModule) -> None:
    collection_id, _, _ = await _authorized(module)
    # The collection's amount is taken: a second session's payment does not fit.
    second = await module.create_payment_session(
        collection_id, {"provider_id": SYSTEM, "amount": "50.00", "currency_code": "eur", "data": {}}
    )
    before = await _session_row(module, second.id)
    with pytest.raises(NotAllowedError):
        await module.authorize_payment_session(second.id, {})
    after = await _session_row(module, second.id)
    assert after.authorizing_until is None and after.authorizing_by is None
    assert after == before


async def test_authorizing_an_authorized_session_writes_nothing_to_it(module: PaymentModule) -> None:
    _, session_id, payment_id = await _authorized(module)
    before = await _session_row(module, session_id)
    again = await module.authorize_payment_session(session_id, {})
    assert again is not None and again.id == payment_id
    assert await _session_row(module, session_id) == before


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_a_claim_riding_with_a_lock_taken_again_is_still_written(module: PaymentModule) -> None:
    collection, session = await _with_session(module)

    async def hold(conn: Any) -> None:
        await module.ledger.lock_collection(conn, collection.id)

    async def claim(conn: Any) -> Any:
        write = SessionWrite("claim", session.id, {"until": utc_now() + timedelta(minutes=1), "by": None})
        facts = await module.ledger.lock_collection_of_session(conn, session.id, write=write)
        assert not write.sent  # the lock was taken again, without the claim
        assert facts.session(session.id) is not None
        return await module.ledger.written_session(conn, write)

    claimed, sent = await _after_holder(module, hold, claim)
    assert claimed["id"] == session.id and claimed["authorizing_until"] is not None
    assert len(sent) == 4, sent
    assert (await _session_row(module, session.id)).authorizing_until is not None


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_an_uncontended_lock_sends_the_session_write_with_it(module: PaymentModule) -> None:
    collection, session = await _with_session(module)
    write = SessionWrite("authorize", session.id, {"data": {"k": 1}, "now": utc_now()})
    async with module.database.write() as conn:
        facts = await module.ledger.lock_collection(conn, collection.id, write=write)
        assert write.sent and write.row is not None
        # The facts are those the checks need: read before the write.
        assert facts.session(session.id).status == "pending"  # type: ignore[union-attr]
        assert await module.ledger.written_session(conn, write) is write.row
    row = await _session_row(module, session.id)
    assert row.status == "authorized" and row.data == {"k": 1} and row.authorized_at is not None
