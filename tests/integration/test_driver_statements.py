"""Statements sent on the driver's connection (`persistence.driver`) behave as they do through
SQLAlchemy: same rows and value types, same transaction, same errors, still counted. On SQLite a
`DriverStatement` goes through SQLAlchemy, so the same tests hold there too."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select, text
from sqlalchemy.exc import IntegrityError

from paymod import PaymentModule
from paymod.domain.errors import ConflictError, DuplicateError
from paymod.persistence import entities as e
from paymod.persistence import ledger as ledger_sql
from paymod.persistence import tables as t
from paymod.persistence.driver import DriverStatement
from paymod.persistence.repository import Repository, utc_now

SYSTEM = "pp_system_default"


async def _paid_collection(module: PaymentModule) -> tuple[str, str]:
    [collection] = await module.create_payment_collections([{"currency_code": "eur", "amount": "50.00"}])
    session = await module.create_payment_session(
        collection.id, {"provider_id": SYSTEM, "amount": "50.00", "currency_code": "eur", "data": {"k": [1]}}
    )
    payment = await module.authorize_payment_session(session.id, {})
    await module.capture_payment({"payment_id": payment.id, "amount": "30.00"})
    await module.refund_payment({"payment_id": payment.id, "amount": "12.50"})
    return collection.id, payment.id


def _typed(rows: list[dict[str, Any]]) -> list[dict[str, tuple[type, Any]]]:
    """Rows with each value's type next to it (Decimal("1") == 1 would hide a lost type)."""
    return [{name: (type(value), value) for name, value in row.items()} for row in rows]


async def test_rows_on_the_driver_equal_rows_through_sqlalchemy(module: PaymentModule) -> None:
    collection_id, payment_id = await _paid_collection(module)
    dialect = module.database.dialect
    ledger = module.ledger
    cases: list[tuple[Any, dict[str, Any]]] = [
        (ledger_sql._LIVE_MOVEMENTS, {"payment_id": payment_id}),
        (ledger_sql._SESSIONS_OF_COLLECTION.statement, {"id": collection_id}),
        (
            ledger._collection.statement,
            {"id": collection_id, "provider": SYSTEM, "now": None, "alive_since": None},
        ),
        (ledger._payment.statement, {"id": payment_id}),
    ]
    for entity in (e.PAYMENT_COLLECTION, e.PAYMENT_SESSION, e.PAYMENT):
        table_id = collection_id if entity is e.PAYMENT_COLLECTION else None
        if table_id is None:
            column = t.payment.c.id if entity is e.PAYMENT else t.payment_session.c.payment_collection_id
            async with module.database.read() as conn:
                table_id = (
                    await conn.execute(
                        select(entity.table.c.id).where(
                            column == (payment_id if entity is e.PAYMENT else collection_id)
                        )
                    )
                ).scalar_one()
        cases.append((Repository(entity, dialect).get_statement(), {"_pk": table_id}))
    async with module.database.write() as conn:
        for statement, params in cases:
            through_sqlalchemy = [dict(row) for row in (await conn.execute(statement, params)).mappings()]
            on_driver = await DriverStatement(statement).rows(conn, params)
            assert through_sqlalchemy, statement
            assert _typed(on_driver) == _typed(through_sqlalchemy), statement
    # The values themselves: exact amounts, JSON documents decoded, aware timestamps.
    async with module.database.read() as conn:
        payment = await Repository(e.PAYMENT, dialect).get(conn, payment_id)
        movements = await ledger.movements(conn, payment_id)
    assert payment["amount"] == Decimal("50.00") and isinstance(payment["amount"], Decimal)
    assert payment["created_at"].tzinfo is not None
    assert [c["amount"] for c in movements[0]] == [Decimal("30.00")]
    assert [r["amount"] for r in movements[1]] == [Decimal("12.50")]


async def test_a_driver_write_commits_and_rolls_back_with_its_transaction(module: PaymentModule) -> None:
    repository = Repository(e.REFUND_REASON, module.database.dialect)
    # The driver's statement is the transaction's first: it must start the transaction SQLAlchemy began.
    with pytest.raises(RuntimeError):
        async with module.database.write() as conn:
            await repository.insert(conn, [{"id": "refr_rolled_back", "label": "rolled back", "code": "r"}])
            raise RuntimeError("the caller fails after the write")
    async with module.database.write() as conn:
        await repository.insert(conn, [{"id": "refr_kept", "label": "kept", "code": "k"}])
        await repository.update(conn, "refr_kept", {"description": "written on the driver"})
    async with module.database.read() as conn:
        found = {row.id: row.description for row in (await conn.execute(select(t.refund_reason))).all()}
    assert "refr_rolled_back" not in found
    assert found["refr_kept"] == "written on the driver"


async def test_a_driver_read_outside_a_transaction_leaves_none_open(module: PaymentModule) -> None:
    [collection] = await module.create_payment_collections([{"currency_code": "usd", "amount": "1"}])
    async with module.database.single() as conn:
        facts = await module.ledger.collection_facts(conn, collection.id)
        assert facts is not None and facts.amount == Decimal("1")
        if module.database.is_postgresql:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None and not raw.is_in_transaction()


