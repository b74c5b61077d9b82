"""The `paymod` command as an operator meets it: real processes on SQLite and PostgreSQL databases."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import pytest

from e2e.support import (
    SERVER_STARTUP_SECONDS,
    TESTING,
    free_port,
    paymod_command,
    paymod_env,
    stop_process,
)
from paymod import PaymentModule, __version__
from paymod.persistence.database import Database
from paymod.persistence.migrate import upgrade

ADMIN_URL = os.environ.get("PAYMOD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
EXAMPLE_CONFIG = Path(__file__).parents[2] / "examples" / "paymod.toml"
PRICING_ERROR = "refr_01SEEDPRICINGERROR0000000"  # seeded by the first migration
FIRST_REVISION = "ef675400047d"
CLI_TIMEOUT_SECONDS = 60


def paymod(
    *args: str, env: Mapping[str, str], cwd: Path, timeout: float = CLI_TIMEOUT_SECONDS
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*paymod_command(), *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def without_paymod_settings() -> dict[str, str]:
    """The environment of someone who set nothing: no PAYMOD_CONFIG, keys or database URL."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PAYMOD_")}


# -- a database that was never migrated -----------------------------------------------------------
@pytest.fixture
async def unmigrated_url(database: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database nobody ran `paymod migrate` on: a SQLite path with no file, an empty PostgreSQL one."""
    if database == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"paymod_unmigrated_{os.getpid()}"
    admin = await asyncpg.connect(ADMIN_URL, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    admin = await asyncpg.connect(ADMIN_URL, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _table_count(url: str) -> int:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        return count
    finally:
        await connection.close()


@pytest.mark.parametrize(
    "command",
    [
        ["payments", "list"],
        ["payments", "capture", "pay_missing"],
        ["webhook-endpoints", "create", "http://127.0.0.1:9/hooks"],
        ["api-keys", "list"],
        ["providers", "list", "--json"],
        ["worker"],
        ["serve", "--no-migrate", "--port", "9"],
    ],
    ids=lambda command: " ".join(command),
)
async def test_a_command_on_an_unmigrated_database_says_to_run_migrate(
    database: str, unmigrated_url: str, tmp_path: Path, command: list[str]
) -> None:
    env = paymod_env(unmigrated_url, tmp_path)

    result = paymod(*command, env=env, cwd=tmp_path)

    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr + result.stdout
    [line] = result.stderr.strip().splitlines()
    assert "run `paymod migrate`" in line
    # Nothing was created: no empty SQLite file, no table (the worker's heartbeat row included).
    if database == "sqlite":
        assert not (tmp_path / "fresh.db").exists()
    else:
        assert await _table_count(unmigrated_url) == 0


def test_after_migrate_the_same_commands_work(unmigrated_url: str, tmp_path: Path) -> None:
    env = paymod_env(unmigrated_url, tmp_path)

    migrated = paymod("migrate", env=env, cwd=tmp_path)
    listed = paymod("payments", "list", env=env, cwd=tmp_path)

    assert migrated.returncode == 0, migrated.stderr
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "no payments\n", "")


@pytest.mark.parametrize("database", ["sqlite"])
async def test_a_database_behind_the_migrations_says_to_run_migrate(database: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Database(url)
    await upgrade(old.engine, FIRST_REVISION)
    await old.close()

    result = paymod("webhook-endpoints", "list", env=paymod_env(url, tmp_path), cwd=tmp_path)

    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: the database schema is older than this paymod: run `paymod migrate`"
    )


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing_listens_here"

    result = paymod("payments", "list", env=paymod_env(url, tmp_path), cwd=tmp_path)

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot reach the database postgresql://postgres@127.0.0.1:")


# -- what the commands print ----------------------------------------------------------------------
async def _captured_and_refunded(module: PaymentModule, amount: str, currency: str) -> str:
    collection = await module.create_payment_collections({"currency_code": currency, "amount": amount})
    session = await module.create_payment_session(
        collection.id, {"provider_id": TESTING, "amount": amount, "currency_code": currency, "data": {}}
    )
    payment = await module.authorize_payment_session(session.id)
    assert payment is not None
    return payment.id


async def test_amounts_are_printed_at_the_currency_precision_and_json_has_the_refund_reason(
    module: PaymentModule, database_url: str, tmp_path: Path
) -> None:
    usd = await _captured_and_refunded(module, "12.5", "usd")
    await module.capture_payment({"payment_id": usd, "amount": "10"})
    await module.refund_payment(
        {"payment_id": usd, "amount": "2.5", "refund_reason_id": PRICING_ERROR, "note": "[sale]"}
    )
    jpy = await _captured_and_refunded(module, "1000", "jpy")
    await module.capture_payment({"payment_id": jpy})
    env = paymod_env(database_url, tmp_path)

    table = paymod("payments", "list", env=env, cwd=tmp_path)
    shown = paymod("payments", "show", usd, env=env, cwd=tmp_path)
    as_json = paymod("payments", "list", "--json", env=env, cwd=tmp_path)

    assert table.returncode == 0, table.stderr
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in table.stdout.splitlines()]
    rows = {row[0]: row[1:5] for row in cells if row and row[0].startswith("pay_")}
    assert rows[usd] == ["partially_refunded", "12.50 usd", "10.00", "2.50"]
    assert rows[jpy] == ["captured", "1000 jpy", "1000", "0"]
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"amount\s+12\.50 usd", shown.stdout)
    assert re.search(r"capture\s+capt?_\w+\s+10\.00\s", shown.stdout)
    assert re.search(r"refund\s+ref_\w+\s+2\.50\s+pricing_error\s+\[sale\]", shown.stdout)
    payments = {p["id"]: p for p in json.loads(as_json.stdout, parse_float=Decimal)["payments"]}
    [refund] = payments[usd]["refunds"]
    assert refund["amount"] == Decimal("2.5")
    assert refund["refund_reason"]["id"] == PRICING_ERROR
    assert refund["refund_reason"]["code"] == "pricing_error"


def test_empty_lists_are_one_line_and_json_stays_a_list(database_url: str, tmp_path: Path) -> None:
    env = paymod_env(database_url, tmp_path)
    expected = {
        ("payments", "list", "--status", "refunded"): "no payments (status refunded)\n",
        ("webhooks", "list", "--failed"): "no webhook events (status failed)\n",
        ("webhook-endpoints", "list"): (
            "no webhook endpoints: add one with `paymod webhook-endpoints create URL`\n"
        ),
        ("api-keys", "list"): "no API keys: create one with `paymod api-keys create --type secret`\n",
    }

    for command, line in expected.items():
        result = paymod(*command, env=env, cwd=tmp_path)
        assert (result.returncode, result.stdout) == (0, line), result.stderr

    as_json = paymod("payments", "list", "--json", env=env, cwd=tmp_path)
    assert json.loads(as_json.stdout) == {"payments": []}


# -- help, version and start-up -------------------------------------------------------------------
@pytest.mark.parametrize("database", ["sqlite"])
def test_version_and_help_read_as_written(database: str, tmp_path: Path) -> None:
    env = without_paymod_settings()

    version = paymod("--version", env=env, cwd=tmp_path)
    serve_help = paymod("serve", "--help", env={**env, "COLUMNS": "200"}, cwd=tmp_path)
    show_help = paymod("payments", "show", "--help", env=env, cwd=tmp_path)
    missing = paymod("payments", "refund", env=env, cwd=tmp_path)

    assert (version.returncode, version.stdout) == (0, f"paymod {__version__}\n")
    assert "(default: worker.enabled of the config file, else yes)" in serve_help.stdout
    assert "Usage: paymod payments show [OPTIONS] PAYMENT_ID" in show_help.stdout
    assert missing.returncode == 2
    assert "Usage: paymod payments refund [OPTIONS] PAYMENT_ID" in missing.stderr
    assert "{" not in show_help.stdout + missing.stderr


# rich is typer's, for its help screens; a database command needs SQLAlchemy and pydantic.
HEAVY = ("sqlalchemy", "pydantic", "fastapi", "starlette", "uvicorn", "httpx", "stripe", "alembic")
LOADED = """
import sys
from paymod.cli import main
sys.argv = ["paymod", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("LOADED", " ".join(sorted({name.split(".")[0] for name in sys.modules})), file=sys.stderr)
"""


def _loaded(*args: str, env: Mapping[str, str], cwd: Path) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", LOADED, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    [line] = [line for line in result.stderr.splitlines() if line.startswith("LOADED ")]
    return set(line.split()[1:])


@pytest.mark.parametrize("database", ["sqlite"])
def test_commands_import_only_what_they_need(database: str, tmp_path: Path) -> None:
    env = paymod_env(f"sqlite:///{tmp_path / 'paymod.db'}", tmp_path)
    assert paymod("migrate", env=env, cwd=tmp_path).returncode == 0

    assert _loaded("--help", env=env, cwd=tmp_path).isdisjoint(HEAVY)
    assert _loaded("--version", env=env, cwd=tmp_path).isdisjoint({*HEAVY, "rich"})
    listed = _loaded("providers", "list", env=env, cwd=tmp_path)
    assert {"sqlalchemy", "pydantic"} <= listed
    assert listed.isdisjoint({"fastapi", "uvicorn", "httpx", "stripe", "alembic"})


# -- the Quick start: ./paymod.toml, written once, read by every command from that directory --------
def _serve(directory: Path, env: Mapping[str, str], port: int) -> subprocess.Popen[bytes]:
    """`paymod serve --dev` as `./dev run` starts it, once it has announced itself."""
    log = directory / f"serve-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*paymod_command(), "serve", "--dev", "--port", str(port), "--log-level", "warning"],
            env=dict(env),
            cwd=directory,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + SERVER_STARTUP_SECONDS
    while "store routes:" not in log.read_text():
        if process.poll() is not None:
            raise AssertionError(f"paymod serve exited with {process.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            stop_process(process)
            raise AssertionError(
                f"paymod serve did not start in {SERVER_STARTUP_SECONDS}s:\n{log.read_text()}"
            )
        time.sleep(0.2)
    return process


@pytest.mark.parametrize("database", ["sqlite"])
def test_the_quick_start_shares_settings_and_keeps_its_keys(database: str, tmp_path: Path) -> None:
    env = without_paymod_settings()

    written = paymod("init", "--from", str(EXAMPLE_CONFIG), env=env, cwd=tmp_path)
    again = paymod("init", "--from", str(EXAMPLE_CONFIG), env=env, cwd=tmp_path)

    assert written.returncode == 0, written.stderr
    settings_file = tmp_path / "paymod.toml"
    assert settings_file.stat().st_mode & 0o777 == 0o600
    before = settings_file.read_bytes()
    local = tomllib.loads(before.decode())
    admin, publishable = local["admin_api_key"], local["publishable_api_key"]
    assert admin.startswith("sk_dev_") and publishable.startswith("pk_dev_")
    assert admin in written.stdout and publishable in written.stdout
    assert [p["resolve"] for p in local["providers"]] == ["testing"]
    assert again.returncode == 1 and "already exists" in again.stderr
    assert settings_file.read_bytes() == before

    assert paymod("migrate", env=env, cwd=tmp_path).returncode == 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = _serve(tmp_path, env, port)
    try:
        announced = (tmp_path / f"serve-{port}.log").read_text()
        assert "settings: paymod.toml" in announced
        assert f"Bearer {admin}" in announced and publishable in announced
        created = httpx.post(
            f"{base}/admin/payment-collections",
            json={"amount": "30", "currency_code": "usd"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert created.status_code == 200, created.text
        collection = created.json()["payment_collection"]["id"]
        store = {"x-publishable-api-key": publishable}
        session = httpx.post(
            f"{base}/store/payment-collections/{collection}/payment-sessions",
            json={"provider_id": TESTING},
            headers=store,
        )
        assert session.status_code == 200, session.text
        authorized = httpx.post(f"{base}/store/payment-collections/{collection}/authorize", headers=store)
        assert authorized.status_code == 200, authorized.text
        payment = authorized.json()["payment"]["id"]

        # Another shell in the same directory: same database, same providers.
        captured = paymod("payments", "capture", payment, env=env, cwd=tmp_path)
        providers = paymod("providers", "list", "--json", env=env, cwd=tmp_path)
    finally:
        stop_process(server)
    assert captured.returncode == 0, captured.stderr
    assert re.search(rf"{payment}\s+captured", captured.stdout)
    assert {"id": TESTING, "is_enabled": True, "configured": True} in json.loads(providers.stdout)[
        "payment_providers"
    ]

    # The next day: the same keys open the API.
    server = _serve(tmp_path, env, port)
    try:
        again_shown = httpx.get(
            f"{base}/admin/payments/{payment}", headers={"Authorization": f"Bearer {admin}"}
        )
    finally:
        stop_process(server)
    assert again_shown.status_code == 200
    assert again_shown.json()["payment"]["captured_at"] is not None
