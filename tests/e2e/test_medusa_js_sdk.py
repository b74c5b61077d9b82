"""Medusa's own JS SDK (`@medusajs/js-sdk`, the real npm package) as a client of a real `paymod
serve`, on SQLite and PostgreSQL: it sends the secret key as `Authorization: Basic base64(sk_...:)`.

`medusa_js/check.mjs` runs a checkout through the SDK's `client.fetch`, then lists, retrieves,
captures and refunds the payment, creates and lists refund reasons and lists payment providers
with the SDK's admin methods, and prints what it got as JSON. The package is installed into
`medusa_js/node_modules` when it is missing; without npm's registry the test fails saying so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

from e2e.support import ADMIN_KEY, PUBLISHABLE_KEY, TESTING, running_server

HERE = Path(__file__).resolve().parent / "medusa_js"
SDK = HERE / "node_modules" / "@medusajs" / "js-sdk" / "package.json"


def _install_sdk() -> None:
    if SDK.exists():
        return
    npm = shutil.which("npm")
    assert npm and shutil.which("node"), "node and npm are needed to run Medusa's JS SDK (node 20 or newer)"
    installed = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True, timeout=300
    )
    assert installed.returncode == 0 and SDK.exists(), (
        "could not install @medusajs/js-sdk from npm's registry (is it reachable?):\n"
        f"{installed.stdout[-3000:]}\n{installed.stderr[-3000:]}"
    )


def run_sdk(base_url: str) -> dict[str, Any]:
    run = subprocess.run(
        ["node", "check.mjs", base_url, ADMIN_KEY, PUBLISHABLE_KEY, TESTING],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(run.stdout, parse_float=Decimal)
    return result


def test_medusas_js_sdk_checks_out_captures_refunds_and_manages_refund_reasons(
    database_url: str, tmp_path: Path
) -> None:
    _install_sdk()
    with running_server(database_url, tmp_path) as server:
        got = run_sdk(server.base_url)
        log = server.log.read_text()

    assert got["collection"]["currency_code"] == "eur"
    assert got["collection"]["amount"] == Decimal("49.9")
    payment_id = got["payment_id"]
    assert payment_id.startswith("pay_")

    assert [p["id"] for p in got["listed"]["payments"]] == [payment_id]
    assert got["listed"]["count"] == 1
    retrieved = got["retrieved"]["payment"]
    assert retrieved["id"] == payment_id and retrieved["amount"] == Decimal("49.9")
    assert retrieved["captures"] == [] and "refunds" not in retrieved

    first = got["captured"]["payment"]
    assert [c["amount"] for c in first["captures"]] == [30]
    rest = got["captured_rest"]["payment"]
    assert sorted(c["amount"] for c in rest["captures"]) == [Decimal("19.9"), 30]

    reason = got["reason"]
    assert reason["id"].startswith("refr_") and reason["code"] == "damaged_in_transit"
    assert reason["id"] in {r["id"] for r in got["listed_reasons"]["refund_reasons"]}
    refunds = got["refunded_by_code"]["payment"]["refunds"]
    assert sorted(r["amount"] for r in refunds) == [1, Decimal("10.5")]
    assert {r["refund_reason_id"] for r in refunds} == {reason["id"]}
    assert {r["note"] for r in got["refunded"]["payment"]["refunds"]} == {"box arrived crushed"}

    assert {p["id"] for p in got["providers"]["payment_providers"]} >= {"pp_system_default", TESTING}
    # A wrong key, or a publishable key where the secret one goes, is the SDK's 401.
    assert got["wrong_key"]["status"] == 401
    assert got["publishable_as_secret"]["status"] == 401
    assert "Traceback" not in log, log[-5000:]
