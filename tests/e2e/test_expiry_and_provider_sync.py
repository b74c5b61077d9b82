"""Authorization expiry and the janitor as an operator meets them: a real `paymod serve` (with its
in-process worker) settles a session whose webhook never came and expires a lapsed authorization,
whose capture the admin API then refuses; `paymod reconcile --provider-sync` reports what it checked."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from e2e.support import (
    ADMIN,
    Api,
    json_of,
    paymod_command,
    paymod_env,
    running_server,
    write_config,
)
from paymod import PaymentModule

WAIT_SECONDS = 30.0
QUICK_WORKER = "session_sync_after = 0.2\nsession_sync_interval = 0.2\nauthorization_expiry_interval = 0.2\n"


def quick_config(directory: Path) -> Path:
    """The real-process tests' config, with a janitor and an expiry job that look every 0.2 s."""
    config = directory / "quick.toml"
    config.write_text(write_config(directory).read_text() + QUICK_WORKER)
    return config


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.1)
    raise AssertionError(what)


async def test_the_server_settles_silent_sessions_and_expires_lapsed_authorizations(
    database_url: str, tmp_path: Path
) -> None:
    config = quick_config(tmp_path)
    with running_server(database_url, tmp_path, {"PAYMOD_CONFIG": str(config)}) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            api = Api(client)
            silent = await api.collection(50)
            await api.session(silent["id"], data={"scenario": "silent", "settles_as": "authorized"})
            pending = await api.authorize(silent["id"])
            assert pending.status_code == 200, pending.text
            lapsing = await api.payment(40, data={"authorization_ttl": 0.5})
            assert lapsing["authorization_expires_at"] is not None

            async def collection_status(id: str, wanted: str) -> bool:
                response = await client.get(f"/admin/payment-collections/{id}", headers=ADMIN)
                return bool(json_of(response)["payment_collection"]["status"] == wanted)

            await eventually(lambda: collection_status(silent["id"], "authorized"), "the janitor authorized")
            await eventually(
                lambda: collection_status(lapsing["payment_collection_id"], "canceled"), "the expiry"
            )
            found = json_of(await client.get(f"/admin/payments/{lapsing['id']}", headers=ADMIN))["payment"]
            assert found["expired_at"] is not None and found["canceled_at"] is not None
            refused = await api.capture(lapsing["id"])
            assert refused.status_code == 400, refused.text
            assert (json_of(refused)["type"], json_of(refused)["code"]) == (
                "not_allowed",
                "authorization_expired",
            )


async def test_paymod_reconcile_provider_sync_reports_what_it_checked(
    database_url: str, tmp_path: Path
) -> None:
    env = paymod_env(database_url, tmp_path)
    providers = [{"resolve": "paymod.providers.testing", "id": "default", "options": {}}]
    async with await PaymentModule.connect(database_url, providers=providers, migrate=False) as module:
        collection = await module.create_payment_collections({"currency_code": "usd", "amount": 30})
        session = await module.create_payment_session(
            collection.id,
            {
                "provider_id": "pp_testing_default",
                "amount": 30,
                "currency_code": "usd",
                "data": {"scenario": "silent", "settles_as": "captured"},
            },
        )
        assert await module.authorize_payment_session(session.id) is None

        def reconcile(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*paymod_command(), "reconcile", *args],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        waiting = await asyncio.to_thread(reconcile, "--provider-sync")  # younger than 15 minutes
        assert waiting.returncode == 0, waiting.stderr
        assert "provider sync: 0 session(s) checked, 0 changed" in waiting.stdout
        done = await asyncio.to_thread(reconcile, "--provider-sync", "--sync-after", "0", "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["runs"] == []
        [checked] = report["sessions"]
        assert (checked["session_id"], checked["before"], checked["provider_status"]) == (
            session.id,
            "pending_authorization",
            "captured",
        )
        assert (checked["outcome"], checked["after"], checked["changed"]) == ("captured", "authorized", True)
        settled = await module.retrieve_payment_collection(collection.id)
        assert settled.status == "completed"
        again = await asyncio.to_thread(reconcile, "--provider-sync", "--sync-after", "0")
        assert "provider sync: 0 session(s) checked, 0 changed" in again.stdout
