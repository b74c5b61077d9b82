"""The floor: the same five operations as the fewest hand-written SQL statements, over asyncpg.

No framework: raw asyncpg connections handed out by a queue (no reset query on release), statements
prepared once per connection (asyncpg's statement cache), against paymod's own schema (a fresh
database migrated by paymod, `pp_system_default` registered by it). It keeps the guarantees paymod
gives, so it is the physical limit of this database on this machine for *this* work:

* each operation is one transaction (a single statement, or BEGIN ... COMMIT);
* authorize locks the session and its collection (`SELECT ... FOR NO KEY UPDATE`, the lock paymod
  takes), and an authorized session is never authorized twice;
* capture and refund lock the payment and its collection, then check the guard (capture: not past
  the payment's amount; refund: not past what was captured, one minor unit of tolerance) on sums
  read after the lock;
* every change recomputes the collection's status and totals from its sessions, payments, captures
  and refunds (paymod's `derive_collection`, as one UPDATE), under the collection's lock;
* every change writes the same events to `event_outbox` in the same transaction.

A statement does not see what its own CTEs write, so each money operation's recomputation adds the
operation's own change to what it reads (see `_recompute`). The system provider does nothing, so the
floor does not call it. Per flow: 8 statements, plus BEGIN/COMMIT around the three money operations
(14 round trips), in 5 transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
from ulid import ULID

from benchmarks.common import (
    COUNT_FIELDS,
    OPS,
    FlowResult,
    Probe,
    Recorder,
    database_name,
    peak_rss_mb,
    run_phase,
    sample_sql,
    self_cpu_ms,
    stop_requested,
)
from paymod import PaymentModule

DIGITS = {"usd": 2}
LOCK_TIMEOUT_MS = "3000"  # paymod's


def _id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


CREATE_COLLECTION = """
WITH c AS (
  INSERT INTO payment_collection (id, currency_code, amount, created_at, updated_at)
  VALUES ($1, $2, $3, now(), now()) RETURNING id
)
INSERT INTO event_outbox (id, name, data, payment_collection_id, available_at, created_at)
SELECT $4, 'payment.payment-collection.created', jsonb_build_object('id', c.id), c.id, now(), now() FROM c
"""

CREATE_SESSION = """
WITH c AS (
  SELECT id FROM payment_collection
  WHERE id = $2 AND deleted_at IS NULL AND currency_code = $4
    AND EXISTS (SELECT 1 FROM payment_provider WHERE id = $3 AND is_enabled AND deleted_at IS NULL)
), s AS (
  INSERT INTO payment_session
    (id, payment_collection_id, provider_id, amount, currency_code, data, status, created_at, updated_at)
  SELECT $1, c.id, $3, $5, $4, '{}'::jsonb, 'pending', now(), now() FROM c
  RETURNING id, payment_collection_id
), e AS (
  INSERT INTO event_outbox (id, name, data, payment_collection_id, available_at, created_at)
  SELECT $6, 'payment.payment-session.created', jsonb_build_object('id', s.id), s.payment_collection_id,
         now(), now()
  FROM s
)
SELECT id FROM s
"""

LOCK_SESSION = """
SELECT s.amount, s.currency_code, s.provider_id, s.payment_collection_id, s.authorized_at,
       lower(s.currency_code) = lower(c.currency_code) AS own
FROM payment_session s JOIN payment_collection c ON c.id = s.payment_collection_id
WHERE s.id = $1 AND s.deleted_at IS NULL
FOR NO KEY UPDATE
"""

EXISTING_PAYMENT = "SELECT id FROM payment WHERE payment_session_id = $1 AND deleted_at IS NULL"

LOCK_PAYMENT = """
SELECT p.amount, p.currency_code, p.captured_at, p.canceled_at, p.payment_collection_id,
       lower(p.currency_code) = lower(c.currency_code) AS own
FROM payment p JOIN payment_collection c ON c.id = p.payment_collection_id
WHERE p.id = $1 AND p.deleted_at IS NULL
FOR NO KEY UPDATE
"""


def _recompute(
    collection: str, digits: str, events: str, authorized: str, captured: str, refunded: str
) -> str:
    """paymod's `derive_collection` as CTEs and a final UPDATE of the collection, with the events.

    A statement does not see its own CTEs' writes, so the operation's own change comes in as a delta
    (`authorized`, `captured`, `refunded`: SQL expressions); everything else is read from the
    tables, under the collection's lock taken by the operation's first statement.
    """
    return f"""
