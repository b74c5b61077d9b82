"""`python -m benchmarks.statement_cost` runs and reports each path's CPU per statement (no timing
assertion: only that each was measured), and leaves no scratch table behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_the_statement_cost_bench_runs(
    run_benchmark: Callable[..., list[dict[str, Any]]], bench_postgres_count: Callable[[str], int]
) -> None:
    line = run_benchmark("statement_cost", "--n", "20", timeout=120)[-1]
    assert line["bench"] == "statement_cost" and line["n"] == 20
    assert line["sqlalchemy_text_cpu_ms"] > 0 and line["asyncpg_cpu_ms"] > 0
    assert line["driver_statement_cpu_ms"] > 0
    scratch = "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'paymod\\_bench\\_statement\\_cost\\_%'"
    assert bench_postgres_count(scratch) == 0
