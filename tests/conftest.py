"""Shared fixtures: every integration test runs on SQLite and on PostgreSQL.

PostgreSQL must be reachable (`./dev test` starts it when it is down); a test never skips because
it is not. Each database is migrated once per run with the real Alembic migrations; each test then
starts from the migrated, seeded state (SQLite: a copy of a migrated file; PostgreSQL: tables
truncated and the seed rows put back).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from paymod import PaymentModule
from paymod.persistence.database import Database
from paymod.persistence.migrate import upgrade
from paymod.persistence.tables import metadata
from paymod.providers.testing import TestingPaymentProvider

# `./dev run` writes ./paymod.toml, which paymod reads when PAYMOD_CONFIG is unset: the suite reads
# no settings file unless a test names one (an empty PAYMOD_CONFIG means no file).
os.environ.setdefault("PAYMOD_CONFIG", "")

ADMIN_URL = os.environ.get("PAYMOD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_DB = f"paymod_test_{os.getpid()}"
WEBHOOK_SECRET = "whsec_testing"

TESTING_PROVIDER = {
    "resolve": "paymod.providers.testing",
    "id": "default",
    "options": {"webhook_secret": WEBHOOK_SECRET},
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (
            item.get_closest_marker("postgres_only")
            and callspec
            and callspec.params.get("database") == "sqlite"
        ):
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL row locks; SQLite serializes writers"))


_prepared: dict[str, str] = {}


async def _postgres_url() -> str:
    """A fresh, migrated PostgreSQL database for this run (created on first use)."""
    if "postgresql" not in _prepared:
        admin = await asyncpg.connect(ADMIN_URL, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{TEST_DB}"')
        finally:
            await admin.close()
        url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{TEST_DB}"
        database = Database(url)
        await upgrade(database.engine)
        await database.close()
        _prepared["postgresql"] = url
    return _prepared["postgresql"]


async def _sqlite_template(directory: Path) -> Path:
    """A migrated SQLite file that each test copies (created on first use)."""
    if "sqlite" not in _prepared:
        path = directory / "template.db"
        database = Database(f"sqlite:///{path}")
        await upgrade(database.engine)
        await database.close()
        _prepared["sqlite"] = str(path)
    return Path(_prepared["sqlite"])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if "postgresql" in _prepared:

        async def drop() -> None:
            admin = await asyncpg.connect(ADMIN_URL, timeout=10)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
            finally:
                await admin.close()

        asyncio.run(drop())


async def _reset_postgres(url: str) -> None:
    database = Database(url)
    try:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if t.name != "refund_reason")
        async with database.write() as conn:
            await conn.execute(text(f"TRUNCATE {names} CASCADE"))
            await conn.execute(text("DELETE FROM refund_reason WHERE id NOT LIKE 'refr_01SEED%'"))
            await conn.execute(text("UPDATE refund_reason SET deleted_at = NULL"))
    finally:
        await database.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    """Which database the test runs on."""
    return str(request.param)


@pytest.fixture
async def database_url(database: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> str:
    if database == "sqlite":
        template = await _sqlite_template(tmp_path_factory.getbasetemp())
        target = tmp_path / "paymod.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url = await _postgres_url()
    await _reset_postgres(url)
    return url


@pytest.fixture
async def module(database_url: str) -> AsyncIterator[PaymentModule]:
    async with await PaymentModule.connect(database_url, providers=[TESTING_PROVIDER], migrate=False) as m:
        yield m


@pytest.fixture
def testing_provider(module: PaymentModule) -> TestingPaymentProvider:
    provider = module.provider("pp_testing_default")
    assert isinstance(provider, TestingPaymentProvider)
    return provider


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"paymod test databases: sqlite (file per test), postgresql ({ADMIN_URL.rsplit('/', 1)[0]}/{TEST_DB})"
    ]


def _run_benchmark(name: str, *args: str, timeout: float = 300) -> list[dict[str, Any]]:
    """Runs `python -m benchmarks.<name> <args>` from the repository root, fails the test (with its
    output) unless it exits 0, and returns the JSON lines of its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def run_benchmark() -> Callable[..., list[dict[str, Any]]]:
    """The quick benchmark tests' runner (`tests/benchmarks`)."""
    return _run_benchmark


# The database the benchmarks connect to for their scratch tables and to create their own databases.
BENCH_ADMIN_URL = os.environ.get("PAYMOD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _bench_postgres_count(query: str) -> int:
    conn = await asyncpg.connect(BENCH_ADMIN_URL)
    try:
        return int(await conn.fetchval(query))
    finally:
        await conn.close()


@pytest.fixture
def bench_postgres_count() -> Callable[[str], int]:
    """A `SELECT count(*) ...` in the benchmarks' PostgreSQL database: what a benchmark left behind."""
    return lambda query: asyncio.run(_bench_postgres_count(query))
