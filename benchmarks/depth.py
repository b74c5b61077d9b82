"""Flat as the data grows: the admin payment list and the flow on a database of a million payments.

    python -m benchmarks.depth                        # seed 1,000,000 payments, then measure
    python -m benchmarks.depth --payments 100000 --n 100
    python -m benchmarks.depth --no-seed              # measure the database seeded last time again
    python -m benchmarks.depth --quick                # 2,000 payments, a few flows: proves it runs

1. **Seed** (PostgreSQL only) a `paymod_bench_depth*` database with set-based SQL (`generate_series`,
   not the module: a million payments in minutes): per payment a collection, an authorized session,
   the payment, and by its fate a capture (a third of them), a refund (5%), or a cancel (5%); three
   dispatched outbox events and, for each capture and refund, a finished workflow run. Payments come
   from three providers, one a second over the last year, ids in creation order as paymod's are.
2. **The admin payment list** (`GET /admin/payments`) as the route asks the module for it (newest
   first; by status; by provider; with captures and refunds), at the first page and deep in the list,
   by `offset` and by `after` cursor: each statement under `EXPLAIN (ANALYZE, BUFFERS)`, and the
   median of `--runs` calls of `list_and_count_payments` / `list_payments_page`.
3. **Flows/s** (`benchmarks.flow`'s module target, one at a time and 16 in flight) on the seeded
   database and on an empty one, alternately, `--rounds` times each.

One JSON line on stdout; `--markdown` also prints the tables docs/performance.md shows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import Engine

from benchmarks.common import (
    POSTGRES_ADMIN,
    drop_postgres,
    fresh_postgres,
    loadavg1,
    machine,
    now_iso,
    r3,
    source_state,
)
from paymod import PaymentModule
from paymod.persistence.database import Database
from paymod.persistence.migrate import upgrade

PROVIDERS = ("pp_system_default", "pp_stripe_stripe", "pp_testing_default")

# One statement per table, each over generate_series. {n}: payments; i runs 1..n, payment i was created
# (n - i) seconds before the seeding started. Its fate f = (i * 7919) % 100: < 33 captured (< 5 also
# half refunded), >= 95 canceled, else authorized. Provider by i % 10: 0-4 system, 5-7 stripe, 8-9 testing.
_COMMON = """
WITH s AS (
  SELECT i, (i::bigint * 7919) % 100 AS f, now() - make_interval(secs => {n} - i) AS at,
         lpad(upper(to_hex(i)), 26, '0') AS k
  FROM generate_series(1, {n}) AS i
)
"""
SEED = [
    (
        "payment_collection",
        _COMMON
        + """
INSERT INTO payment_collection (id, currency_code, amount, authorized_amount, captured_amount,
  refunded_amount, completed_at, status, created_at, updated_at)
SELECT 'pay_col_' || k, 'usd', 50, CASE WHEN f >= 95 THEN 0 ELSE 50 END,
  CASE WHEN f < 33 THEN 50 ELSE 0 END, CASE WHEN f < 5 THEN 25 ELSE 0 END,
  CASE WHEN f < 33 THEN at END,
  CASE WHEN f < 33 THEN 'completed' WHEN f >= 95 THEN 'canceled' ELSE 'authorized' END, at, at
FROM s
""",
    ),
    (
        "payment_session",
        _COMMON
        + """
INSERT INTO payment_session (id, currency_code, amount, provider_id, data, status, authorized_at,
  payment_collection_id, created_at, updated_at)
SELECT 'payses_' || k, 'usd', 50, (ARRAY{providers})[CASE WHEN i % 10 < 5 THEN 1 WHEN i % 10 < 8 THEN 2
  ELSE 3 END], jsonb_build_object('reference', 'tst_' || k), 'authorized', at, 'pay_col_' || k, at, at
FROM s
""",
    ),
    (
        "payment",
        _COMMON
        + """
INSERT INTO payment (id, amount, currency_code, provider_id, data, captured_at, canceled_at, status,
  payment_collection_id, payment_session_id, created_at, updated_at)
