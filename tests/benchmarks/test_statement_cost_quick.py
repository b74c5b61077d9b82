"""`python -m benchmarks.statement_cost` runs and reports both paths' CPU per statement (no timing
assertion: only that each was measured), and leaves no scratch table behind."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]


def test_the_statement_cost_bench_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.statement_cost", "--n", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["bench"] == "statement_cost" and line["n"] == 20
    assert line["sqlalchemy_text_cpu_ms"] > 0 and line["asyncpg_cpu_ms"] > 0
    assert asyncio.run(_scratch_tables()) == 0


async def _scratch_tables() -> int:
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'paymod\\_bench\\_statement\\_cost\\_%'"
            )
        )
    finally:
        await conn.close()