, ev AS (
  INSERT INTO event_outbox (id, name, data, payment_collection_id, available_at, created_at)
  SELECT e.id, e.name, jsonb_build_object('id', e.ref), {collection}, now(), now()
  FROM unnest({events}) AS e(id, name, ref)
), col AS (
  SELECT amount, lower(currency_code) AS cur FROM payment_collection WHERE id = {collection}
), pay AS (
  SELECT p.id, p.payment_session_id, p.canceled_at, lower(p.currency_code) = col.cur AS own
  FROM payment p, col WHERE p.payment_collection_id = {collection} AND p.deleted_at IS NULL
), ses AS (
  SELECT count(*) AS n,
         coalesce(sum(s.amount) FILTER (
           WHERE s.status = 'authorized' AND lower(s.currency_code) = col.cur
             AND s.id NOT IN (SELECT payment_session_id FROM pay WHERE canceled_at IS NOT NULL)
         ), 0) + {authorized} AS authorized
  FROM payment_session s, col WHERE s.payment_collection_id = {collection} AND s.deleted_at IS NULL
), mov AS (
  SELECT
    coalesce((SELECT sum(c.amount) FROM capture c JOIN pay ON pay.id = c.payment_id
              WHERE pay.own AND c.deleted_at IS NULL), 0) + {captured} AS captured,
    coalesce((SELECT sum(r.amount) FROM refund r JOIN pay ON pay.id = r.payment_id
              WHERE pay.own AND r.deleted_at IS NULL), 0) + {refunded} AS refunded,
    EXISTS (SELECT 1 FROM pay WHERE own AND canceled_at IS NOT NULL) AS any_canceled
), t AS (
  SELECT ses.n, ses.authorized, mov.captured, mov.refunded, mov.any_canceled,
         round(mov.captured, {digits}) >= round(col.amount, {digits}) AS completed,
         round(ses.authorized, {digits}) >= round(col.amount, {digits}) AS fully_authorized
  FROM ses, mov, col
)
UPDATE payment_collection pc SET
  authorized_amount = t.authorized,
  captured_amount = t.captured,
  refunded_amount = t.refunded,
  status = CASE
    WHEN t.completed THEN 'completed'
    WHEN t.authorized > 0 THEN CASE WHEN t.fully_authorized THEN 'authorized' ELSE 'partially_authorized' END
    WHEN t.any_canceled THEN CASE WHEN t.captured > 0 THEN 'partially_captured' ELSE 'canceled' END
    WHEN t.n > 0 THEN 'awaiting'
    ELSE 'not_paid' END,
  completed_at = CASE WHEN t.completed THEN now() ELSE pc.completed_at END,
  updated_at = now()
FROM t WHERE pc.id = {collection}
"""


_EVENTS = "$8::text[], $9::text[], $10::text[]"

# $1 session, $2 payment id, $3 amount, $4 currency, $5 provider, $6 collection, $7 digits, $8-$10 events,
# $11 whether the session's currency is the collection's.
AUTHORIZE = """
WITH s AS (
  UPDATE payment_session SET status = 'authorized', authorized_at = now(), updated_at = now()
  WHERE id = $1 RETURNING amount
), p AS (
  INSERT INTO payment
    (id, amount, currency_code, provider_id, payment_collection_id, payment_session_id, data, status,
     created_at, updated_at)
  VALUES ($2, $3, $4, $5, $6, $1, '{}'::jsonb, 'authorized', now(), now())
)""" + _recompute("$6", "$7", _EVENTS, "CASE WHEN $11 THEN (SELECT amount FROM s) ELSE 0 END", "0", "0")

# $1 payment, $2 capture id, $3 amount, $4 payment amount, $5 digits, $6 collection, $7 own currency,
# $8-$10 events. Returns a row only when the guard let the capture in.
CAPTURE = (
    """
WITH tot AS (
  SELECT coalesce(sum(amount), 0) AS captured FROM capture WHERE payment_id = $1 AND deleted_at IS NULL
), ins AS (
  INSERT INTO capture (id, amount, payment_id, created_at, updated_at)
  SELECT $2, $3, $1, now(), now() FROM tot WHERE round(tot.captured + $3, $5) <= round($4::numeric, $5)
  RETURNING amount
), upd AS (
  UPDATE payment SET captured_at = now(), updated_at = now()
  FROM tot
  WHERE payment.id = $1 AND round(tot.captured + $3, $5) >= round($4::numeric, $5)
    AND EXISTS (SELECT 1 FROM ins)
)"""
    + _recompute(
        "$6",
        "$5",
        _EVENTS,
        "0",
        "CASE WHEN $7 THEN coalesce((SELECT sum(amount) FROM ins), 0) ELSE 0 END",
        "0",
    )
    + "RETURNING (SELECT count(*) FROM ins)"
)

# $1 payment, $2 refund id, $3 amount, $4 minor unit, $5 digits, $6 collection, $7 own currency,
# $8-$10 events.
REFUND = (
    """
