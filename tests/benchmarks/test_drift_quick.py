"""`python -m benchmarks.drift` runs on both databases: a line per round, each operation timed, and a
summary line. No timing assertion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

OPERATIONS = {"collection", "session", "authorize", "capture", "refund"}


@pytest.mark.parametrize(("database", "read"), [("sqlite", True), ("postgresql", False)])
def test_the_drift_bench_runs(
    database: str, read: bool, run_benchmark: Callable[..., list[dict[str, Any]]]
) -> None:
    options = ["--database", database, "--rounds", "2", "--n", "3", *(["--read"] if read else [])]
    lines = run_benchmark("drift", *options)
    summary = lines[-1]
    assert summary["bench"] == "drift" and summary["database"] == database
    assert [r["round"] for r in summary["rounds"]] == [1, 2] and lines[:-1] == summary["rounds"]
    for result in summary["rounds"]:
        assert result["ms_per_flow"] > 0
        assert set(result["ms_per_operation"]) == (OPERATIONS | {"read"} if read else OPERATIONS)
    assert summary["last_over_first"] > 0
