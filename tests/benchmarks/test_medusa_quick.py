"""Medusa's harness cannot rot: `python -m benchmarks.compare --quick` runs Medusa's own Payment
Module (Node, benchmarks/medusa/) and paymod's module on PostgreSQL, then renders the page.

It needs Node 20.19 or newer with npm, and npm's registry the first time (the pinned packages are
installed into benchmarks/medusa/node_modules, about a minute). Without them it fails and says what
is missing; it does not skip. No timing assertions: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The server the test suite uses; the bench creates (and drops) its own databases on it.
POSTGRES = os.environ.get("PAYMOD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ENV = {**os.environ, "PAYMOD_BENCH_POSTGRES_URL": POSTGRES}
OPS = (
    "create_payment_collections",
    "create_payment_session",
    "authorize_payment_session",
    "capture_payment",
    "refund_payment",
)
# What @medusajs/payment 2.21.2 sends per operation, BEGIN/COMMIT included (pinned in package-lock.json).
MEDUSA_STATEMENTS = dict(zip(OPS, (3, 6, 17, 25, 24), strict=True))


def run(*args: str, env: dict[str, str] = ENV, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def output_of(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"


def check_phases(line: dict[str, Any]) -> None:
    for phase, concurrency in (("sequential", 1), ("concurrent", 16)):
        result = line[phase]
        assert result["concurrency"] == concurrency
        assert result["errors"] == 0, result["first_errors"]
        assert result["flows"] == result["n"] == 10
        assert result["flows_per_s"] > 0 and result["latency_ms"]["p50"] > 0
        assert set(result["ops_median_ms"]) == set(OPS)
        assert result["cpu"]["pg_backend_cpu_ms_per_flow"] is not None


def test_quick_compare_runs_medusa_and_paymod_and_renders_the_page(tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = run(
        "benchmarks.compare",
        "--quick",
        "--target",
        "module",
        "--database",
        "postgresql",
        "--no-snapshot",
        "--no-docs",
        "--results-dir",
        str(results),
    )
    assert done.returncode == 0, output_of(done)

    [raw] = results.glob("compare-*.jsonl")
    lines = [json.loads(x) for x in raw.read_text().splitlines()]
    assert [(x["bench"], x.get("target")) for x in lines] == [
        ("medusa-module", "medusa"),
        ("paymod-module", "module"),
        ("compare-meta", None),
    ]
    medusa, module, meta = lines
    assert medusa["packages"]["@medusajs/payment"] == "2.21.2"
    assert medusa["check"] == {"ok": True, "final_collection_status": "completed"}
    assert {op: medusa["sql_per_op"][op]["statements"] for op in OPS} == MEDUSA_STATEMENTS
    assert (medusa["sql_statements_per_flow"], medusa["transactions_per_flow"]) == (75, 11)
    check_phases(medusa)
    assert medusa["sequential"]["cpu"]["node_cpu_ms_per_flow"] > 0
    assert medusa["peak_rss_mb"] > 0
    assert module["check"]["ok"] and module["database"] == "postgresql"
    check_phases(module)
    assert meta["medusa_packages"]["@medusajs/payment"] == "2.21.2"

    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(summary) == {"bench", "medusa/postgresql", "module/postgresql"}
    assert summary["medusa/postgresql"]["check_ok"] and summary["module/postgresql"]["check_ok"]

    # Re-rendering writes only the results part of the page.
    page = tmp_path / "performance.md"
    page.write_text("# Performance\n\nWritten by hand.\n")
    rendered = run("benchmarks.compare", "--from", str(raw), "--doc", str(page), "--no-chart", timeout=120)
    assert rendered.returncode == 0, output_of(rendered)
    text = page.read_text()
    assert text.startswith("# Performance\n\nWritten by hand.\n")
    assert "| Medusa module, PostgreSQL | **" in text
    module_row = next(row for row in text.splitlines() if row.startswith("| paymod module, PostgreSQL |"))
    assert "x |" in module_row  # flows/s relative to Medusa's
    assert "Medusa: `@medusajs/payment` 2.21.2" in text
    assert "--n 10 --warmup 2 --conc-warmup 4 --concurrency 16 --runs 1 --target module" in text


def test_an_unreachable_npm_registry_is_reported_not_retried() -> None:
    """Installing needs npm's registry; when it cannot be reached the bench says so and stops,
    before npm touches node_modules."""
    env = {**ENV, "npm_config_registry": "http://127.0.0.1:9/"}
    done = run("benchmarks.flow", "--target", "medusa", "--quick", "--reinstall", env=env, timeout=120)
    assert done.returncode == 1, output_of(done)
    assert "cannot reach npm's registry at http://127.0.0.1:9/" in done.stderr, output_of(done)
    [line] = [json.loads(x) for x in done.stdout.splitlines()]
    assert line["target"] == "medusa" and "cannot reach npm's registry" in line["error"]
