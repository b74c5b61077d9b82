"""What the quick benchmark tests share: running `python -m benchmarks.<name>` from the repository
root and reading the JSON lines it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RunBenchmark = Callable[..., list[dict[str, Any]]]


def _run_benchmark(name: str, *args: str, timeout: float = 300) -> list[dict[str, Any]]:
    """Runs `python -m benchmarks.<name> <args>`, fails the test (with its output) unless it exits 0,
    and returns the JSON lines of its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def run_benchmark() -> RunBenchmark:
    return _run_benchmark