async def test_driver_errors_are_the_errors_sqlalchemy_raises(module: PaymentModule) -> None:
    repository = Repository(e.REFUND_REASON, module.database.dialect)
    async with module.database.write() as conn:
        await repository.insert(conn, [{"id": "refr_once", "label": "once", "code": "o"}])
    with pytest.raises(DuplicateError):
        async with module.database.write() as conn:
            await repository.insert(conn, [{"id": "refr_once", "label": "twice", "code": "o"}])
    now = utc_now()
    with pytest.raises(IntegrityError) as raised:
        async with module.database.write() as conn:
            await DriverStatement(repository._insert).rows(
                conn,
                {"id": "refr_once", "label": "again", "code": "o", "created_at": now, "updated_at": now},
            )
    if module.database.is_postgresql:
        assert getattr(raised.value.orig, "sqlstate", None) == "23505"


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_a_lock_wait_on_the_driver_becomes_a_conflict(module: PaymentModule) -> None:
    [collection] = await module.create_payment_collections([{"currency_code": "usd", "amount": "5"}])
    async with module.database.write() as holder:
        await module.ledger.lock_collection(holder, collection.id)
        with pytest.raises(ConflictError):
            async with module.database.write() as waiter:
                await waiter.execute(text("SET LOCAL lock_timeout = '50ms'"))
                await module.ledger.lock_collection(waiter, collection.id)


async def test_driver_statements_are_counted(module: PaymentModule) -> None:
    [collection] = await module.create_payment_collections([{"currency_code": "usd", "amount": "5"}])
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engine = module.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        async with module.database.write() as conn:
            await module.ledger.lock_collection(conn, collection.id)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert any("payment_collection c" in statement and "sessions" in statement for statement in seen)


async def _collection_events(module: PaymentModule, collection_id: str) -> list[str]:
    async with module.database.read() as conn:
        found = await conn.execute(
            select(t.event_outbox.c.name).where(t.event_outbox.c.payment_collection_id == collection_id)
        )
        return list(found.scalars())


async def test_one_collection_is_written_with_its_event_in_one_statement(module: PaymentModule) -> None:
    collection = await module.create_payment_collections(
        {"id": "pay_col_single", "currency_code": "usd", "amount": "7"}
    )
    assert await _collection_events(module, collection.id) == ["payment.payment-collection.created"]
    # A second row with that id fails as a whole: no event is written for it either.
    with pytest.raises(DuplicateError):
        await module.create_payment_collections(
            {"id": "pay_col_single", "currency_code": "usd", "amount": "8"}
        )
    assert await _collection_events(module, collection.id) == ["payment.payment-collection.created"]
    async with module.database.read() as conn:
        amount = (
            await conn.execute(
                select(t.payment_collection.c.amount).where(t.payment_collection.c.id == collection.id)
            )
        ).scalar_one()
    assert amount == Decimal("7")


async def test_write_one_never_leaves_events_unwritten(module: PaymentModule) -> None:
    """On PostgreSQL a `write_one` whose statement did not take the buffered events fails (nothing
    would write them atomically); on SQLite it is a transaction that writes them at its commit."""

    async def emit_only() -> None:
        async with module.database.write_one() as conn:
            module._emit(conn, "payment-collection.updated", "pay_col_nowhere", "pay_col_nowhere")

    if module.database.is_postgresql:
        with pytest.raises(RuntimeError, match="left events unwritten"):
            await emit_only()
        assert await _collection_events(module, "pay_col_nowhere") == []
    else:
        await emit_only()
        assert await _collection_events(module, "pay_col_nowhere") == ["payment.payment-collection.updated"]


async def test_a_row_written_with_the_totals_fails_with_them(module: PaymentModule) -> None:
    """A session (or payment) is written by the statement that stores its collection's totals on
    PostgreSQL: when the row is refused, the totals and events of that statement are not written."""
    [collection] = await module.create_payment_collections([{"currency_code": "usd", "amount": "20"}])
    session = {"id": "payses_once", "provider_id": SYSTEM, "amount": "20", "currency_code": "usd"}
    created = await module.create_payment_session(collection.id, session)
    assert created.id == "payses_once" and created.amount == Decimal("20")
    with pytest.raises(DuplicateError):
        await module.create_payment_session(collection.id, {**session, "amount": "5"})
    events = await _collection_events(module, collection.id)
    assert events.count("payment.payment-session.created") == 1
    assert events.count("payment.payment-collection.updated") == 1
    read = await module.retrieve_payment_collection(collection.id, {"relations": ["payment_sessions"]})
    assert [(s.id, s.amount) for s in read.payment_sessions or []] == [("payses_once", Decimal("20"))]


async def test_a_statement_the_driver_cannot_send_goes_through_sqlalchemy(module: PaymentModule) -> None:
    """Expanding `IN` lists are SQLAlchemy's to render: such a statement still runs, with its rows."""
    _, payment_id = await _paid_collection(module)
    expanding = DriverStatement(
        select(t.payment.c.id, t.payment.c.amount).where(t.payment.c.id.in_(bindparam("ids", expanding=True)))
    )
    async with module.database.read() as conn:
        rows = await expanding.rows(conn, {"ids": [payment_id, "pay_missing"]})
    assert rows == [{"id": payment_id, "amount": Decimal("50.00")}]