WITH tot AS (
  SELECT (SELECT coalesce(sum(amount), 0) FROM capture WHERE payment_id = $1 AND deleted_at IS NULL)
       - (SELECT coalesce(sum(amount), 0) FROM refund WHERE payment_id = $1 AND deleted_at IS NULL)
       AS refundable
), ins AS (
  INSERT INTO refund (id, amount, payment_id, created_at, updated_at)
  SELECT $2, $3, $1, now(), now() FROM tot WHERE tot.refundable - $3 >= -$4::numeric
  RETURNING amount
)"""
    + _recompute(
        "$6",
        "$5",
        _EVENTS,
        "0",
        "0",
        "CASE WHEN $7 THEN coalesce((SELECT sum(amount) FROM ins), 0) ELSE 0 END",
    )
    + "RETURNING (SELECT count(*) FROM ins)"
)


class FloorError(Exception):
    pass


def _events(*events: tuple[str, str]) -> tuple[list[str], list[str], list[str]]:
    """Event ids, names and the ids they carry, as three arrays for `unnest`."""
    return [_id("evt") for _ in events], [name for name, _ in events], [ref for _, ref in events]


class Floor:
    """The five operations; every statement and transaction it sends is counted."""

    def __init__(self, connections: list[asyncpg.Connection]) -> None:
        self._idle: asyncio.Queue[asyncpg.Connection] = asyncio.Queue()
        for conn in connections:
            self._idle.put_nowait(conn)
        self.connections = connections
        self.counts = dict.fromkeys(COUNT_FIELDS, 0)
        self.counts["connects"] = 0
        self.autocommit_statements = 0

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self._idle.get()
        try:
            yield conn
        finally:
            self._idle.put_nowait(conn)

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._conn() as conn:
            self.counts["begins"] += 1
            await conn.execute("BEGIN")
            try:
                yield conn
            except BaseException:
                self.counts["rollbacks"] += 1
                await conn.execute("ROLLBACK")
                raise
            self.counts["commits"] += 1
            await conn.execute("COMMIT")

    async def _fetch(self, conn: asyncpg.Connection, sql: str, *args: Any) -> list[asyncpg.Record]:
        self.counts["statements"] += 1
        return await conn.fetch(sql, *args)

    async def create_collection(self, amount: Decimal, currency_code: str) -> str:
        collection_id = _id("pay_col")
        async with self._conn() as conn:
            self.autocommit_statements += 1
            await self._fetch(conn, CREATE_COLLECTION, collection_id, currency_code, amount, _id("evt"))
        return collection_id

    async def create_session(
        self, collection_id: str, provider_id: str, amount: Decimal, currency: str
    ) -> str:
        session_id = _id("payses")
        async with self._conn() as conn:
            self.autocommit_statements += 1
            rows = await self._fetch(
                conn, CREATE_SESSION, session_id, collection_id, provider_id, currency, amount, _id("evt")
            )
        if not rows:
            raise FloorError("collection not found, currency mismatch or provider not enabled")
        return session_id

    async def authorize(self, session_id: str) -> str:
        async with self._transaction() as conn:
            rows = await self._fetch(conn, LOCK_SESSION, session_id)
            if not rows:
                raise FloorError(f"payment session {session_id} not found")
            session = rows[0]
            if session["authorized_at"] is not None:
                existing = await self._fetch(conn, EXISTING_PAYMENT, session_id)
                return str(existing[0]["id"])
            payment_id = _id("pay")
            collection_id = session["payment_collection_id"]
            await self._fetch(
                conn,
                AUTHORIZE,
                session_id,
                payment_id,
                session["amount"],
                session["currency_code"],
                session["provider_id"],
                collection_id,
                DIGITS[session["currency_code"]],
                *_events(
                    ("payment.payment-session.updated", session_id),
                    ("payment.payment.created", payment_id),
                    ("payment.payment-collection.updated", collection_id),
                ),
                session["own"],
            )
        return payment_id

    async def capture(self, payment_id: str, amount: Decimal) -> str | None:
        async with self._transaction() as conn:
            payment = await self._lock_payment(conn, payment_id)
            if payment["canceled_at"] is not None:
                raise FloorError(f"The payment: {payment_id} has been canceled.")
            if payment["captured_at"] is not None:
                return None
            if amount <= 0:
                raise FloorError("Capture amount must be greater than 0.")
            capture_id = _id("capt")
            collection_id = payment["payment_collection_id"]
            inserted = await self._fetch(
                conn,
                CAPTURE,
                payment_id,
                capture_id,
                amount,
                payment["amount"],
                DIGITS[payment["currency_code"]],
                collection_id,
                payment["own"],
                *_events(
                    ("payment.capture.created", capture_id),
                    ("payment.captured", payment_id),
                    ("payment.payment-collection.updated", collection_id),
                ),
            )
            if not inserted or not inserted[0][0]:
                raise FloorError("You cannot capture more than the authorized amount")
        return capture_id

    async def refund(self, payment_id: str, amount: Decimal) -> str:
        async with self._transaction() as conn:
            payment = await self._lock_payment(conn, payment_id)
            if amount <= 0:
                raise FloorError("Refund amount must be greater than 0.")
            refund_id = _id("ref")
            collection_id = payment["payment_collection_id"]
            digits = DIGITS[payment["currency_code"]]
            inserted = await self._fetch(
                conn,
                REFUND,
                payment_id,
                refund_id,
                amount,
                Decimal(1).scaleb(-digits),
                digits,
                collection_id,
                payment["own"],
                *_events(
                    ("payment.refund.created", refund_id),
                    ("payment.refunded", payment_id),
                    ("payment.payment-collection.updated", collection_id),
                ),
            )
            if not inserted or not inserted[0][0]:
                raise FloorError("You cannot refund more than what is captured on the payment.")
        return refund_id

    async def _lock_payment(self, conn: asyncpg.Connection, payment_id: str) -> asyncpg.Record:
        rows = await self._fetch(conn, LOCK_PAYMENT, payment_id)
        if not rows:
            raise FloorError(f"payment {payment_id} not found")
        return rows[0]

    async def flow(self, rec: Recorder) -> FlowResult:
        collection_id = await rec.op(OPS[0], self.create_collection(Decimal(5000), "usd"))
        session_id = await rec.op(
            OPS[1], self.create_session(collection_id, "pp_system_default", Decimal(5000), "usd")
        )
        payment_id = await rec.op(OPS[2], self.authorize(session_id))
        await rec.op(OPS[3], self.capture(payment_id, Decimal(5000)))
        await rec.op(OPS[4], self.refund(payment_id, Decimal(2000)))
        return FlowResult(collection_id, payment_id)

    async def check(self, result: FlowResult) -> dict[str, Any]:
        async with self._conn() as conn:
            col = await conn.fetchrow("SELECT * FROM payment_collection WHERE id = $1", result.collection_id)
            counts = await conn.fetchrow(
                """SELECT
                     (SELECT count(*) FROM payment_session WHERE payment_collection_id = $1
                        AND status = 'authorized') AS sessions,
                     (SELECT count(*) FROM payment WHERE payment_collection_id = $1) AS payments,
                     (SELECT count(*) FROM capture WHERE payment_id = $2) AS captures,
                     (SELECT array_agg(amount) FROM refund WHERE payment_id = $2) AS refunds,
                     (SELECT count(*) FROM event_outbox WHERE payment_collection_id = $1) AS events""",
                result.collection_id,
                result.payment_id,
            )
        assert col is not None and counts is not None
        ok = (
            col["amount"] == 5000
            and col["authorized_amount"] == 5000
            and col["captured_amount"] == 5000
            and col["refunded_amount"] == 2000
            and col["status"] == "completed"
            and counts["sessions"] == 1
            and counts["payments"] == 1
            and counts["captures"] == 1
            and list(counts["refunds"] or []) == [2000]
            and counts["events"] == 11
        )
        return {"ok": ok, "final_collection_status": col["status"]}


async def run_floor(
    url: str,
    *,
    n: int,
    warmup: int,
    conc_n: int,
    conc_warmup: int,
    concurrency: int,
    phases: tuple[str, ...],
    announce: Any,
) -> dict[str, Any]:
    # paymod migrates the fresh database and registers pp_system_default; then paymod is closed.
    module = await PaymentModule.connect(url)
    await module.close()
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    connections = [
        await asyncpg.connect(dsn, server_settings={"lock_timeout": LOCK_TIMEOUT_MS})
        for _ in range(max(1, concurrency))
    ]
    try:
        floor = Floor(connections)
        check = await floor.check(await floor.flow(Recorder()))
        before = floor.autocommit_statements
        sql = await sample_sql(floor.flow, floor.snapshot)
        autocommit = (floor.autocommit_statements - before) / 5
        sql["transactions_per_flow"] += autocommit
        for name in OPS[:2]:
            sql["sql_per_op"][name]["transactions"] = 1.0
        result: dict[str, Any] = {
            "check": check,
            "sql_counted": "by hand (every statement the floor sends)",
            "connections": len(connections),
            **sql,
        }
        probe = Probe(process_cpu_ms=lambda: {"python": self_cpu_ms()}, database=database_name(url))
        if "sequential" in phases:
            announce("phase-start sequential")
            result["sequential"] = await run_phase(floor.flow, n, warmup, 1, probe)
        if "concurrent" in phases and not stop_requested():
            announce("phase-start concurrent")
            result["concurrent"] = await run_phase(floor.flow, conc_n, conc_warmup, concurrency, probe)
        result["peak_rss_mb"] = peak_rss_mb()
        result["rss_of"] = "the bench process (asyncpg + harness), ru_maxrss"
        return result
    finally:
        for conn in connections:
            await conn.close()
