"""`python -m benchmarks.instructions` runs the flow under callgrind and reports the instructions of
one flow (more flows counted more instructions), and leaves no database behind. No count is asserted:
only that it was measured."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_the_instructions_bench_counts_a_flow(
    run_benchmark: Callable[..., list[dict[str, Any]]], bench_postgres_count: Callable[[str], int]
) -> None:
    line = run_benchmark("instructions", "--flows", "1,3", timeout=900)[-1]
    assert line["bench"] == "instructions" and line["flows"] == [1, 3]
    assert line["instructions"]["3"] > line["instructions"]["1"] > 0
    assert line["instructions_per_flow"] == round((line["instructions"]["3"] - line["instructions"]["1"]) / 2)
    leftover = "SELECT count(*) FROM pg_database WHERE datname LIKE 'paymod\\_bench\\_instructions\\_%'"
    assert bench_postgres_count(leftover) == 0
