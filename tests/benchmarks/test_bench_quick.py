"""The benchmark cannot rot: `python -m benchmarks.flow --quick` runs in CI.

It checks that the JSON lines parse, that the flow's correctness check passed and that the counts
are positive. No timing assertions: the numbers depend on the machine and its load.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

RunBenchmark = Callable[..., list[dict[str, Any]]]  # the `run_benchmark` fixture (tests/conftest.py)
OPS = (
    "create_payment_collections",
    "create_payment_session",
    "authorize_payment_session",
    "capture_payment",
    "refund_payment",
)


def check_line(line: dict[str, Any], target: str, database: str) -> None:
    assert "error" not in line, line
    assert (line["target"], line["database"]) == (target, database)
    assert line["check"] == {"ok": True, "final_collection_status": "completed"}
    assert line["sql_statements_per_flow"] > 0
    assert line["sql_data_statements_per_flow"] > 0
    assert line["transactions_per_flow"] > 0
    for op in OPS:
        assert line["sql_per_op"][op]["statements"] > 0, op
    for phase, concurrency in (("sequential", 1), ("concurrent", 16)):
        result = line[phase]
        assert result["concurrency"] == concurrency
        assert result["errors"] == 0, result["first_errors"]
        assert result["flows"] == result["n"] > 0
        assert result["flows_per_s"] > 0
        assert result["latency_ms"]["p50"] > 0
        assert set(result["ops_median_ms"]) == set(OPS)
    assert line["peak_rss_mb"] > 0


def test_module_on_sqlite(tmp_path: Path, run_benchmark: RunBenchmark) -> None:
    lines = run_benchmark(
        "flow", "--quick", "--workdir", str(tmp_path), "--target", "module", "--database", "sqlite"
    )
    assert len(lines) == 1
    check_line(lines[0], "module", "sqlite")
    assert str(lines[0]["sql_counted"]).startswith("in process")


def test_http_on_sqlite(tmp_path: Path, run_benchmark: RunBenchmark) -> None:
    """A real `paymod serve` subprocess, SQL counted on the server side, its peak RSS from /proc."""
    lines = run_benchmark(
        "flow", "--quick", "--workdir", str(tmp_path), "--target", "http", "--database", "sqlite"
    )
    assert len(lines) == 1
    check_line(lines[0], "http", "sqlite")
    assert str(lines[0]["sql_counted"]).startswith("server side")
    assert lines[0]["sequential"]["cpu"]["server_cpu_ms_per_flow"] > 0
