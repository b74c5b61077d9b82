"""`paymod serve` as a real process on a loopback port, and the operator CLI on the same database."""

from __future__ import annotations

import json
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from e2e.support import ADMIN, STORE, SYSTEM, TESTING, paymod_command, running_server

CLI_TIMEOUT_SECONDS = 60


def cli(server_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*paymod_command(), *args],
        env=server_env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


def test_paymod_serve_takes_a_checkout_through_to_a_refund(database_url: str, tmp_path: Path) -> None:
    with (
        running_server(database_url, tmp_path) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        # The region from the TOML file was linked at start.
        providers = http.get("/store/payment-providers?region_id=reg_e2e", headers=STORE).json()
        assert {p["id"] for p in providers["payment_providers"]} == {SYSTEM, TESTING}

        created = http.post(
            "/admin/payment-collections", json={"amount": "80.5", "currency_code": "usd"}, headers=ADMIN
        )
        assert created.status_code == 200, created.text
        collection = created.json()["payment_collection"]["id"]
        session = http.post(
            f"/store/payment-collections/{collection}/payment-sessions",
            json={"provider_id": TESTING},
            headers=STORE,
        )
        assert session.status_code == 200
        key = {"Idempotency-Key": str(uuid.uuid4())}
        authorized = http.post(f"/store/payment-collections/{collection}/authorize", headers={**STORE, **key})
        replayed = http.post(f"/store/payment-collections/{collection}/authorize", headers={**STORE, **key})
        assert authorized.status_code == 200, authorized.text
        assert replayed.headers["idempotent-replayed"] == "true"
        payment = authorized.json()["payment"]["id"]

        # The operator CLI works on the same database while the server runs.
        listed = cli(server.env, "payments", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        [row] = json.loads(listed.stdout, parse_float=Decimal)["payments"]
        assert (row["id"], row["status"], row["amount"]) == (payment, "authorized", Decimal("80.5"))

        captured = cli(server.env, "payments", "capture", payment, "--amount", "30.25")
        assert captured.returncode == 0, captured.stderr
        refunded = cli(
            server.env, "payments", "refund", payment, "--amount", "10", "--reason", "pricing_error"
        )
        assert refunded.returncode == 0, refunded.stderr
        too_much = cli(server.env, "payments", "refund", payment, "--amount", "1000")
        assert too_much.returncode == 1 and "refund more than" in too_much.stderr

        shown = json.loads(cli(server.env, "payments", "show", payment, "--json").stdout, parse_float=Decimal)
        assert shown["payment"]["status"] == "partially_refunded"
        assert [c["amount"] for c in shown["payment"]["captures"]] == [Decimal("30.25")]
        assert shown["payment"]["refunds"][0]["refund_reason"]["code"] == "pricing_error"
        via_http = http.get(f"/admin/payments/{payment}", headers=ADMIN).json()["payment"]
        assert [r["amount"] for r in via_http["refunds"]] == [10]

        providers_cli = json.loads(cli(server.env, "providers", "list", "--json").stdout)
        assert {p["id"] for p in providers_cli["payment_providers"]} >= {SYSTEM, TESTING}

        captured_list = json.loads(
            cli(server.env, "payments", "list", "--status", "captured", "--json").stdout
        )
        assert captured_list["payments"] == []


def test_api_keys_created_by_the_cli_open_the_api_until_revoked(database_url: str, tmp_path: Path) -> None:
    with (
        running_server(database_url, tmp_path) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        created = cli(server.env, "api-keys", "create", "--type", "secret", "--title", "ops")
        assert created.returncode == 0, created.stderr
        lines = dict(line.split(":", 1) for line in created.stdout.splitlines() if ":" in line)
        key_id, token = lines["id"].strip(), lines["token"].strip()
        as_key = {"Authorization": f"Bearer {token}"}

        assert http.get("/admin/payments", headers=as_key).status_code == 200
        listed = cli(server.env, "api-keys", "list")
        assert key_id in listed.stdout and token not in listed.stdout

        revoked = cli(server.env, "api-keys", "revoke", key_id)
        assert revoked.returncode == 0, revoked.stderr
        refused = http.get("/admin/payments", headers=as_key)
        assert refused.status_code == 401
        assert refused.json() == {"type": "unauthorized", "code": "unauthorized", "message": "Unauthorized"}

        missing = cli(server.env, "api-keys", "revoke", "apk_missing")
        assert missing.returncode == 1 and "not_found" in missing.stderr


@pytest.mark.parametrize("database", ["sqlite"])
def test_paymod_demo_runs_the_whole_flow(database: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [*paymod_command(), "demo", "--database-url", f"sqlite:///{tmp_path / 'demo.db'}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert "/authorize -> 402" in result.stdout
    assert "-> 200 (replayed)" in result.stdout
    assert "collection completed authorized 50 captured 50 refunded 12.5" in result.stdout
    assert result.stdout.rstrip().endswith("done")
