"""The money path's lookups go through an index by key, whatever the planner knows.

A collection, session or payment is found by its primary key, and child rows by their parent's key:
never by scanning a table, nor by the partial indexes on `deleted_at` (which list every live row).
The plans are read on a database whose tables have no statistics yet, the way a new deployment
starts, and on PostgreSQL as generic plans (what a prepared statement keeps). A lookup written as a
join once took a plan that scanned every live collection, and authorizations slowed down as
collections accumulated."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from paymod import PaymentModule
from paymod.persistence import entities as e
from paymod.persistence import ledger as ledger_sql
from paymod.persistence import tables as t
from paymod.persistence.driver import DriverStatement
from paymod.persistence.ledger import Ledger
from paymod.persistence.repository import Repository

# The columns a session's creation and an authorization write (services.sessions, .authorization).
_NEW_SESSION_COLUMNS = tuple(
    sorted(
        [
            "amount",
            "context",
            "created_at",
            "currency_code",
            "data",
            "id",
            "metadata",
            "payment_collection_id",
            "provider_id",
            "status",
            "updated_at",
        ]
    )
)
_NEW_PAYMENT_COLUMNS = tuple(
    sorted(
        [
            "amount",
            "authorization_expires_at",
            "captured_at",
            "created_at",
            "currency_code",
            "data",
            "id",
            "payment_collection_id",
            "payment_session_id",
            "provider_id",
            "status",
            "updated_at",
        ]
    )
)
MONEY_TABLES = ("payment_collection", "payment_session", "payment", "capture", "refund", "dispute")


def _statements(ledger: Ledger, dialect: str) -> dict[str, Any]:
    found = {
        "collection facts": ledger._collection,
        "payment with its movements": ledger._payment,
        "session and its payment": ledger_sql._SESSION_AND_PAYMENT,
        "sessions of a collection": ledger_sql._SESSIONS_OF_COLLECTION,
        "authorize a session": ledger_sql._AUTHORIZE_SESSION,
        "movements": ledger_sql._LIVE_MOVEMENTS,
        "payment status": ledger._statuses.update,
    }
    for entity in (e.PAYMENT_COLLECTION, e.PAYMENT_SESSION, e.PAYMENT, e.CAPTURE, e.REFUND):
        repository = Repository(entity, dialect)
        found[f"{entity.name} by id"] = repository.get_statement()
        found[f"{entity.name} by id, locked"] = repository.get_statement(lock=True)
    if dialect == "sqlite":
        # A collection's relations, as the module loads them (`relations=["payment_sessions", ...]`).
        # PostgreSQL chooses between the parent key's partial index and the one on `deleted_at` by
        # the statistics autovacuum gathers (the depth benchmark shows its plans on a million rows);
        # SQLite gathers none, so the statement names its index.
        for entity, parent in (
            (e.PAYMENT_SESSION, "payment_collection_id"),
            (e.PAYMENT, "payment_collection_id"),
            (e.CAPTURE, "payment_id"),
            (e.REFUND, "payment_id"),
        ):
            statement = Repository(entity, dialect).children_statement(parent)
            found[f"{entity.name} of parents"] = statement.params(keys=["x", "y"])
    if not ledger._locks:
        found["collection of a session"] = ledger._collection_of_session
    else:
        found |= {
            "lock a collection with its facts": ledger._collection_locked["collection"],
            "lock the collection of a session with its facts": ledger._collection_locked["session"],
            "lock a collection": ledger._lock_collection_only["collection"],
            "lock the collection of a session": ledger._lock_collection_only["session"],
            "lock a payment": ledger._lock_payment,
            "movements of a locked payment": ledger._movements,
            "payment status with movements": ledger._refresh_with_movements,
            "collection totals with events": ledger._store_totals_with_events,
            "collection totals with a new session": ledger._totals_statement(
                t.payment_session, _NEW_SESSION_COLUMNS, True
            ),
            "collection totals with a new payment": ledger._totals_statement(
                t.payment, _NEW_PAYMENT_COLUMNS, True
            ),
        }
    return {name: s.statement if isinstance(s, DriverStatement) else s for name, s in found.items()}


async def _plan(conn: AsyncConnection, dialect: Any, statement: Any) -> list[str]:
    sql = str(statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True}))
    if dialect.name == "postgresql":
        count = max((int(n) for n in re.findall(r"\$(\d+)", sql)), default=0)
        await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        # Tiny tables make a sequential scan the cheapest plan for anything: that is not the question.
        await conn.exec_driver_sql("SET enable_seqscan = off")
        await conn.exec_driver_sql(f"PREPARE money_path_plan AS {sql}")
        try:
            arguments = f"({', '.join(['NULL'] * count)})" if count else ""
            rows = await conn.exec_driver_sql(f"EXPLAIN EXECUTE money_path_plan{arguments}")
            return [row[0] for row in rows]
        finally:
            await conn.exec_driver_sql("DEALLOCATE money_path_plan")
    rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", (None,) * sql.count("?"))
    return [row[-1] for row in rows]


def _scans_a_table(line: str) -> bool:
    """PostgreSQL: "Seq Scan on payment p", or any scan by a partial `deleted_at` index; SQLite:
    "SCAN c" (a full scan; "SEARCH c USING ... INDEX" is a keyed lookup)."""
    if "_deleted_at" in line:
        return True
    seq = re.search(r"Seq Scan on (\w+)", line)
    if seq is not None:
        return seq.group(1) in MONEY_TABLES
    scan = re.match(r"\s*SCAN (\w+)", line)
    return scan is not None and scan.group(1) != "CONSTANT"


async def test_the_money_path_finds_rows_by_their_keys(module: PaymentModule) -> None:
    database = module.database
    dialect = database.engine.dialect
    offending: dict[str, list[str]] = {}
    async with database.engine.connect() as conn:
        for name, statement in _statements(module.ledger, dialect.name).items():
            plan = await _plan(conn, dialect, statement)
            assert plan, name
            bad = [line.strip() for line in plan if _scans_a_table(line)]
            if bad:
                offending[name] = bad
        await conn.rollback()
    assert not offending, "\n".join(f"{name}: {lines}" for name, lines in offending.items())
