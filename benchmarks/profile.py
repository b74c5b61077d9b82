"""Where the time goes: py-spy on a sequential run, and the SQL each operation sends.

    python -m benchmarks.profile spy --target module      # py-spy on the bench process (PostgreSQL)
    python -m benchmarks.profile spy --target http        # py-spy on the `paymod serve` process
    python -m benchmarks.profile statements               # the SQL of one flow, per operation

`spy` starts one configuration of `benchmarks.flow` (sequential phase only, a large N), waits until
the measured phase starts, records `--seconds` of samples with py-spy (`--idle --native`, so time
waiting for PostgreSQL and time in compiled code, asyncpg's protocol included, are seen), stops the
run (SIGINT: the databases and the server are cleaned up) and prints the samples by package (the
innermost frame of a known package wins) and the heaviest functions, self and inclusive.
Raw stacks go to benchmarks/results/profile-<target>-<date>.txt.gz (flamegraph.pl reads them
unzipped), the summary next to them (.json).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import OPS, Recorder, drop_postgres, fresh_postgres, source_state

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

# (category, pattern on the frame's file path), first match wins; checked from the leaf upwards.
PACKAGES = [
    ("asyncpg", re.compile(r"/asyncpg/")),
    ("sqlalchemy", re.compile(r"/sqlalchemy/|greenlet/")),  # greenlet: SQLAlchemy's asyncio bridge
    ("pydantic", re.compile(r"/pydantic(_core)?/")),
    ("alembic", re.compile(r"/alembic/")),
    ("fastapi", re.compile(r"/fastapi/")),
    ("starlette", re.compile(r"/starlette/")),
    ("uvicorn+h11", re.compile(r"/(uvicorn|h11|httptools)/")),
    ("anyio (starlette/fastapi task groups, thread pool)", re.compile(r"/(anyio|sniffio)/")),
    ("httpx (client)", re.compile(r"/(httpx|httpcore)/")),
    ("paymod.http", re.compile(r"/paymod/http/")),
    ("paymod.services+workflows", re.compile(r"/paymod/(services|workflows)/")),
    ("paymod.persistence", re.compile(r"/paymod/persistence/")),
    ("paymod.domain+providers", re.compile(r"/paymod/(domain|providers)/")),
    ("paymod (other)", re.compile(r"/paymod/")),
    ("ulid", re.compile(r"/ulid/")),
]
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def parse_stacks(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    """py-spy's raw (collapsed) stacks, from a .txt or .txt.gz file."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    stacks = []
    for raw in data.decode(errors="replace").splitlines():
        body, _, count = raw.rpartition(" ")
        if not body or not count.isdigit():
            continue
        frames = []
        for part in body.split(";"):
            match = _FRAME.match(part)
            frames.append((match["func"], match["file"]) if match else (part, ""))
        stacks.append((frames, int(count)))
    return stacks


_SOCKET_SYSCALLS = ("send", "sendto", "sendmsg", "recv", "recvfrom", "recvmsg", "write", "read", "writev")


def _waiting_on_socket(frames: list[tuple[str, str]]) -> bool:
    """Wall time in the event loop's poll or in a socket send/recv.

    On this VM a send() to PostgreSQL over loopback wakes the backend, which then runs in the
    sender's time slice: the time shows in send() but is mostly spent off this process's CPU
    (getrusage: ~5 ms of system time per flow against ~40 ms of user time).
    """
    leaf_func, leaf_file = frames[-1]
    if leaf_func in ("EpollSelector.select", "epoll_wait", "epoll_pwait", "select_epoll_poll_impl"):
        return True
    if leaf_func in ("_SelectorSocketTransport.write", "sock_send", "sock_recv"):
        return True
    return leaf_func in _SOCKET_SYSCALLS and "libc" in leaf_file


