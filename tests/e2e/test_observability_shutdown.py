"""A real `paymod serve` asked to stop (SIGTERM) while a checkout is in flight, and its log lines."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from e2e.support import ADMIN, STORE, TESTING, running_server
from paymod.persistence.database import Database
from paymod.persistence.tables import payment_session

#: The testing provider answers the authorization this much later (`data["delay"]`).
PROVIDER_DELAY = 4
#: Bounds, not timings: each is far above what the step takes.
BOUND_SECONDS = 30


async def _authorizing(database_url: str) -> int:
    database = Database(database_url)
    try:
        async with database.read() as conn:
            stmt = select(func.count()).where(payment_session.c.authorizing_until.is_not(None))
            return int((await conn.execute(stmt)).scalar_one())
    finally:
        await database.close()


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + BOUND_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not within {BOUND_SECONDS} s: {what}"
        time.sleep(0.05)


def refused(base_url: str) -> bool:
    try:
        httpx.get(f"{base_url}/health", timeout=1)
    except httpx.TransportError:
        return True
    return False


def test_sigterm_finishes_the_checkout_in_flight_refuses_new_connections_and_exits(
    database_url: str, tmp_path: Path
) -> None:
    with running_server(database_url, tmp_path, serve_args=["--log-level", "info"]) as server:
        base = server.base_url
        collection = httpx.post(
            f"{base}/admin/payment-collections", json={"amount": 30, "currency_code": "usd"}, headers=ADMIN
        ).json()["payment_collection"]
        sessions = httpx.post(
            f"{base}/store/payment-collections/{collection['id']}/payment-sessions",
            json={"provider_id": TESTING, "data": {"delay": PROVIDER_DELAY}},
            headers=STORE,
        )
        assert sessions.status_code == 200, sessions.text
        answer: dict[str, httpx.Response] = {}

        def checkout() -> None:
            answer["response"] = httpx.post(
                f"{base}/store/payment-collections/{collection['id']}/authorize",
                json={},
                headers={**STORE, "X-Request-Id": "checkout-in-flight"},
                timeout=BOUND_SECONDS,
            )

        in_flight = threading.Thread(target=checkout)
        in_flight.start()
        # The provider call has begun once the session is claimed for its authorization.
        wait_until(lambda: asyncio.run(_authorizing(database_url)) == 1, "the checkout reaches the provider")

        server.process.send_signal(signal.SIGTERM)
        wait_until(lambda: refused(base), "new connections are refused")
        still_running = in_flight.is_alive()
        in_flight.join(BOUND_SECONDS)
        exit_status = server.process.wait(BOUND_SECONDS)

    assert still_running, "the checkout should still be in flight when new connections are refused"
    response = answer["response"]
    assert response.status_code == 200, response.text
    assert response.json()["payment"]["amount"] == 30
    assert response.headers["x-request-id"] == "checkout-in-flight"
    # Stopped, not crashed: once everything is shut down, uvicorn ends the process by the signal it got.
    assert exit_status == -signal.SIGTERM
    output = server.log.read_text()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    checkout_lines = [line for line in lines if line.get("request_id") == "checkout-in-flight"]
    assert [(line["logger"], line.get("status") or line.get("outcome")) for line in checkout_lines] == [
        ("paymod.money", "succeeded"),
        ("paymod.http.requests", 200),
    ]
    # uvicorn's own access log is off: the request is logged once, by paymod.
    assert "HTTP/1.1" not in output
    assert any("Shutting down" in line.get("message", "") for line in lines), output