SELECT 'pay_' || k, 50, 'usd', (ARRAY{providers})[CASE WHEN i % 10 < 5 THEN 1 WHEN i % 10 < 8 THEN 2
  ELSE 3 END], jsonb_build_object('reference', 'tst_' || k),
  CASE WHEN f < 33 THEN at END, CASE WHEN f >= 95 THEN at END,
  CASE WHEN f < 5 THEN 'partially_refunded' WHEN f < 33 THEN 'captured' WHEN f >= 95 THEN 'canceled'
    ELSE 'authorized' END,
  'pay_col_' || k, 'payses_' || k, at, at
FROM s
""",
    ),
    (
        "capture",
        _COMMON
        + """
INSERT INTO capture (id, amount, payment_id, created_at, updated_at)
SELECT 'capt_' || k, 50, 'pay_' || k, at, at FROM s WHERE f < 33
""",
    ),
    (
        "refund",
        _COMMON
        + """
INSERT INTO refund (id, amount, payment_id, created_at, updated_at)
SELECT 'ref_' || k, 25, 'pay_' || k, at, at FROM s WHERE f < 5
""",
    ),
    (
        "event_outbox",
        _COMMON
        + """
INSERT INTO event_outbox (id, name, data, payment_collection_id, status, attempts, available_at,
  dispatched_at, created_at)
SELECT 'evt_' || e.name || '_' || k, 'payment.' || e.name, jsonb_build_object('id', 'pay_' || k),
  'pay_col_' || k, 'dispatched', 1, at, at, at
FROM s CROSS JOIN (VALUES ('payment-collection.created'), ('payment-session.created'),
  ('payment.created')) AS e(name)
""",
    ),
    (
        "workflow_run",
        _COMMON
        + """
INSERT INTO workflow_run (id, name, idempotency_key, fingerprint, input, status, steps, result,
  created_at, updated_at, completed_at)
SELECT 'wfr_' || w.name || '_' || k, w.name || '-payment', 'auto:' || w.name || k, md5(k),
  jsonb_build_object('payment_id', 'pay_' || k), 'succeeded', '{{}}', to_jsonb('pay_' || k), at, at, at
FROM s CROSS JOIN (VALUES ('capture', 33), ('refund', 5)) AS w(name, below)
WHERE f < w.below
""",
    ),
]


def _asyncpg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def seed(url: str, payments: int, announce: Callable[[str], None]) -> dict[str, Any]:
    """Migrates the (fresh) database, then fills it table by table; the seconds each took."""
    database = Database(url)
    try:
        await upgrade(database.engine)
    finally:
        await database.close()
    providers = "[" + ", ".join(f"'{p}'" for p in PROVIDERS) + "]"
    conn = await asyncpg.connect(_asyncpg_url(url))
    timings: dict[str, Any] = {}
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        for table, sql in SEED:
            started = time.perf_counter()
            await conn.execute(sql.format(n=payments, providers=providers))
            timings[table] = r3(time.perf_counter() - started)
            announce(f"seeded {table} in {timings[table]} s")
        started = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze"] = r3(time.perf_counter() - started)
        counts = {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table, _ in SEED}
    finally:
        await conn.close()
    return {"seconds": timings, "rows": counts}


class Statements:
    """Collects the SQL statements (and their parameters) the module sends while active."""

    def __init__(self) -> None:
        self.active = False
        self.task: asyncio.Task[Any] | None = None
        self.sent: list[tuple[str, Any]] = []
        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        # Only the call's own statements (not the module's heartbeat, which runs in its own task).
        if self.active and asyncio.current_task() is self.task:
            self.sent.append((statement, parameters))

    async def capture(self, call: Callable[[], Awaitable[Any]]) -> tuple[Any, list[tuple[str, Any]]]:
        self.sent, self.active, self.task = [], True, asyncio.current_task()
        try:
            result = await call()
        finally:
            self.active = False
        return result, self.sent


async def explain(url: str, statements: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Each statement under EXPLAIN (ANALYZE, BUFFERS): its plan, execution time and pages read."""
    conn = await asyncpg.connect(_asyncpg_url(url))
    plans = []
    try:
        for sql, parameters in statements:
            args = list(parameters or ())
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
            document = json.loads(rows[0][0])[0]
            text_rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", *args)
            plans.append(
                {
                    "sql": " ".join(sql.split()),
                    "execution_ms": r3(document["Execution Time"]),
                    "planning_ms": r3(document["Planning Time"]),
                    "shared_pages": document["Plan"].get("Shared Hit Blocks", 0)
                    + document["Plan"].get("Shared Read Blocks", 0),
                    "plan": [r[0] for r in text_rows],
                }
            )
    finally:
        await conn.close()
    return plans


