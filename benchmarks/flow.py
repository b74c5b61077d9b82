"""The benchmark flow: collection -> session -> authorize -> capture 5000 -> refund 2000.

The same flow, with the system provider `pp_system_default`, through

* `module`: paymod's Python API (`PaymentModule`) in the bench process;
* `http`:   the HTTP API of a `paymod serve` subprocess (one uvicorn worker), driven by httpx;
* `floor`:  the fewest hand-written SQL statements over asyncpg (PostgreSQL only), see benchmarks.floor;
* `medusa`: Medusa's own Payment Module (`@medusajs/payment`) in Node, PostgreSQL only (the harness
  in benchmarks/medusa/, installed with npm on first use; only when asked for, `all` leaves it out);

paymod's targets each on PostgreSQL and SQLite, one at a time and with 16 in flight. Each (target,
database) runs in a fresh process on a fresh database and prints one JSON line: the correctness
check, SQL per operation and per flow, and per phase (sequential, concurrent) flows/s, latency
percentiles, the median of each operation, CPU per flow and the load average; then the peak RSS of
the process that runs the payment code.

    python -m benchmarks.flow                                # paymod's targets, N=500
    python -m benchmarks.flow --target module --database postgresql --n 200
    python -m benchmarks.flow --target medusa --n 200        # Medusa's module, same flow
    python -m benchmarks.flow --quick --database sqlite      # a few seconds per configuration (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import paymod
from benchmarks.common import (
    drop_postgres,
    fresh_postgres,
    fresh_sqlite,
    loadavg1,
    machine,
    now_iso,
    request_stop,
    source_state,
)
from benchmarks.medusa_target import HarnessError, ensure_installed

TARGETS = ("module", "http", "floor", "medusa")
ALL = ("module", "http", "floor")  # `--target all`: paymod's targets (Medusa's needs Node and npm)
POSTGRES_ONLY = ("floor", "medusa")
DATABASES = ("postgresql", "sqlite")
BENCH_NAMES = {
    "module": "paymod-module",
    "http": "paymod-http",
    "floor": "floor-asyncpg",
    "medusa": "medusa-module",
}


def configurations(targets: list[str], database: str) -> list[tuple[str, str]]:
    """(target, database) pairs; the floor and Medusa's module run on PostgreSQL only."""
    chosen = tuple(t for t in TARGETS if t in targets or ("all" in targets and t in ALL))
    databases = DATABASES if database == "both" else (database,)
    return [(t, d) for t in chosen for d in databases if not (t in POSTGRES_ONLY and d == "sqlite")]


