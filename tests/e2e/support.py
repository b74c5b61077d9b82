"""What the end-to-end tests share: keys, a short API client, and a real `paymod serve` process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from paymod.http.json import loads

# The `module` fixture's testing provider (tests/conftest.py).
WEBHOOK_SECRET = "whsec_testing"
TESTING_PROVIDER = {
    "resolve": "paymod.providers.testing",
    "id": "default",
    "options": {"webhook_secret": WEBHOOK_SECRET},
}

ADMIN_KEY = "sk_e2e_admin_key"
PUBLISHABLE_KEY = "pk_e2e_publishable_key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
STORE = {"x-publishable-api-key": PUBLISHABLE_KEY}
TESTING = "pp_testing_default"
SYSTEM = "pp_system_default"


def json_of(response: httpx.Response) -> Any:
    """The body with exact decimals, as a client that cares about money would read it."""
    return loads(response.content)


class Api:
    """Short calls for the steps tests repeat; each asserts the step succeeded."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def collection(
        self, amount: str | int = "100", currency_code: str = "usd", **extra: Any
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/admin/payment-collections",
            json={"amount": amount, "currency_code": currency_code, **extra},
            headers=ADMIN,
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = json_of(response)["payment_collection"]
        return result

    async def session(
        self, collection_id: str, provider_id: str = TESTING, data: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        response = await self.client.post(
            f"/store/payment-collections/{collection_id}/payment-sessions",
            json={"provider_id": provider_id, "data": dict(data or {})},
            headers=STORE,
        )
        assert response.status_code == 200, response.text
        sessions = json_of(response)["payment_collection"]["payment_sessions"]
        assert len(sessions) == 1
        result: dict[str, Any] = sessions[0]
        return result

    async def authorize(self, collection_id: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        return await self.client.post(
            f"/store/payment-collections/{collection_id}/authorize",
            json={},
            headers={**STORE, **(headers or {})},
        )

    async def payment(
        self, amount: str | int = "100", data: Mapping[str, Any] | None = None, currency_code: str = "usd"
    ) -> dict[str, Any]:
        """An authorized payment of `amount`."""
        collection = await self.collection(amount, currency_code)
        await self.session(collection["id"], data=data)
        response = await self.authorize(collection["id"])
        assert response.status_code == 200, response.text
        result: dict[str, Any] = json_of(response)["payment"]
        return result

    async def capture(self, payment_id: str, amount: str | int | None = None) -> httpx.Response:
        body = {} if amount is None else {"amount": amount}
        return await self.client.post(f"/admin/payments/{payment_id}/capture", json=body, headers=ADMIN)

    async def refund(self, payment_id: str, **body: Any) -> httpx.Response:
        return await self.client.post(f"/admin/payments/{payment_id}/refund", json=body, headers=ADMIN)


def amounts(items: list[dict[str, Any]]) -> list[Decimal]:
    return [Decimal(str(item["amount"])) for item in items]


# -- a real `paymod serve` process ----------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


SERVER_STARTUP_SECONDS = 60.0


class Server:
    def __init__(
        self, base_url: str, env: dict[str, str], process: subprocess.Popen[bytes], log: Path
    ) -> None:
        self.base_url = base_url
        self.env = env
        self.process = process
        self.log = log


def paymod_command() -> list[str]:
    return [sys.executable, "-m", "paymod.cli"]


@contextlib.contextmanager
def running_server(
    database_url: str, directory: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """Starts `paymod serve` on a free loopback port and stops it (killing it if it must)."""
    config = directory / "paymod.toml"
    config.write_text(
        "[[providers]]\n"
        'resolve = "paymod.providers.testing"\n'
        'id = "default"\n'
        "[[regions]]\n"
        'id = "reg_e2e"\n'
        f'providers = ["{SYSTEM}", "{TESTING}"]\n'
        "[webhooks]\n"
        "delay = 0\n"
        "retries = 0\n"
    )
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PAYMOD_")},
        "PAYMOD_DATABASE_URL": database_url,
        "PAYMOD_CONFIG": str(config),
        "PAYMOD_ADMIN_API_KEY": ADMIN_KEY,
        "PAYMOD_PUBLISHABLE_API_KEY": PUBLISHABLE_KEY,
        # The secret comes from the environment, as the docs tell operators to do.
        "PAYMOD_PROVIDERS__DEFAULT__WEBHOOK_SECRET": WEBHOOK_SECRET,
        **(extra_env or {}),
    }
    log = directory / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*paymod_command(), "serve", "--port", str(port), "--log-level", "warning"],
            env=env,
            cwd=directory,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", env, process, log)
    try:
        deadline = time.monotonic() + SERVER_STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise AssertionError(f"paymod serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{server.base_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"paymod serve did not start in {SERVER_STARTUP_SECONDS}s:\n{log.read_text()}"
                )
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
