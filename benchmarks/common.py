"""What every benchmark target shares: the flow's operations, phases, percentiles, CPU and databases.

A *flow* is the benchmark's unit of work: create a collection of 5000 usd, create a session on
`pp_system_default`, authorize it, capture 5000, refund 2000. Each Python target (the module, the HTTP
API, the asyncpg floor) implements it as `flow(recorder) -> FlowResult`; Medusa's module runs the same
flow in Node (benchmarks/medusa/bench.mjs).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")

OPS = (
    "create_payment_collections",
    "create_payment_session",
    "authorize_payment_session",
    "capture_payment",
    "refund_payment",
)
COUNT_FIELDS = ("statements", "begins", "commits", "rollbacks")

# The server used to create and drop the bench databases (never the test database's tables).
POSTGRES_ADMIN = os.environ.get("PAYMOD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass
class FlowResult:
    collection_id: str
    payment_id: str


@dataclass
class Recorder:
    """Times each operation (`timings`) and, while sampling, counts its SQL (`counts`)."""

    timings: dict[str, list[float]] | None = None
    counts: Callable[[], Mapping[str, int]] | None = None
    per_op: dict[str, dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )

    async def op(self, name: str, call: Awaitable[T]) -> T:
        before = self.counts() if self.counts is not None else None
        start = time.perf_counter()
        result = await call
        elapsed = (time.perf_counter() - start) * 1000
        if self.timings is not None:
            self.timings[name].append(elapsed)
        if before is not None and self.counts is not None:
            after = self.counts()
            for key in COUNT_FIELDS:
                self.per_op[name][key] += after[key] - before[key]
        return result


Flow = Callable[[Recorder], Awaitable[FlowResult]]

_stop = {"requested": False}


def request_stop() -> None:
    """Asks the running phase to finish after the flows in progress (SIGINT/SIGTERM in a child)."""
    _stop["requested"] = True


def stop_requested() -> bool:
    return _stop["requested"]


def percentile(values: list[float], p: float) -> float:
    """Nearest rank, as Medusa's bench.mjs computes it."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[index]


def r3(value: float) -> float:
    return round(value, 3)


def loadavg1() -> float:
    return r3(os.getloadavg()[0])


