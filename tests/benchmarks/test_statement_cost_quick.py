"""`python -m benchmarks.statement_cost` runs and reports each path's CPU per statement (no timing
assertion: only that each was measured), and leaves no scratch table behind."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg


def test_the_statement_cost_bench_runs(run_benchmark: Callable[..., list[dict[str, Any]]]) -> None:
    line = run_benchmark("statement_cost", "--n", "20", timeout=120)[-1]
    assert line["bench"] == "statement_cost" and line["n"] == 20
    assert line["sqlalchemy_text_cpu_ms"] > 0 and line["asyncpg_cpu_ms"] > 0
    assert line["driver_statement_cpu_ms"] > 0
    assert asyncio.run(_scratch_tables()) == 0


async def _scratch_tables() -> int:
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'paymod\\_bench\\_statement\\_cost\\_%'"
            )
        )
    finally:
        await conn.close()
