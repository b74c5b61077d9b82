"""A slow provider and many flows in flight over HTTP: provider calls must not eat the pool.

A real `paymod serve` (one uvicorn worker, `--no-worker`, the default pool: 10 connections plus 20
overflow) on a fresh PostgreSQL database, with two testing providers in one region: `pp_testing_fast`
(no latency) and `pp_testing_slow` (every API call answers `--latency` seconds later, 0.25 by default).
The benchmark flow (collection, session, authorize, capture 5000, refund 2000: four provider calls)
runs through `httpx.AsyncClient`s of at most 20 connections each (the flows spread over them), in
three phases on the same server:

1. **CPU-bound rate**: the flow on the fast provider, `--cpu-concurrency` (16) in flight;
2. **flow latency**: the flow on the slow provider, one at a time (its median is the flow latency);
3. **in flight**: the flow on the slow provider, `--in-flight` (200) in flight.

The third phase's flows/s is compared with the bound min(in_flight / flow latency, CPU-bound rate):
a server that held a database connection across a provider call would be capped at about
pool connections / flow latency instead, and its requests would wait for the pool until they time
out (`pool_timeouts`, counted in the server's log, must be 0). One JSON line also gives the errors,
the connections the server opened and the peak RSS of the server and of the bench process.

    python -m benchmarks.latency                       # 0.25 s, 200 in flight, 1000 flows
    python -m benchmarks.latency --n 2000 --in-flight 400
    python -m benchmarks.latency --quick               # a few seconds: proves it runs (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

import paymod
from benchmarks.common import (
    FlowResult,
    Probe,
    Recorder,
    database_name,
    drop_postgres,
    fresh_postgres,
    loadavg1,
    machine,
    now_iso,
    peak_rss_mb,
    proc_cpu_ms,
    proc_peak_rss_mb,
    r3,
    request_stop,
    run_phase,
    sample_sql,
    self_cpu_ms,
)
from benchmarks.http_target import Api, paymod_server

FAST = "pp_testing_fast"
SLOW = "pp_testing_slow"
#: What the server logs when a request waited 30 s for a database connection (at the pool, or for its
#: turn at it).
POOL_TIMEOUT_TEXT = "sqlalchemy.exc.TimeoutError"


def settings_file(workdir: Path, latency: float) -> Path:
    """The server's settings: the two testing providers, enabled in one region."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"latency-{os.getpid()}.toml"
    path.write_text(
        "\n".join(
            [
                "[[providers]]",
                'resolve = "paymod.providers.testing"',
                'id = "fast"',
                "options = { record_calls = false }",
                "",
                "[[providers]]",
                'resolve = "paymod.providers.testing"',
                'id = "slow"',
                f"options = {{ record_calls = false, latency = {latency!r} }}",
                "",
                "[[regions]]",
                'id = "reg_bench"',
                f'providers = ["{FAST}", "{SLOW}"]',
                "",
            ]
        )
    )
    return path


CLIENT_CONNECTIONS = 20


class Spread:
    """The flow on the next of several clients, in turn."""

    def __init__(self, apis: list[Api]) -> None:
        self.apis = apis
        self.turn = itertools.cycle(apis)

    async def flow(self, rec: Recorder) -> FlowResult:
        return await next(self.turn).flow(rec)

    async def check(self, result: FlowResult) -> dict[str, Any]:
        return await self.apis[0].check(result)


