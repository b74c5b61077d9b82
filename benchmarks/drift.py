"""Does the flow slow down as a new database fills? The flow in rounds, one process, one database.

    python -m benchmarks.drift                       # 5 rounds of 300 flows on a fresh PostgreSQL database
    python -m benchmarks.drift --rounds 3 --n 100 --database sqlite
    python -m benchmarks.drift --read                # each flow then reads its collection, as GET does

One `PaymentModule` runs the flow (collection, the checkout's session, the checkout's authorization,
capture 5000, refund 2000) one at a time, `--n` flows per round, on a database created for the run
and dropped after. Nothing analyzes the tables in between: a new deployment starts the same way,
before autovacuum's first ANALYZE, with its prepared statements' plans made on empty tables. A
lookup whose plan scans rows instead of finding one by its key shows as a round-over-round rise.
Prints one line per round (ms per flow and per operation, the mean; this process's CPU per flow) and a
JSON line at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import drop_postgres, fresh_postgres, fresh_sqlite, now_iso, source_state
from paymod import PaymentModule
from paymod.workflows import payment_collection as flows

OPERATIONS = ("collection", "session", "authorize", "capture", "refund")
_WORKDIR = Path(tempfile.gettempdir()) / "paymod-bench"  # SQLite's file


async def _flow(module: PaymentModule, spent: Counter[str], read: bool) -> None:
    started = time.perf_counter()
    [collection] = await module.create_payment_collections([{"amount": 5000, "currency_code": "usd"}])
    marks = [time.perf_counter()]
    await flows.create_payment_sessions(module, collection.id, provider_id="pp_system_default")
    marks.append(time.perf_counter())
    authorized = await flows.authorize_payment_collection(module, collection.id)
    assert authorized.payment is not None
    marks.append(time.perf_counter())
    await module.capture_payment({"payment_id": authorized.payment.id, "amount": 5000})
    marks.append(time.perf_counter())
    await module.refund_payment({"payment_id": authorized.payment.id, "amount": 2000})
    marks.append(time.perf_counter())
    for name, begin, end in zip(OPERATIONS, [started, *marks[:-1]], marks, strict=True):
        spent[name] += end - begin
    if read:  # as the admin API's GET of a collection reads it
        await module.retrieve_payment_collection(collection.id, {"relations": flows.COLLECTION_RELATIONS})
        spent["read"] += time.perf_counter() - marks[-1]


async def measure(database: str, rounds: int, n: int, read: bool = False) -> dict[str, Any]:
    name = f"paymod_bench_drift_{os.getpid()}"
    url = await fresh_postgres(name) if database == "postgresql" else fresh_sqlite(_WORKDIR, name)
    results = []
    try:
        async with await PaymentModule.connect(url, migrate=True) as module:
            for round_number in range(1, rounds + 1):
                spent: Counter[str] = Counter()
                started, cpu_started = time.perf_counter(), time.process_time()
                for _ in range(n):
                    await _flow(module, spent, read)
                result = {
                    "round": round_number,
                    "flows_before": (round_number - 1) * n,
                    "ms_per_flow": round((time.perf_counter() - started) / n * 1000, 2),
                    "cpu_ms_per_flow": round((time.process_time() - cpu_started) / n * 1000, 2),
                    "ms_per_operation": {op: round(spent[op] / n * 1000, 2) for op in spent},
                }
                print(json.dumps(result), flush=True)
                results.append(result)
    finally:
        if database == "postgresql":
            await drop_postgres(name)
        else:
            fresh_sqlite(_WORKDIR, name)  # removes the file
    first, last = results[0]["ms_per_flow"], results[-1]["ms_per_flow"]
    return {
        "bench": "drift",
        "at": now_iso(),
        "database": database,
        "n": n,
        "read": read,
        "rounds": results,
        "last_over_first": round(last / first, 3),
        "source": source_state(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of --n flows (default 5)")
    parser.add_argument("--n", type=int, default=300, help="flows per round (default 300)")
    parser.add_argument(
        "--read", action="store_true", help="each flow also reads its collection with its relations"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.database, args.rounds, args.n, args.read))))


if __name__ == "__main__":
    main()
