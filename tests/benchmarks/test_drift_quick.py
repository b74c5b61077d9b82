"""`python -m benchmarks.drift` runs on both databases: a line per round, each operation timed, and a
summary line. No timing assertion."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = {"collection", "session", "authorize", "capture", "refund"}


@pytest.mark.parametrize(("database", "read"), [("sqlite", True), ("postgresql", False)])
def test_the_drift_bench_runs(database: str, read: bool) -> None:
    options = ["--database", database, "--rounds", "2", "--n", "3", *(["--read"] if read else [])]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.drift", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    summary = lines[-1]
    assert summary["bench"] == "drift" and summary["database"] == database
    assert [r["round"] for r in summary["rounds"]] == [1, 2] and lines[:-1] == summary["rounds"]
    for result in summary["rounds"]:
        assert result["ms_per_flow"] > 0
        assert set(result["ms_per_operation"]) == (OPERATIONS | {"read"} if read else OPERATIONS)
    assert summary["last_over_first"] > 0
