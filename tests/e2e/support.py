"""What the end-to-end tests share: keys, a short API client, real `paymod serve` and `paymod worker`
processes."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from paymod.exact_json import loads

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


def write_config(directory: Path) -> Path:
    """The TOML file the real-process tests use: the testing provider, one region, webhooks at once."""
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
        "[worker]\n"
        "poll_interval = 0.05\n"
    )
    return config


def paymod_env(
    database_url: str, directory: Path, extra_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a paymod process: this run's database, config file and keys."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PAYMOD_")},
        "PAYMOD_DATABASE_URL": database_url,
        "PAYMOD_CONFIG": str(write_config(directory)),
        "PAYMOD_ADMIN_API_KEY": ADMIN_KEY,
        "PAYMOD_PUBLISHABLE_API_KEY": PUBLISHABLE_KEY,
        # The secret comes from the environment, as the docs tell operators to do.
        "PAYMOD_PROVIDERS__DEFAULT__WEBHOOK_SECRET": WEBHOOK_SECRET,
        **(extra_env or {}),
    }


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds; returns the exit status.
    A worker stops within its grace (10 s) plus its last statements: on a machine the whole suite
    loads, that once took longer than 15 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    return process.returncode


@contextlib.contextmanager
def running_server(
    database_url: str,
    directory: Path,
    extra_env: Mapping[str, str] | None = None,
    serve_args: Sequence[str] = (),
) -> Iterator[Server]:
    """Starts `paymod serve` on a free loopback port and stops it (killing it if it must)."""
    port = free_port()
    env = paymod_env(database_url, directory, extra_env)
    log = directory / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*paymod_command(), "serve", "--port", str(port), "--log-level", "warning", *serve_args],
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
        stop_process(process)


WORKER_READY = "paymod worker running"


@contextlib.contextmanager
def running_workers(
    env: Mapping[str, str], directory: Path, count: int, *args: str
) -> Iterator[list[Worker]]:
    """Starts `count` `paymod worker` processes (see `Worker.wait_ready`), with `args`, and stops them all."""
    workers: list[Worker] = []
    try:
        for n in range(count):
            log = directory / f"worker-{n}.log"
            with log.open("wb") as output:
                process = subprocess.Popen(
                    [*paymod_command(), "worker", *args],
                    env=dict(env),
                    cwd=directory,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            workers.append(Worker(process, log))
        yield workers
    finally:
        for worker in workers:
            stop_process(worker.process)


class Worker:
    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        """Until the worker says it runs (bounded)."""
        deadline = time.monotonic() + SERVER_STARTUP_SECONDS
        while WORKER_READY not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"paymod worker did not start:\n{self.output()}")
            time.sleep(0.05)