def bound(in_flight: int, flow_latency_ms: float | None, cpu_rate: float | None) -> float | None:
    """min(in_flight / flow latency, CPU-bound rate), in flows/s."""
    if not flow_latency_ms or not cpu_rate:
        return None
    return min(in_flight / (flow_latency_ms / 1000), cpu_rate)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"paymod_bench_latency_{os.getpid()}"
    url = await fresh_postgres(name)
    workdir: Path = args.workdir
    config = settings_file(workdir, args.latency)
    result: dict[str, Any] = {
        "bench": "paymod-http-provider-latency",
        "database": "postgresql",
        "date": now_iso(),
        "machine": machine(),
        "paymod_imported_from": str(Path(paymod.__file__).parent),
        "provider_latency_s": args.latency,
        "provider_calls_per_flow": 4,
        "in_flight": args.in_flight,
        "loadavg1_at_start": loadavg1(),
    }
    try:
        async with paymod_server(url, workdir, config=config) as server:
            async with contextlib.AsyncExitStack() as clients:
                # Clients of at most CLIENT_CONNECTIONS connections each, the flows spread over them:
                # one client's pool costs CPU per request that grows with its connections (with 200 it
                # spent 56 ms per flow against 9 with 16), on the cores the server runs on.
                pool = [
                    await clients.enter_async_context(
                        httpx.AsyncClient(
                            base_url=server.base_url,
                            limits=httpx.Limits(
                                max_connections=CLIENT_CONNECTIONS,
                                max_keepalive_connections=CLIENT_CONNECTIONS,
                            ),
                            timeout=120.0,
                        )
                    )
                    for _ in range(max(1, -(-(args.in_flight + 4) // CLIENT_CONNECTIONS)))
                ]
                fast, slow = Api(pool[0], FAST), Spread([Api(client, SLOW) for client in pool])
                result["check"] = await slow.check(await slow.flow(Recorder()))
                result.update(await sample_sql(slow.flow, server.counts, flows=2))

                def cpu() -> dict[str, float]:
                    return {"server": proc_cpu_ms(server.pid) or 0.0, "client": self_cpu_ms()}

                probe = Probe(process_cpu_ms=cpu, counters=server.counts, database=database_name(url))
                announce("phase cpu-bound (fast provider)")
                cpu_phase = await run_phase(fast.flow, args.cpu_n, args.warmup, args.cpu_concurrency, probe)
                announce("phase flow latency (slow provider, one at a time)")
                sequential = await run_phase(slow.flow, args.sequential_n, 1, 1, probe)
                announce(f"phase {args.in_flight} in flight (slow provider)")
                in_flight = await run_phase(slow.flow, args.n, args.in_flight, args.in_flight, probe)
            result["server_peak_rss_mb"] = proc_peak_rss_mb(server.pid)
        log = server.log.read_text(errors="replace")
        result["pool_timeouts"] = log.count(POOL_TIMEOUT_TEXT)
        result["server_log_errors"] = log.count("Traceback")
    finally:
        if not args.keep_database:
            await drop_postgres(name)
        config.unlink(missing_ok=True)
    flow_latency = sequential["latency_ms"]["p50"]
    cpu_rate = cpu_phase["flows_per_s"]
    limit = bound(args.in_flight, flow_latency, cpu_rate)
    rate = in_flight["flows_per_s"]
    result.update(
        {
            "cpu_bound": cpu_phase,
            "sequential_slow": sequential,
            "in_flight_slow": in_flight,
            "flow_latency_ms": flow_latency,
            "cpu_bound_flows_per_s": cpu_rate,
            "latency_bound_flows_per_s": r3(args.in_flight / (flow_latency / 1000)) if flow_latency else None,
            "bound_flows_per_s": None if limit is None else r3(limit),
            "flows_per_s": rate,
            "of_bound": None if not limit else r3(rate / limit),
            "errors": cpu_phase["errors"] + sequential["errors"] + in_flight["errors"],
            "bench_peak_rss_mb": peak_rss_mb(),
            "loadavg1_at_end": loadavg1(),
        }
    )
    return result


def announce(text: str) -> None:
    print(f"[latency] {text}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per provider call (0 to 10)")
    parser.add_argument("--in-flight", type=int, default=200, help="flows in flight on the slow provider")
    parser.add_argument("--n", type=int, default=1000, help="flows measured with --in-flight in flight")
    parser.add_argument("--cpu-n", type=int, default=300, help="flows measured on the fast provider")
    parser.add_argument("--cpu-concurrency", type=int, default=16, help="in flight on the fast provider")
    parser.add_argument("--sequential-n", type=int, default=10, help="slow flows one at a time (latency)")
    parser.add_argument("--warmup", type=int, default=32, help="warm-up flows on the fast provider")
    parser.add_argument("--quick", action="store_true", help="tiny numbers: proves the bench runs")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "paymod-bench", help="server logs"
    )
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--out", type=Path, help="also append the JSON line to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.latency, args.in_flight, args.n = 0.05, 8, 16
        args.cpu_n, args.cpu_concurrency, args.sequential_n, args.warmup = 8, 4, 2, 2
    if not 0 <= args.latency <= 10:
        parser.error("--latency must be from 0 to 10 seconds")
    return args


async def _stoppable(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, request_stop)
    return await run(args)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(_stoppable(args))
    line = json.dumps(result)
    print(line, flush=True)
    if args.out is not None:
        with args.out.open("a") as out:
            out.write(line + "\n")
    ok = result["check"]["ok"] and result["errors"] == 0 and result["pool_timeouts"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
