"""Fixtures of the Stripe provider's tests: localstripe on loopback, the in-memory fake, modules.

localstripe (a dev dependency) runs as a subprocess on a free loopback port with `--from-scratch`,
is wiped (`DELETE /_config/data`) before each test that uses it, and is stopped by its PID at the
end. The webhooks it signs and POSTs go to paymod's own route, `/hooks/payment/stripe_stripe`, of the
HTTP app served on a loopback port (`stripe_hooks`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import stripe
import uvicorn
from fake_stripe import FakeStripe
from stripe_settings import API_KEY, WEBHOOK_SECRET, stripe_config

from paymod import PaymentModule
from paymod.config import Settings, WorkerSettings
from paymod.http import create_app
from paymod.providers.stripe.provider import FormHTTPXClient

STARTUP_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http(method: str, url: str, data: dict[str, str] | None = None) -> bytes:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Authorization", f"Bearer {API_KEY}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return bytes(response.read())


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    executable = Path(sys.executable).with_name("localstripe")
    port = _free_port()
    log = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(executable), "--port", str(port), "--from-scratch"], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"localstripe exited with {proc.returncode}: {log.read_text()}")
            try:
                _http("GET", f"{url}/v1/balance")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"localstripe did not answer within {STARTUP_TIMEOUT} s") from None
                time.sleep(0.1)
        yield url
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
async def localstripe(localstripe_url: str) -> str:
    """localstripe, wiped of every object (webhook registrations stay)."""
    await asyncio.to_thread(_http, "DELETE", f"{localstripe_url}/_config/data")
    return localstripe_url


@pytest.fixture
async def shopper(localstripe: str) -> AsyncIterator[stripe.StripeClient]:
    """What a storefront does with Stripe.js (confirm, 3-D Secure), as a direct SDK client."""
    http_client = FormHTTPXClient()
    yield stripe.StripeClient(
        API_KEY, base_addresses={"api": localstripe}, max_network_retries=0, http_client=http_client
    )
    await http_client.close_async()  # type: ignore[no-untyped-call]


@pytest.fixture
async def stripe_module(database_url: str, localstripe: str) -> AsyncIterator[PaymentModule]:
    """The module on SQLite or PostgreSQL with Stripe pointed at localstripe."""
    async with await PaymentModule.connect(
        database_url, providers=[stripe_config(localstripe)], migrate=False
    ) as module:
        yield module


@pytest.fixture
async def stripe_hooks(database_url: str, localstripe: str) -> AsyncIterator[tuple[PaymentModule, str]]:
    """(module, route URL): the HTTP app, lifespan and in-process worker included, over a module with
    Stripe at localstripe, served by uvicorn on a loopback port; localstripe's webhooks go to its
    `/hooks/payment/stripe_stripe`. Webhooks are processed at once (`webhook_delay` 0)."""
    async with await PaymentModule.connect(
        database_url, providers=[stripe_config(localstripe)], options={"webhook_delay": 0}, migrate=False
    ) as module:
        app = create_app(
            Settings(config=None, worker=WorkerSettings(poll_interval=0.05)), module=module, migrate=False
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT):
                while not server.started:
                    if serving.done():
                        serving.result()
                        raise RuntimeError("the paymod app stopped while starting")
                    await asyncio.sleep(0.02)
            url = f"http://127.0.0.1:{port}/hooks/payment/stripe_stripe"
            # Registrations outlive the wipe: each test points localstripe at its own server.
            await asyncio.to_thread(
                _http,
                "POST",
                f"{localstripe}/_config/webhooks/paymod",
                {"url": url, "secret": WEBHOOK_SECRET},
            )
            yield module, url
        finally:
            server.should_exit = True
            async with asyncio.timeout(STARTUP_TIMEOUT):
                await serving
            sock.close()


@pytest.fixture
def fake() -> FakeStripe:
    return FakeStripe(webhook_secret=WEBHOOK_SECRET)


@pytest.fixture
async def fake_module(database_url: str, fake: FakeStripe) -> AsyncIterator[PaymentModule]:
    """The module with Stripe answered by the in-memory fake (through the SDK's HTTP client hook)."""
    config = stripe_config("https://api.stripe.test", http_client=fake, max_network_retries=2)
    async with await PaymentModule.connect(database_url, providers=[config], migrate=False) as module:
        yield module
