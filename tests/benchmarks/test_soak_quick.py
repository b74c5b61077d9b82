"""The soak cannot rot: `python -m benchmarks.soak` runs here for a few seconds on PostgreSQL.

A real `paymod serve` (with its in-process worker) on a fresh database, three clients running the
whole mix; rows every 4 s. It must complete flows, see no 5xx and find no problem (replays, money
invariants, live deliveries). No timing assertions: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The server the test suite uses; the soak creates (and drops) its own database on it.
POSTGRES = os.environ.get("PAYMOD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
# The table's columns (benchmarks.soak.COLUMNS; the repository root is not importable from the tests).
COLUMNS = (
    "minute",
    "flows",
    "requests_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "server_rss_mib",
    "workers_rss_mib",
    "db_size_mib",
    "outbox_pending",
    "inbox_pending",
    "deliveries_pending_live",
    "deliveries_pending_dead",
    "hook_applied_p50_s",
    "hook_applied_p99_s",
    "live_delivered_p50_s",
    "live_delivered_p99_s",
    "flows_per_s",
)


def test_a_short_soak_completes_flows_without_5xx(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "benchmarks.soak", "--seconds", "8", "--interval", "4"]
    command += ["--clients", "3", "--drain", "2", "--quiet", "--database-url", POSTGRES]
    command += ["--results-dir", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    output = f"exit {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert done.returncode == 0, output

    [results] = tmp_path.glob("soak-*.jsonl")
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["run", "minute", "minute", "summary"], output
    for row in lines[1:3]:
        assert set(COLUMNS) <= set(row)
        assert row["requests_per_s"] > 0 and row["server_rss_mib"] > 0 and row["db_size_mib"] > 0
    summary = lines[-1]
    assert summary["flows"] > 0 and summary["flows"] == sum(row["flows"] for row in lines[1:3])
    assert summary["five_xx"] == 0
    assert summary["problems"] == {}, summary["problem_examples"]
    assert "| min | flows |" in done.stdout