async def _median_ms(call: Callable[[], Awaitable[Any]], runs: int) -> float:
    await call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return r3(statistics.median(times))


async def _deep_cursor(url: str, where: str) -> tuple[int, dict[str, Any] | None]:
    """The row half-way into the newest-first list (for the cursor a client would hold there)."""
    conn = await asyncpg.connect(_asyncpg_url(url))
    try:
        matching = await conn.fetchval(f"SELECT count(*) FROM payment WHERE deleted_at IS NULL {where}")
        depth = matching // 2
        row = await conn.fetchrow(
            f"SELECT id, created_at FROM payment WHERE deleted_at IS NULL {where} "
            "ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
            depth,
        )
    finally:
        await conn.close()
    return depth, None if row is None else {"id": row["id"], "created_at": row["created_at"]}


RELATIONS = ["captures", "refunds"]


async def measure_lists(url: str, runs: int, announce: Callable[[str], None]) -> list[Any]:
    """The admin list's queries, first page and deep, by offset and by cursor."""
    from paymod.services.payments import encode_payment_cursor

    statements = Statements()
    module = await PaymentModule.connect(url, migrate=False, sync_providers=False, pool_size=2)
    cases: list[dict[str, Any]] = []
    try:
        for label, filters, where in (
            ("newest first", {}, ""),
            ("status captured, newest first", {"status": "captured"}, "AND status = 'captured'"),
            (
                "status partially_refunded (5%), newest first",
                {"status": "partially_refunded"},
                "AND status = 'partially_refunded'",
            ),
            ("status refunded (none), newest first", {"status": "refunded"}, "AND status = 'refunded'"),
            (
                "provider pp_stripe_stripe, newest first",
                {"provider_id": "pp_stripe_stripe"},
                "AND provider_id = 'pp_stripe_stripe'",
            ),
        ):
            depth, deep = await _deep_cursor(url, where)
            cursor = None if deep is None else encode_payment_cursor(deep["created_at"], deep["id"])
            config = {"take": 20, "order": {"created_at": "DESC"}, "relations": RELATIONS}
            variants: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                (
                    "first page, with count (offset 0)",
                    lambda f=filters, c=config: module.list_and_count_payments(f, c),
                ),
                (
                    f"offset {depth:,}, with count",
                    lambda f=filters, c=config, d=depth: module.list_and_count_payments(f, {**c, "skip": d}),
                ),
                ("first page, keyset", lambda f=filters, c=config: module.list_payments_page(f, c)),
                (
                    f"{depth:,} deep, keyset (after cursor)",
                    lambda f=filters, c=config, a=cursor: module.list_payments_page(f, c, after=a),
                ),
            ]
            for variant, call in variants:
                announce(f"list: {label}, {variant}")
                _, sent = await statements.capture(call)
                median = await _median_ms(call, runs)
                cases.append(
                    {
                        "list": label,
                        "variant": variant,
                        "median_ms": median,
                        "statements": await explain(url, sent),
                    }
                )
    finally:
        await module.close()
    return cases


