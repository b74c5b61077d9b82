"""Schemathesis's own CLI, every check on (`st run URL/openapi.json --checks all`), against a real
`paymod serve` on SQLite and PostgreSQL: the OpenAPI document says exactly what the server accepts.

All four phases run (examples, coverage, fuzzing, stateful) with EXAMPLES cases per operation and
a fixed seed (PAYMOD_FUZZ_EXAMPLES and PAYMOD_FUZZ_SEED change them). `schemathesis_hooks.py` gives
each schema-valid request its own Idempotency-Key, as a client does, and lets through only the 400s
a schema cannot describe (state rules, listed there). The server runs without its worker
(`--no-worker`): the fuzzer registers webhook endpoints at made-up URLs, and nothing may be sent to
them.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from e2e.support import ADMIN_KEY, PUBLISHABLE_KEY, running_server

EXAMPLES = int(os.environ.get("PAYMOD_FUZZ_EXAMPLES", "30"))
SEED = os.environ.get("PAYMOD_FUZZ_SEED", "1")
ST = Path(sys.executable).with_name("st")
TESTS = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get("PAYMOD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgresql"])
def fuzz_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of its own: the fuzzer leaves the shared test database alone."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fuzz.db'}"
        return
    name = f"paymod_fuzz_{os.getpid()}"

    async def run(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_schemathesis_with_every_check_finds_no_failure(
    fuzz_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Generated URLs may pass the server's 16 KiB limit on a request's headers (a 431, tested in
    # test_server_limits.py); the limit is raised here so the routes' own validation answers them.
    with running_server(
        fuzz_database,
        tmp_path,
        extra_env={"PAYMOD_SERVER__HEADER_LIMIT": str(1024 * 1024)},
        serve_args=("--no-worker",),
    ) as server:
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "e2e.schemathesis_hooks",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        }
        run = subprocess.run(
            [
                str(ST),
                "run",
                f"{server.base_url}/openapi.json",
                "-H",
                f"Authorization: Bearer {ADMIN_KEY}",
                "-H",
                f"x-publishable-api-key: {PUBLISHABLE_KEY}",
                "--checks",
                "all",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                SEED,
                "--report",
                "junit",
                "--report-junit-path",
                str(tmp_path / "junit.xml"),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        server_log = server.log.read_text()
    summary = [line for line in run.stdout.splitlines() if line.startswith("=") and " in " in line]
    with capsys.disabled():
        print(f"\nschemathesis on {fuzz_database.split(':', 1)[0]}: {summary[-1] if summary else '?'}")
    report = (tmp_path / "junit.xml").read_text()
    assert run.returncode == 0, (
        f"{run.stdout[-20000:]}\n{run.stderr[-5000:]}\n\nserver log:\n{server_log[-5000:]}"
    )
    # Every operation ran, and the run reports no failure and no error.
    assert 'failures="0"' in report and 'errors="0"' in report, report[:2000]
    selected = re.search(r"Selected: (\d+)/(\d+)", run.stdout)
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert selected and tested, run.stdout[-3000:]
    assert int(tested.group(1)) == int(selected.group(2)) >= 43, run.stdout[-3000:]
    assert "Traceback" not in server_log, server_log[-5000:]