def self_cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_ms(pid: int) -> float | None:
    """utime + stime of a process, from /proc (None when it is gone or unreadable)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / _CLK_TCK


def proc_peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the process's peak resident set size."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version()}


SNAPSHOT_ENV = "PAYMOD_BENCH_SRC"


def _git(*args: str) -> str:
    root = Path(__file__).resolve().parent.parent
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def source_state() -> dict[str, Any]:
    """The paymod sources measured: a snapshot (see `snapshot_src`) or the working tree."""
    snapshot = os.environ.get(SNAPSHOT_ENV)
    if snapshot:
        info: dict[str, Any] = json.loads((Path(snapshot).parent / "SNAPSHOT.json").read_text())
        return info
    try:
        commit = _git("rev-parse", "--short", "HEAD").strip()
        changed = _git("status", "--porcelain", "--", "src").splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "uncommitted_src_files": None}
    return {"commit": commit, "uncommitted_src_files": len(changed), "snapshot": None}


def snapshot_src(dest: Path) -> dict[str, Any]:
    """Copies src/ to `dest`/src, so a long run measures one version while others edit the tree.

    Point PYTHONPATH (and `PAYMOD_BENCH_SRC`) at `dest`/src: it comes before the editable install.
    """
    root = Path(__file__).resolve().parent.parent
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(root / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    digest = hashlib.sha256()
    for path in sorted((dest / "src").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(dest)).encode())
            digest.update(path.read_bytes())
    try:
        commit = _git("rev-parse", "--short", "HEAD").strip()
        changed = _git("status", "--porcelain", "--", "src").splitlines()
    except (OSError, subprocess.CalledProcessError):
        commit, changed = None, []
    info = {
        "commit": commit,
        "uncommitted_src_files": len(changed),
        "snapshot": str(dest / "src"),
        "snapshot_sha256": digest.hexdigest()[:16],
        "snapshot_taken": now_iso(),
    }
    (dest / "SNAPSHOT.json").write_text(json.dumps(info))
    return info


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class BackendCpu:
    """CPU used by the PostgreSQL backends serving one database, sampled from /proc every 0.5 s.

    Best effort, as in Medusa's bench: a backend that lives less than one sample is missed. Backends
    that appear during the phase count from zero (their connection set-up is part of the work). The
    sampling runs in the measured process, so it is kept rare (py-spy: well under 1% of the samples).
    """

    INTERVAL = 0.5

    def __init__(self, database: str | None) -> None:
        self.database = database
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._admin: asyncpg.Connection | None = None

    async def _pids(self) -> list[int]:
        assert self._admin is not None
        rows = await self._admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", self.database
        )
        return [row["pid"] for row in rows]

    async def _sample(self, initial: bool = False) -> None:
        for pid in await self._pids():
            value = proc_cpu_ms(pid)
            if value is None:
                continue
            if pid not in self._first:
                self._first[pid] = value if initial else 0.0
            self._last[pid] = value

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.INTERVAL)
            await self._sample()

    async def start(self) -> None:
        if self.database is None:
            return
        self._admin = await asyncpg.connect(POSTGRES_ADMIN)
        await self._sample(initial=True)
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> float | None:
        """Milliseconds of backend CPU since `start`."""
        if self._admin is None:
            return None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._sample()
        await self._admin.close()
        return sum(self._last[pid] - self._first[pid] for pid in self._last)


@dataclass
class Probe:
    """What a target measures around a phase besides wall time: CPU of its processes, connections."""

    process_cpu_ms: Callable[[], dict[str, float]]
    counters: Callable[[], Mapping[str, int]] | None = None
    database: str | None = None


async def run_phase(flow: Flow, n: int, warmup: int, concurrency: int, probe: Probe) -> dict[str, Any]:
    """Warm-up, then `n` flows kept `concurrency` in flight; errors are counted, not raised."""
    errors: list[str] = []

    async def run(count: int, recorder: Recorder, latencies: list[float] | None) -> None:
        remaining = count

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0 and not stop_requested():
                remaining -= 1
                start = time.perf_counter()
                try:
                    await flow(recorder)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if latencies is not None:
                    latencies.append((time.perf_counter() - start) * 1000)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    await run(warmup, Recorder(), None)
    warmup_errors = len(errors)
    errors.clear()
    timings: dict[str, list[float]] = defaultdict(list)
    latencies: list[float] = []
    backends = BackendCpu(probe.database)
    await backends.start()
    load_before = loadavg1()
    cpu_before = probe.process_cpu_ms()
    connects_before = probe.counters()["connects"] if probe.counters else 0
    start = time.perf_counter()
    await run(n, Recorder(timings=timings), latencies)
    wall = time.perf_counter() - start
    cpu_after = probe.process_cpu_ms()
    connects = (probe.counters()["connects"] - connects_before) if probe.counters else None
    backend_ms = await backends.stop()
    done = len(latencies)
    cpu = {
        f"{name}_cpu_ms_per_flow": r3((cpu_after[name] - cpu_before[name]) / max(done, 1))
        for name in cpu_after
    }
    cpu["pg_backend_cpu_ms_per_flow"] = None if backend_ms is None else r3(backend_ms / max(done, 1))
    return {
        "concurrency": concurrency,
        "stopped_early": stop_requested(),
        "warmup": warmup,
        "n": n,
        "flows": done,
        "errors": len(errors),
        "warmup_errors": warmup_errors,
        "first_errors": sorted(set(errors))[:3],
        "wall_s": r3(wall),
        "flows_per_s": r3(done / wall) if wall else 0.0,
        "latency_ms": {
            "p50": r3(percentile(latencies, 50)) if latencies else None,
            "p90": r3(percentile(latencies, 90)) if latencies else None,
            "p99": r3(percentile(latencies, 99)) if latencies else None,
            "mean": r3(statistics.fmean(latencies)) if latencies else None,
            "max": r3(max(latencies)) if latencies else None,
        },
        "ops_median_ms": {name: r3(statistics.median(timings[name])) for name in OPS if timings[name]},
        "cpu": cpu,
        "connections_opened": connects,
        "loadavg1_before": load_before,
        "loadavg1_after": loadavg1(),
    }


async def sample_sql(flow: Flow, counters: Callable[[], Mapping[str, int]], flows: int = 5) -> dict[str, Any]:
    """SQL per operation and per flow, averaged over `flows` untimed flows (as Medusa counts it).

    `statements` counts everything sent, BEGIN/COMMIT/ROLLBACK included (Medusa's definition);
    `data_statements` leaves the transaction control out; `transactions` counts BEGINs.
    """
    recorder = Recorder(counts=counters)
    for _ in range(flows):
        await flow(recorder)
    per_op: dict[str, dict[str, float]] = {}
    for name in OPS:
        raw = recorder.per_op[name]
        data = raw["statements"] / flows
        control = (raw["begins"] + raw["commits"] + raw["rollbacks"]) / flows
        per_op[name] = {
            "statements": r3(data + control),
            "data_statements": r3(data),
            "transactions": r3(raw["begins"] / flows),
        }
    return {
        "sql_statements_per_flow": r3(sum(v["statements"] for v in per_op.values())),
        "sql_data_statements_per_flow": r3(sum(v["data_statements"] for v in per_op.values())),
        "transactions_per_flow": r3(sum(v["transactions"] for v in per_op.values())),
        "sql_per_op": per_op,
    }


async def fresh_postgres(name: str) -> str:
    """Drops and creates database `name` (a paymod_bench_* name); returns its URL."""
    if not name.startswith("paymod_bench"):
        raise ValueError(f"refusing to recreate {name!r}: bench databases are named paymod_bench_*")
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"


async def drop_postgres(name: str) -> None:
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def fresh_sqlite(workdir: Path, name: str) -> str:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{name}.db"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def database_name(url: str) -> str | None:
    """The PostgreSQL database of a URL (None for SQLite)."""
    return None if url.startswith("sqlite") else url.rsplit("/", 1)[1].split("?")[0]
