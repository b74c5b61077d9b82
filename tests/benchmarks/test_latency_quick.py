"""`python -m benchmarks.latency --quick` runs: a slow testing provider behind a real `paymod serve` on
PostgreSQL, flows in flight over HTTP. It checks the JSON line's shape, that every flow succeeded and
that no request waited for the pool until it timed out. No timing assertions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def test_the_provider_latency_bench_runs(
    tmp_path: Path, run_benchmark: Callable[..., list[dict[str, Any]]]
) -> None:
    line = run_benchmark("latency", "--quick", "--workdir", str(tmp_path))[-1]
    assert line["check"] == {"ok": True, "final_collection_status": "completed"}
    assert line["errors"] == 0 and line["pool_timeouts"] == 0 and line["server_log_errors"] == 0
    assert line["provider_latency_s"] == 0.05 and line["in_flight"] == 8
    for phase, concurrency in (("cpu_bound", 4), ("sequential_slow", 1), ("in_flight_slow", 8)):
        assert line[phase]["concurrency"] == concurrency
        assert line[phase]["flows"] == line[phase]["n"] > 0
    assert line["flow_latency_ms"] > 0 and line["cpu_bound_flows_per_s"] > 0
    assert line["bound_flows_per_s"] == min(line["cpu_bound_flows_per_s"], line["latency_bound_flows_per_s"])
    assert line["of_bound"] > 0
    assert line["server_peak_rss_mb"] > 0 and line["bench_peak_rss_mb"] > 0
    assert line["sql_statements_per_flow"] > 0