def _category(frames: list[tuple[str, str]]) -> str:
    leaf_func, leaf_file = frames[-1]
    if leaf_func in _SOCKET_SYSCALLS and "libc" in leaf_file:
        return "socket syscalls (send/recv)"
    if any(leaf_func.startswith(x) or x in leaf_func for x in ("epoll_wait", "epoll_pwait")) or (
        leaf_func in ("select", "poll") and "selectors" in leaf_file
    ):
        return "idle: event loop waiting (PostgreSQL, network)"
    if any(func.startswith("BackendCpu") for func, _ in frames):
        return "bench harness (PostgreSQL CPU sampler)"
    for _func, file in reversed(frames):
        for name, pattern in PACKAGES:
            if pattern.search(file):
                return name
        if file.endswith(".so") or ".so." in file:
            if "asyncpg" in file:
                return "asyncpg"
            if "sqlalchemy" in file:
                return "sqlalchemy"
            if "pydantic_core" in file:
                return "pydantic"
    if any("/asyncio/" in file for _, file in frames):
        return "asyncio event loop + stdlib"
    return "python runtime / stdlib / other"


def _worker_thread(frames: list[tuple[str, str]]) -> bool:
    return any(func.startswith("Thread._bootstrap") for func, _ in frames)


def _waiting(frames: list[tuple[str, str]]) -> bool:
    return any(func in ("Condition.wait", "Queue.get", "Event.wait") for func, _ in frames[-8:]) and not any(
        "_write_to_self" in func for func, _ in frames
    )


def summarise(stacks: list[tuple[list[tuple[str, str]], int]], top: int = 25) -> dict[str, Any]:
    """Shares of the main thread's samples (the event loop, SQLAlchemy's greenlets included).

    Worker threads (anyio's thread pool, which runs FastAPI's sync dependencies) are reported on
    their own: their waiting samples are left out, their busy samples counted against the main
    thread's total.
    """
    main = [(frames, count) for frames, count in stacks if not _worker_thread(frames)]
    workers = [(frames, count) for frames, count in stacks if _worker_thread(frames)]
    total = sum(count for _, count in main)
    categories: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in main:
        categories[_category(frames)] += count
        func, file = frames[-1]
        self_time[f"{func} ({_short(file)})"] += count
        seen = set()
        for func, file in frames:
            if "/paymod/" in file or "/benchmarks/" in file:
                key = f"{func} ({_short(file)})"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += count
    busy_workers = sum(count for frames, count in workers if not _waiting(frames))
    on_cpu: Counter[str] = Counter()
    for frames, count in main:
        if not _waiting_on_socket(frames):
            on_cpu[_category(frames)] += count
    on_cpu_total = sum(on_cpu.values())

    def pct(n: float) -> float:
        return round(100 * n / total, 1) if total else 0.0

    return {
        "samples_main_thread": total,
        "samples_worker_threads_busy": busy_workers,
        "worker_threads_busy_pct_of_main": pct(busy_workers),
        "by_package_pct": {k: pct(v) for k, v in categories.most_common()},
        "waiting_on_socket_or_poll_pct": pct(total - on_cpu_total),
        "on_cpu_by_package_pct": {
            k: round(100 * v / on_cpu_total, 1) for k, v in on_cpu.most_common() if on_cpu_total
        },
        "top_self_pct": {k: pct(v) for k, v in self_time.most_common(top)},
        "top_paymod_inclusive_pct": {k: pct(v) for k, v in inclusive.most_common(top)},
    }


