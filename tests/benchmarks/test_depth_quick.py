"""`python -m benchmarks.depth --quick` runs: it seeds a small PostgreSQL database with set-based SQL,
measures the admin payment list's pages (offset and keyset) under EXPLAIN, and the flow on the seeded
database and on an empty one. It checks the JSON line's shape and the rows seeded. No timing
assertions."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def test_the_depth_bench_runs(run_benchmark: Callable[..., list[dict[str, Any]]]) -> None:
    name = f"paymod_bench_depth_test_{os.getpid()}"
    line = run_benchmark("depth", "--quick", "--database-name", name, "--drop", timeout=600)[-1]
    rows = line["seed"]["rows"]
    assert rows["payment"] == rows["payment_collection"] == rows["payment_session"] == 2000
    assert 0 < rows["refund"] < rows["capture"] < 2000
    assert rows["event_outbox"] == 6000
    lists = line["lists"]
    assert {case["list"] for case in lists} >= {"newest first", "status captured, newest first"}
    for case in lists:
        assert case["median_ms"] > 0
        assert case["statements"], case
        for statement in case["statements"]:
            assert statement["plan"] and statement["sql"].startswith("SELECT")
    keyset = [c for c in lists if "keyset" in c["variant"] and c["list"] == "newest first"]
    assert any("Index Scan Backward" in " ".join(s["plan"]) for c in keyset for s in c["statements"])
    flows = line["flows"]
    assert flows["checks_ok"] and flows["errors"] == 0
    for phase in ("sequential", "concurrent"):
        summary = flows["summary"][phase]
        assert summary["empty_flows_per_s"] > 0 and summary["seeded_flows_per_s"] > 0
