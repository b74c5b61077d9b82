"""What one statement costs the Python process: the same primary-key SELECT through SQLAlchemy's
asyncio layer, as a `DriverStatement` (compiled once by SQLAlchemy, sent on the driver's connection:
how paymod sends its money path's statements) and on the raw asyncpg connection under both.

    python -m benchmarks.statement_cost [--n 3000]

Runs on a scratch table in PostgreSQL's `postgres` database (dropped afterwards), over one
connection, and prints the CPU time of this process per statement (`time.process_time`: the
round trip's wait is not counted), the best of three rounds each, as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from benchmarks.common import POSTGRES_ADMIN, now_iso
from paymod.persistence.database import normalize_url
from paymod.persistence.driver import DriverStatement

_TABLE = f"paymod_bench_statement_cost_{os.getpid()}"
_SELECT = f"SELECT id, amount FROM {_TABLE} WHERE id = $1"


async def _cpu_ms_per_call(call: Callable[[], Awaitable[Any]], n: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(n):
            await call()
        best = min(best, (time.process_time() - started) / n * 1000)
    return round(best, 4)


async def measure(n: int) -> dict[str, Any]:
    engine = create_async_engine(normalize_url(POSTGRES_ADMIN))
    try:
        async with engine.connect() as conn:
            await conn.execute(
                text(f"CREATE TABLE IF NOT EXISTS {_TABLE} (id text PRIMARY KEY, amount numeric)")
            )
            await conn.execute(text(f"INSERT INTO {_TABLE} VALUES ('a', 1) ON CONFLICT DO NOTHING"))
            await conn.commit()
            through_sqlalchemy = text(_SELECT.replace("$1", ":id"))

            async def sqlalchemy_text() -> Any:
                return (await conn.execute(through_sqlalchemy, {"id": "a"})).mappings().first()

            on_driver = DriverStatement(through_sqlalchemy)

            async def driver_statement() -> Any:
                return await on_driver.first(conn, {"id": "a"})

            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None

            async def asyncpg_raw() -> Any:
                return await raw.fetchrow(_SELECT, "a")

            await conn.rollback()
            result = {
                "bench": "statement_cost",
                "at": now_iso(),
                "n": n,
                "sqlalchemy_text_cpu_ms": await _cpu_ms_per_call(sqlalchemy_text, n),
                "driver_statement_cpu_ms": await _cpu_ms_per_call(driver_statement, n),
                "asyncpg_cpu_ms": await _cpu_ms_per_call(asyncpg_raw, n),
            }
            await conn.rollback()
            await conn.execute(text(f"DROP TABLE {_TABLE}"))
            await conn.commit()
            return result
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=3000, help="statements per round (default 3000)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.n))))


if __name__ == "__main__":
    main()