async def measure_flows(
    seeded_url: str, args: argparse.Namespace, announce: Callable[[str], None]
) -> dict[str, Any]:
    """The module's flow on the seeded database and on an empty one, alternately."""
    from benchmarks.module_target import run_module

    options: dict[str, Any] = {
        "n": args.n,
        "warmup": 20,
        "conc_n": args.n,
        "conc_warmup": 32,
        "concurrency": 16,
        "phases": ("sequential", "concurrent"),
        "announce": announce,
        "pool_size": 10,
    }
    runs: dict[str, list[dict[str, Any]]] = {"empty": [], "seeded": []}
    for round in range(args.rounds):
        for kind in ("empty", "seeded"):
            announce(f"flows on the {kind} database, round {round + 1}")
            if kind == "empty":
                name = f"paymod_bench_depth_empty_{os.getpid()}_{round}"
                url = await fresh_postgres(name)
                try:
                    runs[kind].append(await run_module(url, **options))
                finally:
                    await drop_postgres(name)
            else:
                runs[kind].append(await run_module(seeded_url, **options))

    def median(kind: str, phase: str) -> float:
        return r3(statistics.median(r[phase]["flows_per_s"] for r in runs[kind]))

    summary = {
        phase: {
            "empty_flows_per_s": median("empty", phase),
            "seeded_flows_per_s": median("seeded", phase),
            "seeded_over_empty": r3(median("seeded", phase) / median("empty", phase)),
        }
        for phase in ("sequential", "concurrent")
    }
    return {
        "summary": summary,
        "sql_statements_per_flow": {k: [r["sql_statements_per_flow"] for r in v] for k, v in runs.items()},
        "checks_ok": all(r["check"]["ok"] for v in runs.values() for r in v),
        "errors": sum(r[p]["errors"] for v in runs.values() for r in v for p in ("sequential", "concurrent")),
        "runs": runs,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| list | variant | median ms | SQL execution ms (each statement) |",
        "| --- | --- | ---: | --- |",
    ]
    for case in result["lists"]:
        executions = " + ".join(f"{s['execution_ms']:.2f}" for s in case["statements"])
        lines.append(f"| {case['list']} | {case['variant']} | {case['median_ms']:.1f} | {executions} |")
    flows = result.get("flows")
    if flows:
        lines += [
            "",
            "| phase | empty db flows/s | seeded db flows/s | seeded / empty |",
            "| --- | ---: | ---: | ---: |",
        ]
        for phase, row in flows["summary"].items():
            lines.append(
                f"| {phase} | {row['empty_flows_per_s']} | {row['seeded_flows_per_s']} | "
                f"{row['seeded_over_empty']} |"
            )
    return "\n".join(lines)


def announce(text: str) -> None:
    print(f"[depth] {text}", file=sys.stderr, flush=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    name = args.database_name
    url = f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"
    result: dict[str, Any] = {
        "bench": "paymod-depth",
        "date": now_iso(),
        "machine": machine(),
        "paymod_src": source_state(),
        "payments": args.payments,
        "loadavg1_at_start": loadavg1(),
    }
    if not args.no_seed:
        await fresh_postgres(name)
        announce(f"seeding {args.payments:,} payments into {name}")
        result["seed"] = await seed(url, args.payments, announce)
    result["lists"] = await measure_lists(url, args.runs, announce)
    if args.n:
        result["flows"] = await measure_flows(url, args, announce)
    if args.drop:
        await drop_postgres(name)
    result["loadavg1_at_end"] = loadavg1()
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.depth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7, help="timed calls per list query (median)")
    parser.add_argument("--n", type=int, default=200, help="flows per phase (0: no flows)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of empty and seeded runs")
    parser.add_argument("--database-name", default="paymod_bench_depth", help="a paymod_bench_* name")
    parser.add_argument("--no-seed", action="store_true", help="reuse the database seeded last time")
    parser.add_argument("--drop", action="store_true", help="drop the seeded database at the end")
    parser.add_argument("--markdown", action="store_true", help="also print the tables (stderr)")
    parser.add_argument("--quick", action="store_true", help="2,000 payments, 5 flows per phase, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.payments, args.runs, args.n, args.rounds = 2000, 2, 5, 1
    if not args.database_name.startswith("paymod_bench"):
        parser.error("--database-name must start with paymod_bench")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    print(json.dumps(result, default=str), flush=True)
    if args.markdown:
        print(markdown(result), file=sys.stderr, flush=True)
    flows = result.get("flows")
    return 0 if flows is None or (flows["checks_ok"] and flows["errors"] == 0) else 1


if __name__ == "__main__":
    sys.exit(main())