def _announce(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


async def run_configuration(target: str, database: str, args: argparse.Namespace) -> dict[str, Any]:
    phases = tuple(args.phases.split(","))
    options: dict[str, Any] = {
        "n": args.n,
        "warmup": args.warmup,
        "conc_n": args.conc_n,
        "conc_warmup": args.conc_warmup,
        "concurrency": args.concurrency,
        "phases": phases,
        "announce": _announce,
    }
    name = f"paymod_bench_{target}_{os.getpid()}"
    workdir: Path = args.workdir
    url = await fresh_postgres(name) if database == "postgresql" else fresh_sqlite(workdir, name)
    header: dict[str, Any] = {
        "bench": BENCH_NAMES[target],
        "target": target,
        "database": database,
        "date": now_iso(),
        "machine": machine(),
        "loadavg1_at_start": loadavg1(),
    }
    if target != "medusa":
        header["paymod_src"] = {**source_state(), "imported_from": str(Path(paymod.__file__).parent)}
    try:
        if target == "module":
            from benchmarks.module_target import run_module

            body = await run_module(url, pool_size=args.pool_size, **options)
        elif target == "http":
            from benchmarks.http_target import run_http

            body = await run_http(url, workdir, **options)
        elif target == "medusa":
            from benchmarks.medusa_target import run_medusa

            body = await run_medusa(url, **options)
        else:
            from benchmarks.floor import run_floor

            body = await run_floor(url, **options)
    finally:
        if database == "postgresql" and not args.keep_databases:
            await drop_postgres(name)
        elif database == "sqlite" and not args.keep_databases:
            fresh_sqlite(workdir, name)  # removes the file and its WAL
    return {**header, **body, "loadavg1_at_end": loadavg1()}


async def _stoppable(work: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """SIGINT and SIGTERM end the phase after the flows in progress; the run then cleans up (server
    stopped, bench database dropped) and prints what it measured."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, request_stop)
    return await work


def child_command(target: str, database: str, args: argparse.Namespace) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks.flow",
        "--child",
        f"{target}:{database}",
        "--n",
        str(args.n),
        "--warmup",
        str(args.warmup),
        "--conc-n",
        str(args.conc_n),
        "--conc-warmup",
        str(args.conc_warmup),
        "--concurrency",
        str(args.concurrency),
        "--pool-size",
        str(args.pool_size),
        "--phases",
        args.phases,
        "--workdir",
        str(args.workdir),
        *(["--keep-databases"] if args.keep_databases else []),
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.flow",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--target",
        action="append",
        choices=[*TARGETS, "all"],
        help="module, http, floor, medusa or all (paymod's three; repeatable; default all)",
    )
    parser.add_argument("--database", choices=[*DATABASES, "both"], default="both")
    parser.add_argument("--n", type=int, default=500, help="sequential flows measured (Medusa: 500)")
    parser.add_argument("--warmup", type=int, default=50, help="sequential warm-up flows (Medusa: 50)")
    parser.add_argument("--conc-n", type=int, default=None, help="concurrent flows measured (default: --n)")
    parser.add_argument("--conc-warmup", type=int, default=64, help="concurrent warm-up flows (Medusa: 64)")
    parser.add_argument("--concurrency", type=int, default=16, help="flows in flight (Medusa: 16)")
    parser.add_argument("--pool-size", type=int, default=10, help="paymod's pool_size (module target)")
    parser.add_argument(
        "--quick", action="store_true", help="n=10, warm-ups 2/4, 16 concurrent flows: proves the bench runs"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "paymod-bench",
        help="SQLite files and server logs",
    )
    parser.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    parser.add_argument("--keep-databases", action="store_true", help="leave the bench databases behind")
    parser.add_argument(
        "--reinstall", action="store_true", help="reinstall Medusa's npm packages even if they are there"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--phases", default="sequential,concurrent", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.warmup, args.conc_n, args.conc_warmup = 10, 2, 16, 4
    if args.conc_n is None:
        args.conc_n = args.n
    args.targets = args.target or ["all"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        target, database = args.child.split(":")
        try:
            result = asyncio.run(_stoppable(run_configuration(target, database, args)))
        except HarnessError as exc:
            _announce(f"error: {exc}")
            return 1
        print(json.dumps(result), flush=True)
        return 0 if result["check"]["ok"] else 2
    failures = 0
    chosen = configurations(args.targets, args.database)
    if not chosen:
        _announce(f"nothing to run: {', '.join(POSTGRES_ONLY)} run on PostgreSQL only")
        return 2
    if ("medusa", "postgresql") in chosen:
        try:
            ensure_installed(args.reinstall, _announce)
        except HarnessError as exc:
            _announce(f"error: {exc}")
            failures += 1
            medusa = {"bench": BENCH_NAMES["medusa"], "target": "medusa", "database": "postgresql"}
            print(json.dumps({**medusa, "error": str(exc)}), flush=True)
            chosen.remove(("medusa", "postgresql"))
    for target, database in chosen:
        _announce(f"{target} on {database}")
        completed = subprocess.run(
            child_command(target, database, args), stdout=subprocess.PIPE, text=True, check=False
        )
        line = completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else ""
        if completed.returncode != 0 or not line:
            failures += 1
            line = line or json.dumps(
                {
                    "bench": BENCH_NAMES[target],
                    "target": target,
                    "database": database,
                    "error": f"exit status {completed.returncode}",
                }
            )
        print(line, flush=True)
        if args.out is not None:
            with args.out.open("a") as out:
                out.write(line + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
