"""How long provider webhooks wait between being stored and being processed by the in-process worker.

    python -m benchmarks.webhook_latency [--database-url sqlite:///./bench-webhooks.db] [--events 20]

The app runs as `paymod serve` runs it (lifespan included, so with its in-process worker, polling
every 50 ms) over the scripted `testing` provider, with `webhook_delay` 0. `authorized` events for
fresh sessions go through `POST /hooks/payment/testing_default`: first one at a time (each waits until
the previous one is processed), then a burst of as many at once. The figures are the inbox rows'
`processed_at - created_at`: median, p90 and max. A run on an existing SQLite file or PostgreSQL
database adds rows to it: point it at a scratch database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from typing import Any

import httpx

from paymod import PaymentModule
from paymod.config import ProviderSettings, Settings, WorkerSettings
from paymod.http import create_app
from paymod.providers.testing import SIGNATURE_HEADER, sign
from paymod.webhooks.inbox import retrieve_webhook_event

WEBHOOK_SECRET = "whsec_bench"
PROVIDER = {
    "resolve": "paymod.providers.testing",
    "id": "default",
    "options": {"webhook_secret": WEBHOOK_SECRET},
}
ADMIN_KEY = "sk_bench_admin_key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
WAIT_SECONDS = 30.0


def spread(rows: list[dict[str, Any]]) -> str:
    """Median, p90 and max of stored -> processed, in ms, from the inbox rows themselves."""
    waits = sorted((r["processed_at"] - r["created_at"]).total_seconds() * 1000 for r in rows)
    p90 = waits[max(0, round(0.9 * len(waits)) - 1)]
    return f"median {statistics.median(waits):.0f} ms, p90 {p90:.0f} ms, max {waits[-1]:.0f} ms"


async def _session(client: httpx.AsyncClient) -> str:
    created = await client.post(
        "/admin/payment-collections", json={"currency_code": "usd", "amount": 10}, headers=ADMIN
    )
    created.raise_for_status()
    collection_id = created.json()["payment_collection"]["id"]
    session = await client.post(
        f"/admin/payment-collections/{collection_id}/payment-sessions",
        json={"provider_id": "pp_testing_default"},
        headers=ADMIN,
    )
    session.raise_for_status()
    return str(session.json()["payment_collection"]["payment_sessions"][0]["id"])


async def _deliver(client: httpx.AsyncClient, event: dict[str, Any]) -> str:
    body = json.dumps(event).encode()
    headers = {SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET), "content-type": "application/json"}
    response = await client.post("/hooks/payment/testing_default", content=body, headers=headers)
    response.raise_for_status()
    return str(response.json()["id"])


async def _settled(module: PaymentModule, id: str) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            row = await retrieve_webhook_event(module, id)
            if row["status"] == "processed":
                return row
            await asyncio.sleep(0.02)


async def run(database_url: str, events: int) -> str:
    settings = Settings(
        config=None,
        admin_api_key=ADMIN_KEY,
        providers=[ProviderSettings(**PROVIDER)],
        worker=WorkerSettings(enabled=True, poll_interval=0.05),
    )
    async with await PaymentModule.connect(
        database_url, providers=[PROVIDER], options={"webhook_delay": 0, "webhook_retries": 3}
    ) as module:
        app = create_app(settings, module=module)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://paymod.bench"
            ) as client,
        ):
            sessions = [await _session(client) for _ in range(2 * events)]
            one_at_a_time = []
            for n, session_id in enumerate(sessions[:events]):
                event = {"id": f"evt_seq_{n}", "action": "authorized", "session_id": session_id}
                one_at_a_time.append(await _settled(module, await _deliver(client, event)))
            ids = await asyncio.gather(
                *(
                    _deliver(
                        client, {"id": f"evt_burst_{n}", "action": "authorized", "session_id": session_id}
                    )
                    for n, session_id in enumerate(sessions[events:])
                )
            )
            burst = [await _settled(module, id) for id in ids]
    dialect = "postgresql" if database_url.startswith("postgres") else "sqlite"
    return (
        f"webhook latency on {dialect} (stored -> processed, in-process worker, `authorized`): "
        f"one at a time {spread(one_at_a_time)}; burst of {events} {spread(burst)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="sqlite:///./bench-webhooks.db")
    parser.add_argument("--events", type=int, default=20)
    arguments = parser.parse_args()
    print(asyncio.run(run(arguments.database_url, arguments.events)))


if __name__ == "__main__":
    main()
