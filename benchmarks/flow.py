"""The benchmark flow: collection -> session -> authorize -> capture 5000 -> refund 2000.

Same flow as ../shared/anchors/medusa-bench (the real Medusa module), through paymod's Python API,
one at a time and with 16 in flight. Prints one JSON line per configuration.

    python -m benchmarks.flow --database postgresql --n 500
    python -m benchmarks.flow --quick          # small N, for CI: checks the bench still runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event

from paymod import PaymentModule

POSTGRES_ADMIN = os.environ.get("PAYMOD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
OPS = (
    "create_payment_collections",
    "create_payment_session",
    "authorize_payment_session",
    "capture_payment",
    "refund_payment",
)


class Counter:
    """SQL statements and transactions, counted from SQLAlchemy's engine events."""

    def __init__(self, module: PaymentModule) -> None:
        self.statements = 0
        self.transactions = 0
        engine = module.database.engine.sync_engine
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *args: Any) -> None:
        self.statements += 1

    def _commit(self, *args: Any) -> None:
        self.transactions += 1


async def one_flow(module: PaymentModule, timings: dict[str, list[float]] | None) -> str:
    async def timed(name: str, call: Awaitable[Any]) -> Any:
        start = time.perf_counter()
        result = await call
        if timings is not None:
            timings[name].append((time.perf_counter() - start) * 1000)
        return result

    collection = await timed(
        OPS[0], module.create_payment_collections({"currency_code": "usd", "amount": 5000})
    )
    session = await timed(
        OPS[1],
        module.create_payment_session(
            collection.id,
            {"provider_id": "pp_system_default", "amount": 5000, "currency_code": "usd", "data": {}},
        ),
    )
    payment = await timed(OPS[2], module.authorize_payment_session(session.id))
    await timed(OPS[3], module.capture_payment({"payment_id": payment.id, "amount": 5000}))
    await timed(OPS[4], module.refund_payment({"payment_id": payment.id, "amount": 2000}))
    return str(collection.id)


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


async def run_phase(
    flow: Callable[[dict[str, list[float]] | None], Awaitable[Any]], n: int, warmup: int, concurrency: int
) -> dict[str, Any]:
    async def run(count: int, timings: dict[str, list[float]] | None, latencies: list[float] | None) -> None:
        remaining = count

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                await flow(timings)
                if latencies is not None:
                    latencies.append((time.perf_counter() - start) * 1000)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    await run(warmup, None, None)
    timings: dict[str, list[float]] = defaultdict(list)
    latencies: list[float] = []
    start = time.perf_counter()
    await run(n, timings, latencies)
    wall = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "n": n,
        "wall_s": round(wall, 3),
        "flows_per_s": round(n / wall, 2),
        "latency_ms": {
            "p50": round(_percentile(latencies, 50), 3),
            "p99": round(_percentile(latencies, 99), 3),
            "mean": round(statistics.fmean(latencies), 3),
        },
        "ops_median_ms": {name: round(statistics.median(v), 3) for name, v in timings.items()},
    }


async def fresh_postgres(name: str) -> str:
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"


def fresh_sqlite(workdir: Path) -> str:
    path = workdir / "paymod-bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


async def bench_module(
    database: str, n: int, warmup: int, concurrency: int, sqlite_url: str
) -> dict[str, Any]:
    url = await fresh_postgres("paymod_bench") if database == "postgresql" else sqlite_url
    module = await PaymentModule.connect(url, pool_size=max(10, concurrency))
    try:
        counter = Counter(module)
        before = (counter.statements, counter.transactions)
        sample = 5
        for _ in range(sample):
            await one_flow(module, None)
        statements = (counter.statements - before[0]) / sample
        transactions = (counter.transactions - before[1]) / sample
        collection_id = await one_flow(module, None)
        final = await module.retrieve_payment_collection(collection_id)
        assert final.status == "completed" and final.refunded_amount == Decimal(2000), final
        result: dict[str, Any] = {
            "bench": "paymod-module",
            "database": database,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": sys.version.split()[0],
            "sql_statements_per_flow": statements,
            "transactions_per_flow": transactions,
        }
        result["sequential"] = await run_phase(lambda t: one_flow(module, t), n, warmup, 1)
        result["concurrent"] = await run_phase(lambda t: one_flow(module, t), n, warmup, concurrency)
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        return result
    finally:
        await module.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="n=20, warmup=5: proves the bench runs")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")))
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.warmup = 20, 5
    databases = ["postgresql", "sqlite"] if args.database == "both" else [args.database]
    for database in databases:
        sqlite_url = fresh_sqlite(args.workdir) if database == "sqlite" else ""
        result = asyncio.run(bench_module(database, args.n, args.warmup, args.concurrency, sqlite_url))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
