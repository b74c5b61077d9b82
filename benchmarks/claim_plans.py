"""The worker's claims at growing backlogs: their plans and what they read, on PostgreSQL.

    python -m benchmarks.claim_plans [--pending 10000 1000000]

For each backlog size, a fresh database gets that many pending outbox events (in 10,000 collections,
one live endpoint's pending deliveries for each), and the statements the worker sends to claim a
batch of 200 events and a lane's batch of 50 deliveries are run under `EXPLAIN (ANALYZE, BUFFERS)`.
It prints each plan, the rows and buffer pages read, and the time; the point is that they stay the
same whatever the backlog (docs/operations.md).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import asyncpg
from sqlalchemy import event, text

from benchmarks.common import POSTGRES_ADMIN
from paymod.persistence.database import Database
from paymod.persistence.event_outbox import claim_events
from paymod.persistence.migrate import upgrade
from paymod.persistence.webhook_endpoints import claim_deliveries

COLLECTIONS = 10_000


async def _fill(url: str, pending: int) -> str:
    """Writes the backlog with one set-based INSERT each (fast for a million rows)."""
    database = Database(url)
    try:
        await upgrade(database.engine)
        async with database.write() as conn:
            await conn.execute(
                text(
                    "INSERT INTO webhook_endpoint (id, url, events, secret, enabled, created_at, "
                    "updated_at) VALUES ('we_bench', 'http://127.0.0.1:9/hook', '[\"*\"]', 'whsec_x', true, "
                    "now(), now())"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO event_outbox (id, name, data, payment_collection_id, status, attempts, "
                    "available_at, created_at) "
                    "SELECT 'evt_' || n, 'payment.test', '{}', 'pay_col_' || (n % :collections), 'pending', "
                    "0, now(), now() FROM generate_series(1, :pending) AS n"
                ),
                {"pending": pending, "collections": COLLECTIONS},
            )
            await conn.execute(
                text(
                    "INSERT INTO webhook_delivery (id, endpoint_id, event_id, event_sequence, "
                    "payment_collection_id, status, attempts, available_at, created_at) "
                    "SELECT 'whdl_' || sequence, 'we_bench', id, sequence, payment_collection_id, "
                    "'pending', 0, now(), now() FROM event_outbox"
                )
            )
            await conn.execute(text("ANALYZE"))
    finally:
        await database.close()
    return url


async def _explain(database: Database, claim: Any, marker: str) -> list[str]:
    """Runs `claim` in a transaction that is rolled back, capturing its SELECT, then explains it."""
    sent: list[tuple[str, Any]] = []
    async with database.engine.connect() as conn:

        def record(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
            if marker in statement and statement.lstrip().upper().startswith("SELECT"):
                sent.append((statement, parameters))

        event.listen(conn.sync_connection, "before_cursor_execute", record)
        started = time.perf_counter()
        await claim(conn)
        elapsed = time.perf_counter() - started
        event.remove(conn.sync_connection, "before_cursor_execute", record)
        lines = [f"claim call: {elapsed * 1000:.1f} ms"]
        for statement, parameters in sent:
            found = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            lines.extend(str(row[0]) for row in found.all())
        await conn.rollback()
    return lines


async def run(sizes: list[int]) -> None:
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        for pending in sizes:
            name = f"paymod_claims_{pending}"
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
            url = f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"
            try:
                await _fill(url, pending)
                database = Database(url)
                try:
                    print(f"\n## {pending:,} pending events and deliveries\n")
                    print("### outbox claim (200 events)\n")
                    for line in await _explain(database, lambda c: claim_events(c, 200), "event_outbox"):
                        print("    " + line)
                    print("\n### lane claim (50 deliveries of one endpoint)\n")
                    lane = await _explain(
                        database,
                        lambda c: claim_deliveries(c, {"id": "we_bench"}, probe=False, limit=50),
                        "webhook_delivery",
                    )
                    for line in lane:
                        print("    " + line)
                finally:
                    await database.close()
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pending", type=int, nargs="+", default=[10_000, 1_000_000])
    asyncio.run(run(parser.parse_args().pending))


if __name__ == "__main__":
    main()