def _short(file: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file.rsplit("/", 1)[-1]


def spy(target: str, database: str, seconds: int, rate: int, native: bool) -> dict[str, Any]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    workdir = Path(tempfile.gettempdir()) / "paymod-bench-profile"
    command = [
        sys.executable,
        "-m",
        "benchmarks.flow",
        "--child",
        f"{target}:{database}",
        "--n",
        "1000000",
        "--warmup",
        "30",
        "--phases",
        "sequential",
        "--workdir",
        str(workdir),
    ]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    pid = child.pid
    for line in child.stderr:
        print(line, end="", file=sys.stderr)
        if line.startswith("[bench] server-pid"):
            pid = int(line.split()[-1])
        if line.startswith("[bench] phase-start sequential"):
            break
    time.sleep(3)  # past the warm-up
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    out = RESULTS / f"profile-{target}-{database}-{stamp}.txt"
    load = os.getloadavg()[0]
    subprocess.run(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            str(rate),
            "--idle",
            *(["--native"] if native else ["--nonblocking"]),
            "--full-filenames",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        check=True,
        stdout=sys.stderr,
    )
    child.send_signal(signal.SIGINT)
    try:
        child.wait(60)
    except subprocess.TimeoutExpired:
        child.kill()
    summary = summarise(parse_stacks(out))
    packed = out.with_name(out.name + ".gz")
    packed.write_bytes(gzip.compress(out.read_bytes()))
    out.unlink()
    result = {
        "target": target,
        "database": database,
        "profiled_pid": "paymod serve" if target == "http" else "bench process",
        "seconds": seconds,
        "rate_hz": rate,
        "mode": "--native (pauses the process per sample)"
        if native
        else "--nonblocking (Python frames only)",
        "loadavg1": round(load, 2),
        "raw": str(packed.relative_to(ROOT)),
        "source": source_state(),
        **summary,
    }
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    return result


async def statements() -> dict[str, Any]:
    """The statements of one flow per operation: module in process, HTTP on the server side."""
    from benchmarks.counting import SqlCounter
    from benchmarks.http_target import Api, paymod_server
    from benchmarks.module_target import module_flow
    from paymod import PaymentModule

    workdir = Path(tempfile.gettempdir()) / "paymod-bench-profile"
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}

    log = workdir / "module-sql.log"
    log.unlink(missing_ok=True)
    counter = SqlCounter(sql_log=log).install()
    url = await fresh_postgres("paymod_bench_statements")
    module = await PaymentModule.connect(url)
    try:
        flow = module_flow(module)
        await flow(Recorder())
        marks = _MarkingRecorder(counter)
        await flow(marks)
    finally:
        await module.close()
    report["module"] = _split_log(log)

    server_log = workdir / "server-sql.log"
    server_log.unlink(missing_ok=True)
    url = await fresh_postgres("paymod_bench_statements")
    import httpx

    try:
        async with paymod_server(url, workdir, sql_log=server_log) as server:
            client = httpx.AsyncClient(base_url=server.base_url, timeout=30)
            async with client:
                api = Api(client)
                await api.flow(Recorder())
                offsets = _OffsetRecorder(server_log)
                await api.flow(offsets)
    finally:
        await drop_postgres("paymod_bench_statements")
    report["http"] = offsets.split()
    return report


class _MarkingRecorder(Recorder):
    def __init__(self, counter: Any) -> None:
        super().__init__()
        self.counter = counter

    async def op(self, name: str, call: Any) -> Any:
        self.counter.mark(name)
        result = await call
        self.counter.mark("end")
        return result


class _OffsetRecorder(Recorder):
    def __init__(self, log: Path) -> None:
        super().__init__()
        self.log = log
        self.parts: dict[str, tuple[int, int]] = {}

    def _size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    async def op(self, name: str, call: Any) -> Any:
        start = self._size()
        result = await call
        await asyncio.sleep(0.05)  # the server's log line buffer
        self.parts[name] = (start, self._size())
        return result

    def split(self) -> dict[str, list[str]]:
        data = self.log.read_bytes()
        return {name: data[a:b].decode().splitlines() for name, (a, b) in self.parts.items()}


def _split_log(log: Path) -> dict[str, list[str]]:
    current: str | None = None
    parts: dict[str, list[str]] = {}
    for line in log.read_text().splitlines():
        if line.startswith("## "):
            name = line[3:]
            current = name if name in OPS else None
            continue
        if current is not None:
            parts.setdefault(current, []).append(line)
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    spy_parser = sub.add_parser("spy", help="py-spy on a sequential run")
    spy_parser.add_argument("--target", choices=["module", "http", "floor"], default="module")
    spy_parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    spy_parser.add_argument("--seconds", type=int, default=20)
    spy_parser.add_argument("--rate", type=int, default=100)
    spy_parser.add_argument(
        "--no-native",
        action="store_true",
        help="Python frames only, without pausing the process (less bias toward syscalls)",
    )
    sub.add_parser("statements", help="the SQL of one flow, per operation")
    args = parser.parse_args(argv)
    if args.command == "spy":
        print(
            json.dumps(spy(args.target, args.database, args.seconds, args.rate, not args.no_native), indent=1)
        )
    else:
        report = asyncio.run(statements())
        for target, ops in report.items():
            print(f"## {target}")
            for name in OPS:
                lines = ops.get(name, [])
                print(f"### {name}: {sum(1 for x in lines if not x.startswith('-- '))} statements")
                for line in lines:
                    print(f"    {line[:200]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
