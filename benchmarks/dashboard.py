"""The dashboard's payment list with many payments: seeds N payments into a PostgreSQL database, starts
`paymod serve` on it, signs in and times the pages (median of several loads each).

    python -m benchmarks.dashboard --payments 100000 \
        --database postgresql://postgres@127.0.0.1:5432/paymod_dashboard_bench
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import insert

from paymod.domain.ids import new_id
from paymod.domain.rules import payment_status
from paymod.persistence import tables as t
from paymod.persistence.database import Database
from paymod.persistence.migrate import upgrade

ADMIN_KEY = "sk_bench_dashboard"
BATCH = 2000


async def recreate(url: str) -> None:
    base, name = url.rsplit("/", 1)
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def seed(url: str, count: int) -> None:
    """`count` payments over 90 days in three currencies: a third captured, some refunded or canceled."""
    await recreate(url)
    database = Database(url)
    await upgrade(database.engine)
    rng = random.Random(7)
    now = datetime.now(UTC)
    try:
        for start in range(0, count, BATCH):
            rows: dict[str, list[dict[str, Any]]] = {"c": [], "s": [], "p": [], "cap": [], "ref": []}
            for _ in range(min(BATCH, count - start)):
                currency = rng.choice(("usd", "usd", "eur", "jpy"))
                amount = (
                    Decimal(rng.randint(100, 50000))
                    if currency == "jpy"
                    else Decimal(rng.randint(100, 99999)) / 100
                )
                created = now - timedelta(seconds=rng.randint(0, 90 * 86400))
                collection, session, payment = new_id("pay_col"), new_id("payses"), new_id("pay")
                fate = rng.random()
                status = "completed" if fate < 0.33 else "canceled" if fate > 0.95 else "authorized"
                stamp = {"created_at": created, "updated_at": created}
                rows["c"].append(
                    {"id": collection, "currency_code": currency, "amount": amount, "status": status, **stamp}
                )
                reference = f"tst_{rng.getrandbits(64):016x}"
                rows["s"].append(
                    {
                        "id": session,
                        "currency_code": currency,
                        "amount": amount,
                        "provider_id": "pp_system_default",
                        "data": {"reference": reference},
                        "status": "authorized",
                        "authorized_at": created,
                        "payment_collection_id": collection,
                        **stamp,
                    }
                )
                rows["p"].append(
                    {
                        "id": payment,
                        "amount": amount,
                        "currency_code": currency,
                        "provider_id": "pp_system_default",
                        "data": {"reference": reference},
                        "payment_collection_id": collection,
                        "payment_session_id": session,
                        "captured_at": created if fate < 0.33 else None,
                        "canceled_at": created if fate > 0.95 else None,
                        "status": payment_status(
                            canceled=fate > 0.95,
                            fully_captured=fate < 0.33,
                            captured=amount if fate < 0.33 else Decimal(0),
                            refunded=amount / 2 if fate < 0.05 else Decimal(0),
                        ),
                        **stamp,
                    }
                )
                if fate < 0.33:
                    rows["cap"].append(
                        {"id": new_id("capt"), "amount": amount, "payment_id": payment, **stamp}
                    )
                    if fate < 0.05:
                        rows["ref"].append(
                            {"id": new_id("ref"), "amount": amount / 2, "payment_id": payment, **stamp}
                        )
            async with database.write() as conn:
                for table, key in (
                    (t.payment_collection, "c"),
                    (t.payment_session, "s"),
                    (t.payment, "p"),
                    (t.capture, "cap"),
                    (t.refund, "ref"),
                ):
                    if rows[key]:
                        await conn.execute(insert(table), rows[key])
        async with database.write() as conn:
            await conn.exec_driver_sql("ANALYZE")
    finally:
        await database.close()


def timed(client: httpx.Client, path: str, runs: int) -> tuple[float, httpx.Response]:
    times = []
    response = client.get(path)
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(times), response


def measure(url: str, port: int, runs: int) -> None:
    env = {**os.environ, "PAYMOD_DATABASE_URL": url, "PAYMOD_ADMIN_API_KEY": ADMIN_KEY}
    with tempfile.TemporaryDirectory() as directory:
        log = Path(directory) / "serve.log"
        with log.open("wb") as output:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "paymod.cli",
                    "serve",
                    "--port",
                    str(port),
                    "--no-worker",
                    "--log-level",
                    "warning",
                ],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(log.read_text())
                time.sleep(0.2)
            with httpx.Client(base_url=base, timeout=60) as client:
                page = client.get("/dashboard/sign-in").text
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
                assert csrf is not None
                signed = client.post(
                    "/dashboard/sign-in",
                    data={"csrf_token": csrf.group(1), "api_key": ADMIN_KEY, "next": "/dashboard"},
                )
                assert signed.status_code == 303, signed.text
                _, first = timed(client, "/dashboard/payments", 1)
                some = re.search(r"/dashboard/collections/(pay_col_\w+)\?payment=(pay_\w+)", first.text)
                assert some is not None
                checks = {
                    "payments, first page (newest)": "/dashboard/payments",
                    "payments, largest first": "/dashboard/payments?order=-amount",
                    "payments, status=refunded": "/dashboard/payments?status=refunded",
                    "payments, partially captured (none)": "/dashboard/payments?status=partially_captured",
                    "payments, currency=eur, last 7 days": "/dashboard/payments?currency=eur&from="
                    + (datetime.now(UTC) - timedelta(days=7)).date().isoformat(),
                    "payments, search by payment id": f"/dashboard/payments?q={some.group(2)}",
                    "payments, search by provider's id": "/dashboard/payments?q=tst_0000000000000000",
                    "collection page": f"/dashboard/collections/{some.group(1)}",
                    "overview (30-day volume)": "/dashboard",
                }
                for label, path in checks.items():
                    median, _ = timed(client, path, runs)
                    print(f"{label:55s} {median:8.1f} ms")
                # Keyset pagination: 200 pages deep costs what the first page does.
                path = "/dashboard/payments"
                for _ in range(200):
                    found = re.search(r'href="(\?[^"]*after=[^"]+)"', client.get(path).text)
                    assert found is not None
                    path = "/dashboard/payments" + found.group(1).replace("&amp;", "&")
                median, _ = timed(client, path, runs)
                print(f"{'payments, page 201 (5,000 rows deep)':55s} {median:8.1f} ms")
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/paymod_dashboard_bench")
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=9391)
    parser.add_argument("--no-seed", action="store_true", help="reuse the database as it is")
    args = parser.parse_args()
    if not args.no_seed:
        started = time.perf_counter()
        asyncio.run(seed(args.database, args.payments))
        print(f"seeded {args.payments:,} payments in {time.perf_counter() - started:.0f} s")
    measure(args.database, args.port, args.runs)


if __name__ == "__main__":
    main()
