"""`python -m benchmarks.instructions` runs the flow under callgrind and reports the instructions of
one flow (more flows counted more instructions), and leaves no database behind. No count is asserted:
only that it was measured."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg


def test_the_instructions_bench_counts_a_flow(run_benchmark: Callable[..., list[dict[str, Any]]]) -> None:
    line = run_benchmark("instructions", "--flows", "1,3", timeout=900)[-1]
    assert line["bench"] == "instructions" and line["flows"] == [1, 3]
    assert line["instructions"]["3"] > line["instructions"]["1"] > 0
    assert line["instructions_per_flow"] == round((line["instructions"]["3"] - line["instructions"]["1"]) / 2)
    assert asyncio.run(_leftover_databases()) == 0


async def _leftover_databases() -> int:
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_database WHERE datname LIKE 'paymod\\_bench\\_instructions\\_%'"
            )
        )
    finally:
        await conn.close()
