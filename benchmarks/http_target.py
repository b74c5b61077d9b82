"""Target (b): the flow through the HTTP API of a real `paymod serve` process (one uvicorn worker).

The server runs as a subprocess on a free loopback port with a fresh database, the admin and
publishable keys from `PAYMOD_ADMIN_API_KEY` / `PAYMOD_PUBLISHABLE_API_KEY`, and uvicorn's log level
at `warning` (no access log line per request). The client is one `httpx.AsyncClient` with keep-alive
connections, in the bench process. SQL is counted on the server side (see `benchmarks.serve`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import (
    OPS,
    FlowResult,
    Probe,
    Recorder,
    database_name,
    proc_cpu_ms,
    proc_peak_rss_mb,
    run_phase,
    sample_sql,
    self_cpu_ms,
    stop_requested,
)
from benchmarks.counting import ENV, SQL_LOG_ENV, read_shared
from benchmarks.serve import serve_flags

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = f"sk_bench_{secrets.token_urlsafe(18)}"
PUBLISHABLE_KEY = f"pk_bench_{secrets.token_urlsafe(18)}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: asyncio.subprocess.Process
    base_url: str
    counters: Path
    flags: list[str]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def counts(self) -> dict[str, int]:
        return read_shared(self.counters)


@contextlib.asynccontextmanager
async def paymod_server(
    database_url: str,
    workdir: Path,
    *,
    sql_log: Path | None = None,
    startup_timeout: float = 60.0,
    config: Path | None = None,
) -> AsyncIterator[Server]:
    """Starts `paymod serve` (through `benchmarks.serve`) and stops it (SIGTERM) on exit; `config`: a
    settings file (providers, regions), else none."""
    os.makedirs(workdir, exist_ok=True)
    port = free_port()
    counters = workdir / f"paymod-serve-{port}.counters"
    log = workdir / f"paymod-serve-{port}.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PAYMOD_") or key.startswith("PAYMOD_BENCH_")
    }
    env.update(
        PAYMOD_DATABASE_URL=database_url,
        PAYMOD_ADMIN_API_KEY=ADMIN_KEY,
        PAYMOD_PUBLISHABLE_API_KEY=PUBLISHABLE_KEY,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    env[ENV] = str(counters)
    env["PAYMOD_CONFIG"] = str(config or "")
    env.pop(SQL_LOG_ENV, None)
    if sql_log is not None:
        env[SQL_LOG_ENV] = str(sql_log)
    flags = serve_flags()
    command = [
        sys.executable,
        "-m",
        "benchmarks.serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *flags,
    ]
    with log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=env, stdout=log_file, stderr=asyncio.subprocess.STDOUT
        )
    server = Server(process, f"http://127.0.0.1:{port}", counters, flags, log)
    try:
        await _wait_healthy(server, time.monotonic() + startup_timeout)
        yield server
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_healthy(server: Server, deadline: float) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.returncode is not None:
                raise RuntimeError(f"paymod serve exited: {server.log.read_text(errors='replace')[-2000:]}")
            try:
                response = await client.get("/health")
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("paymod serve did not become healthy in time")


class Api:
    """The five calls of the flow, over one keep-alive client."""

    def __init__(self, client: httpx.AsyncClient, provider_id: str = "pp_system_default") -> None:
        self.client = client
        self.provider_id = provider_id
        self.admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        self.store = {"x-publishable-api-key": PUBLISHABLE_KEY}

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")
        data: dict[str, Any] = response.json()
        return data

    async def flow(self, rec: Recorder) -> FlowResult:
        created = await rec.op(
            OPS[0],
            self.post("/admin/payment-collections", {"amount": 5000, "currency_code": "usd"}, self.admin),
        )
        collection_id = created["payment_collection"]["id"]
        await rec.op(
            OPS[1],
            self.post(
                f"/admin/payment-collections/{collection_id}/payment-sessions",
                {"provider_id": self.provider_id, "data": {}},
                self.admin,
            ),
        )
        authorized = await rec.op(
            OPS[2], self.post(f"/store/payment-collections/{collection_id}/authorize", {}, self.store)
        )
        payment_id = authorized["payment"]["id"]
        await rec.op(OPS[3], self.post(f"/admin/payments/{payment_id}/capture", {"amount": 5000}, self.admin))
        await rec.op(OPS[4], self.post(f"/admin/payments/{payment_id}/refund", {"amount": 2000}, self.admin))
        return FlowResult(collection_id, payment_id)

    async def check(self, result: FlowResult) -> dict[str, Any]:
        # The default fields include the sessions, and the payments with their captures and refunds.
        response = await self.client.get(
            f"/admin/payment-collections/{result.collection_id}", headers=self.admin
        )
        response.raise_for_status()
        col = response.json()["payment_collection"]
        sessions = col.get("payment_sessions") or []
        payments = col.get("payments") or []

        def amount(value: Any) -> Decimal:
            return Decimal(str(value)) if value is not None else Decimal(-1)

        ok = (
            amount(col["amount"]) == 5000
            and amount(col["authorized_amount"]) == 5000
            and amount(col["captured_amount"]) == 5000
            and amount(col["refunded_amount"]) == 2000
            and col["status"] == "completed"
            and len(sessions) == 1
            and sessions[0]["status"] == "authorized"
            and len(payments) == 1
            and len(payments[0].get("captures") or []) == 1
            and len(payments[0].get("refunds") or []) == 1
            and amount(payments[0]["refunds"][0]["amount"]) == 2000
        )
        return {"ok": ok, "final_collection_status": col["status"]}


async def run_http(
    url: str,
    workdir: Path,
    *,
    n: int,
    warmup: int,
    conc_n: int,
    conc_warmup: int,
    concurrency: int,
    phases: tuple[str, ...],
    announce: Any,
) -> dict[str, Any]:
    async with paymod_server(url, workdir) as server:
        announce(f"server-pid {server.pid}")
        limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60.0) as client:
            api = Api(client)
            check = await api.check(await api.flow(Recorder()))
            result: dict[str, Any] = {
                "check": check,
                "server": {
                    "command": "paymod serve --host 127.0.0.1 --port PORT --log-level warning "
                    + " ".join(server.flags),
                    "uvicorn_workers": 1,
                    "no_worker_flag": "--no-worker" in server.flags,
                },
                "sql_counted": "server side (SQLAlchemy events in the paymod serve process)",
                **await sample_sql(api.flow, server.counts),
            }

            def cpu() -> dict[str, float]:
                return {"server": proc_cpu_ms(server.pid) or 0.0, "client": self_cpu_ms()}

            probe = Probe(process_cpu_ms=cpu, counters=server.counts, database=database_name(url))
            if "sequential" in phases:
                announce("phase-start sequential")
                result["sequential"] = await run_phase(api.flow, n, warmup, 1, probe)
            if "concurrent" in phases and not stop_requested():
                announce("phase-start concurrent")
                result["concurrent"] = await run_phase(api.flow, conc_n, conc_warmup, concurrency, probe)
        result["peak_rss_mb"] = proc_peak_rss_mb(server.pid)
        result["rss_of"] = "the paymod serve process, VmHWM"
    return result
