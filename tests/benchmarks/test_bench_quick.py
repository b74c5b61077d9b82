"""The benchmark cannot rot: `python -m benchmarks.flow --quick` runs in CI.

It checks that the JSON lines parse, that the flow's correctness check passed and that the counts
are positive. No timing assertions: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OPS = (
    "create_payment_collections",
    "create_payment_session",
    "authorize_payment_session",
    "capture_payment",
    "refund_payment",
)


def run_bench(workdir: Path, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.flow", "--quick", "--workdir", str(workdir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


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


def test_module_on_sqlite(tmp_path: Path) -> None:
    lines = run_bench(tmp_path, "--target", "module", "--database", "sqlite")
    assert len(lines) == 1
    check_line(lines[0], "module", "sqlite")
    assert str(lines[0]["sql_counted"]).startswith("in process")


def test_http_on_sqlite(tmp_path: Path) -> None:
    """A real `paymod serve` subprocess, SQL counted on the server side, its peak RSS from /proc."""
    lines = run_bench(tmp_path, "--target", "http", "--database", "sqlite")
    assert len(lines) == 1
    check_line(lines[0], "http", "sqlite")
    assert str(lines[0]["sql_counted"]).startswith("server side")
    assert lines[0]["sequential"]["cpu"]["server_cpu_ms_per_flow"] > 0
