"""Soak: a realistic mix against real `paymod serve` / `paymod worker` processes on PostgreSQL.

    python -m benchmarks.soak --minutes 2                      # 7 clients, the server's in-process worker
    python -m benchmarks.soak --minutes 2 --workers 2 --dead hang --keep
    python -m benchmarks.soak --seconds 12 --interval 4 --quiet  # the smoke test's shape

What it does, in order:

1. creates a fresh database `paymod_soak_<time>_<pid>` on the PostgreSQL server of `--database-url`
   (default `postgresql://postgres@127.0.0.1:5432`; a database in the URL is only used to connect),
   runs `paymod migrate` on it, and writes a TOML config: the `testing` provider (its webhook secret
   from `PAYMOD_PROVIDERS__DEFAULT__WEBHOOK_SECRET`), one region, `[webhooks] delay = 0`, `[worker]`;
2. starts the receivers (`benchmarks.soak_receiver`), one `paymod serve` (with its in-process worker,
   or `--no-worker` and `--workers K` separate `paymod worker` processes), keys from
   `PAYMOD_ADMIN_API_KEY` / `PAYMOD_PUBLISHABLE_API_KEY`;
3. registers two endpoints with `POST /admin/webhook-endpoints`, both for every event: **live** (the
   receiver: records each delivery's event id and arrival time) and **dead** (`--dead refused`: a
   loopback port nobody listens on; `--dead hang`: a server that accepts and never answers);
4. runs `--clients` async clients for `--minutes` (or `--seconds`), each picking flows from `MIX`:

   * `checkout`: admin create collection, store session, store authorize (Idempotency-Key), admin
     capture part then the rest, admin refund part;
   * `decline`: a `decline` session; authorize must answer 402;
   * `three_ds`: a `requires_more` session; authorize answers `action_required`; the customer then
     completes 3-D Secure, which the testing provider can only learn through the session's data
     (`action_completed`) and paymod has no HTTP route that updates a session's data: so the store
     replaces the session with one that says `action_completed: true` and authorizes again, then
     the admin captures. (A signed `authorized` webhook does not do it: the provider still says
     `requires_more` and the event is parked `failed`.)
   * `provider_webhook`: a session, then a signed `authorized` webhook sent twice at once (one
     stored, one `duplicate: true`, same id) and once with a bad signature (400), racing a store
     authorize (a 409 from the race is retried with a new key), then the admin captures;
   * `webhook_checkout`: a session, then a signed `captured` webhook and its duplicate, no authorize:
     the worker authorizes and books the capture;
   * `replay`: create collection, authorize and capture each sent twice with the same
     Idempotency-Key: the second must say `Idempotent-Replayed: true` with a byte-identical body;
   * `lists`: `GET /admin/payments`, `/admin/payment-collections`, `/admin/webhook-events`;

5. every `--interval` seconds (60: a minute) prints a row (see `COLUMNS`) and appends it to
   `benchmarks/results/soak-<time>.jsonl`;
6. after the load, waits up to `--drain` seconds for the backlogs (outbox, inbox, live deliveries)
   to empty, stops the server and workers, and checks the rows: per payment Σcaptures ≤ amount and
   Σrefunds ≤ Σcaptures, what each flow booked is exactly what it asked for, at most one live payment
   per session, no inbox event `failed`, and every event that reached `dispatched` arrived exactly
   once at the live endpoint when its delivery says `delivered` (none twice, none missing);
7. prints the whole table (markdown) and the summary, drops the database (unless `--keep`).

Any 5xx, unexpected status, transport error, mismatched replay, broken money invariant, or duplicate,
missing or failed live delivery is a problem: they are listed and the exit status is 1 (2 when the
soak could not start, 130 when interrupted). Ctrl-C (or SIGTERM) once ends the load early and still
checks and reports; twice, it only cleans up. Child processes run in their own session, get SIGTERM
when the soak dies (PR_SET_PDEATHSIG), and are killed at exit whatever happens.

The JSON lines file has a `{"kind": "run"}` line (options, machine, sources), one `{"kind": "minute"}`
line per row, and a `{"kind": "summary"}` line. Latencies: *hook* is a provider webhook's
`webhook_event.created_at` → `processed_at`, for events processed in that row's period; *live* is an
event's `event_outbox.created_at` → the receiver's arrival time, for deliveries that arrived in that
period (so it includes the time in the outbox, the dispatch, the delivery queue and the POST).

`--src DIR` runs the paymod processes from another source tree (prepended to PYTHONPATH), e.g. a
snapshot of HEAD while the working tree is being edited:
`git archive HEAD src | tar -x -C /tmp/paymod-head && python -m benchmarks.soak --src /tmp/paymod-head/src`.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import ctypes
import hashlib
import hmac
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from benchmarks.common import loadavg1, machine, now_iso, percentile, proc_cpu_ms

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"

TESTING = "pp_testing_default"
HOOK_PATH = "/hooks/payment/testing_default"
SIGNATURE_HEADER = "x-testing-signature"  # paymod.providers.testing: hex HMAC-SHA256 of the raw body
WORKER_READY = "paymod worker running"

#: Flow kinds and their weights in the mix.
MIX: dict[str, int] = {
    "checkout": 30,
    "decline": 8,
    "three_ds": 10,
    "provider_webhook": 14,
    "webhook_checkout": 12,
    "replay": 14,
    "lists": 12,
}

#: The table's columns: (JSON key, markdown header, format).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("minute", "min", "{}"),
    ("flows", "flows", "{}"),
    ("requests_per_s", "req/s", "{:.1f}"),
    ("latency_p50_ms", "p50 ms", "{:.1f}"),
    ("latency_p99_ms", "p99 ms", "{:.1f}"),
    ("server_rss_mib", "server MiB", "{:.1f}"),
    ("workers_rss_mib", "workers MiB", "{:.1f}"),
    ("db_size_mib", "db MiB", "{:.1f}"),
    ("outbox_pending", "outbox", "{}"),
    ("inbox_pending", "inbox", "{}"),
    ("deliveries_pending_live", "dl live", "{}"),
    ("deliveries_pending_dead", "dl dead", "{}"),
    ("hook_applied_p50_s", "hook p50 s", "{:.3f}"),
    ("hook_applied_p99_s", "hook p99 s", "{:.3f}"),
    ("live_delivered_p50_s", "live p50 s", "{:.3f}"),
    ("live_delivered_p99_s", "live p99 s", "{:.3f}"),
    ("flows_per_s", "flows/s", "{:.2f}"),
)

#: Problems that fail the run (all of them do); the names say what was seen.
PROBLEM_KINDS = (
    "5xx",
    "unexpected_status",
    "transport",
    "replay_mismatch",
    "webhook_dedupe",
    "expectation",
    "money",
    "delivery_duplicate",
    "delivery_missing",
    "delivery_failed",
    "inbox_failed",
    "outbox_failed",
    "process_exit",
    "client_error",
)


# -- small helpers ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float | None:
    """VmRSS of a process (MiB), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def pct(values: Sequence[float], p: float, digits: int = 3) -> float | None:
    return round(percentile(list(values), p), digits) if values else None


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")


def sign(body: bytes, secret: str) -> str:
    """The testing provider's `x-testing-signature`: hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def as_decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def money(cents: int) -> str:
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


def load_json(content: bytes) -> Any:
    return json.loads(content, parse_float=Decimal)


# -- problems ---------------------------------------------------------------------------------------
@dataclass
class Problems:
    """What went wrong: a count per kind and the first few examples of each."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    period: int = 0
    keep: int = 5

    def add(self, kind: str, detail: str, n: int = 1) -> None:
        self.counts[kind] += n
        self.period += n
        shown = self.examples.setdefault(kind, [])
        if len(shown) < self.keep:
            shown.append(detail[:400])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def take_period(self) -> int:
        n, self.period = self.period, 0
        return n


class FlowFailed(Exception):
    """A flow stopped at a step whose answer was recorded as a problem."""


# -- processes --------------------------------------------------------------------------------------
_LIBC: Any = None
with contextlib.suppress(OSError):
    _LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: SIGTERM when the soak dies, however it dies."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Processes:
    """The children of the soak: started in their own session, stopped by pid (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []
        atexit.register(self.kill_all)

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path, *, stdout_pipe: bool = False
    ) -> subprocess.Popen[bytes]:
        with log.open("ab") as output:
            process = subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env=dict(env),
                stdout=subprocess.PIPE if stdout_pipe else output,
                stderr=output,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.running.append((name, process))
        return process

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 15.0) -> int | None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(timeout=timeout)
        self.running = [(n, p) for n, p in self.running if p is not process]
        return process.returncode

    def dead(self) -> list[tuple[str, int]]:
        return [(name, p.returncode) for name, p in self.running if p.poll() is not None]

    def kill_all(self) -> None:
        for _, process in self.running:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
        self.running = []


# -- the database -----------------------------------------------------------------------------------
def server_urls(url: str) -> tuple[str, str]:
    """(URL of the maintenance database to connect to, URL template `...{db}...` for a database)."""
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    if parts.scheme not in ("postgresql", "postgres"):
        raise SystemExit(f"--database-url must be a PostgreSQL URL, not {url!r}")
    maintenance = parts.path.lstrip("/") or "postgres"
    admin = urlunsplit((parts.scheme, parts.netloc, f"/{maintenance}", parts.query, ""))
    template = urlunsplit((parts.scheme, parts.netloc, "/{db}", parts.query, ""))
    return admin, template


def database_name(*, keep: bool) -> str:
    """`paymod_soak_<time>_<pid>`; `paymod_soak_keep_...` for a database that `--keep` leaves behind."""
    return f"paymod_soak_{'keep_' if keep else ''}{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}_{os.getpid()}"


def stale(name: str, host: str | None) -> bool:
    """A soak database whose soak died without dropping it (SIGKILL): same machine, its pid gone."""
    if host not in ("127.0.0.1", "localhost", "::1", None) or "_keep_" in name:
        return False
    pid = name.rsplit("_", 1)[-1]
    return pid.isdigit() and not Path(f"/proc/{pid}").exists()


async def create_database(admin_url: str, name: str) -> list[str]:
    """Creates database `name`; drops the stale soak databases first (returns their names)."""
    conn = await asyncpg.connect(admin_url)
    try:
        names = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'paymod\\_soak\\_%'")
        dropped = [row["datname"] for row in names if stale(row["datname"], urlsplit(admin_url).hostname)]
        for old in dropped:
            await conn.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return dropped


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def write_config(
    directory: Path,
    *,
    poll_interval: float,
    batch: int,
    retention_minutes: float | None = None,
    disable_after_minutes: float | None = None,
) -> Path:
    config = directory / "paymod.toml"
    config.write_text(
        "# benchmarks.soak: the webhook secret comes from PAYMOD_PROVIDERS__DEFAULT__WEBHOOK_SECRET\n"
        "[[providers]]\n"
        'resolve = "testing"\n'
        'id = "default"\n'
        "options = { record_calls = false }\n"
        "[[regions]]\n"
        'id = "reg_soak"\n'
        f'providers = ["pp_system_default", "{TESTING}"]\n'
        "[webhooks]\n"
        "delay = 0\n"
        "retries = 3\n"
        "[worker]\n"
        f"poll_interval = {poll_interval}\n"
        f"batch = {batch}\n"
        "shutdown_grace = 5\n"
        + (
            f"retention_days = {retention_minutes / 1440!r}\nprune_interval = 60\n"
            if retention_minutes is not None
            else ""
        )
        + (
            f"endpoint_disable_after = {disable_after_minutes * 60!r}\n"
            if disable_after_minutes is not None
            else ""
        )
    )
    return config


# -- the clients ------------------------------------------------------------------------------------
@dataclass
class Stats:
    latencies_ms: list[float] = field(default_factory=list)
    flows: Counter[str] = field(default_factory=Counter)
    flows_total: Counter[str] = field(default_factory=Counter)
    requests_total: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    conflicts_retried: int = 0

    def take(self) -> tuple[list[float], Counter[str]]:
        latencies, flows = self.latencies_ms, self.flows
        self.latencies_ms, self.flows = [], Counter()
        return latencies, flows


@dataclass
class Expected:
    """What a flow asked for, checked against the rows at the end."""

    amount: Decimal
    captured: Decimal
    refunded: Decimal
    kind: str


@dataclass
class WebhookCheckout:
    collection_id: str
    session_id: str
    amount: Decimal
    event_id: str


class Clients:
    """The HTTP calls and flows of the mix, over one keep-alive httpx client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        admin_key: str,
        publishable_key: str,
        webhook_secret: str,
        problems: Problems,
    ) -> None:
        self.http = http
        self.admin = {"Authorization": f"Bearer {admin_key}"}
        self.store = {"x-publishable-api-key": publishable_key}
        self.secret = webhook_secret
        self.problems = problems
        self.stats = Stats()
        self.expected: dict[str, Expected] = {}
        self.webhook_checkouts: list[WebhookCheckout] = []
        self.flows: dict[str, Callable[[random.Random], Awaitable[None]]] = {
            "checkout": self.checkout,
            "decline": self.decline,
            "three_ds": self.three_ds,
            "provider_webhook": self.provider_webhook,
            "webhook_checkout": self.webhook_checkout,
            "replay": self.replay,
            "lists": self.lists,
        }

    # -- one request ------------------------------------------------------------------------------
    async def call(
        self,
        method: str,
        path: str,
        route: str,
        *,
        expect: Sequence[int] = (200,),
        body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        started = time.perf_counter()
        try:
            if content is not None:
                response = await self.http.request(method, path, content=content, headers=headers)
            elif method == "GET":
                response = await self.http.request(method, path, headers=headers)
            else:
                response = await self.http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            self.problems.add("transport", f"{method} {route}: {type(exc).__name__}: {exc}")
            raise FlowFailed from exc
        self.stats.latencies_ms.append((time.perf_counter() - started) * 1000)
        self.stats.requests_total += 1
        self.stats.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.problems.add("5xx", f"{method} {route}: {response.status_code} {response.text[:300]}")
            raise FlowFailed
        if response.status_code not in expect:
            self.problems.add(
                "unexpected_status",
                f"{method} {route}: {response.status_code} (expected {list(expect)}) {response.text[:300]}",
            )
            raise FlowFailed
        return response

    def keyed(self, headers: Mapping[str, str], key: str | None = None) -> dict[str, str]:
        return {**headers, "Idempotency-Key": key or uuid.uuid4().hex}

    def expect(self, ok: bool, detail: str) -> None:
        if not ok:
            self.problems.add("expectation", detail)
            raise FlowFailed

    # -- steps --------------------------------------------------------------------------------------
    async def collection(self, amount: str, key: str | None = None) -> tuple[str, httpx.Response]:
        headers = self.keyed(self.admin, key) if key else self.admin
        response = await self.call(
            "POST",
            "/admin/payment-collections",
            "/admin/payment-collections",
            body={"amount": amount, "currency_code": "usd"},
            headers=headers,
        )
        return str(load_json(response.content)["payment_collection"]["id"]), response

    async def session(self, collection_id: str, data: Mapping[str, Any]) -> str:
        response = await self.call(
            "POST",
            f"/store/payment-collections/{collection_id}/payment-sessions",
            "/store/payment-collections/{id}/payment-sessions",
            body={"provider_id": TESTING, "data": dict(data)},
            headers=self.store,
        )
        sessions = load_json(response.content)["payment_collection"]["payment_sessions"]
        live = [s for s in sessions if s.get("status") not in ("canceled",)]
        self.expect(len(live) >= 1, f"session on {collection_id}: no session in {sessions!r}"[:300])
        return str(live[-1]["id"])

    async def authorize(
        self, collection_id: str, key: str | None = None, expect: Sequence[int] = (200,)
    ) -> httpx.Response:
        return await self.call(
            "POST",
            f"/store/payment-collections/{collection_id}/authorize",
            "/store/payment-collections/{id}/authorize",
            body={},
            headers=self.keyed(self.store, key),
            expect=expect,
        )

    def payment_of(self, response: httpx.Response, what: str) -> dict[str, Any]:
        document = load_json(response.content)
        self.expect(
            document.get("action_required") is False and isinstance(document.get("payment"), dict),
            f"{what}: authorize did not return a payment: {response.text[:300]}",
        )
        payment: dict[str, Any] = document["payment"]
        return payment

    async def capture(
        self, payment_id: str, amount: str | None = None, key: str | None = None
    ) -> httpx.Response:
        return await self.call(
            "POST",
            f"/admin/payments/{payment_id}/capture",
            "/admin/payments/{id}/capture",
            body={} if amount is None else {"amount": amount},
            headers=self.keyed(self.admin, key),
        )

    async def refund(self, payment_id: str, amount: str) -> httpx.Response:
        return await self.call(
            "POST",
            f"/admin/payments/{payment_id}/refund",
            "/admin/payments/{id}/refund",
            body={"amount": amount, "note": "soak"},
            headers=self.keyed(self.admin),
        )

    async def hook(self, body: bytes, signature: str | None = None, expect: Sequence[int] = (200,)) -> Any:
        response = await self.call(
            "POST",
            HOOK_PATH,
            HOOK_PATH,
            content=body,
            headers={
                "content-type": "application/json",
                SIGNATURE_HEADER: signature if signature is not None else sign(body, self.secret),
            },
            expect=expect,
        )
        return load_json(response.content)

    async def hook_twice(self, event: Mapping[str, Any]) -> None:
        """The same signed event twice at once: one stored, one `duplicate`, one id."""
        body = json.dumps(dict(event)).encode()
        first, second = await asyncio.gather(self.hook(body), self.hook(body))
        duplicates = sorted([bool(first.get("duplicate")), bool(second.get("duplicate"))])
        self.expect(
            duplicates == [False, True] and first.get("id") == second.get("id") and bool(first.get("id")),
            f"webhook {event['id']}: two deliveries answered {first!r} and {second!r}",
        )

    # -- flows --------------------------------------------------------------------------------------
    @staticmethod
    def cents(rng: random.Random) -> int:
        return rng.randint(1000, 50000)

    async def checkout(self, rng: random.Random) -> None:
        cents = self.cents(rng)
        collection_id, _ = await self.collection(money(cents))
        await self.session(collection_id, {})
        payment = self.payment_of(await self.authorize(collection_id), "checkout")
        part = rng.randint(1, cents - 1)
        await self.capture(payment["id"], money(part))
        await self.capture(payment["id"])  # the rest
        refund = rng.randint(1, cents)
        await self.refund(payment["id"], money(refund))
        self.expected[payment["id"]] = Expected(
            as_decimal(money(cents)), as_decimal(money(cents)), as_decimal(money(refund)), "checkout"
        )

    async def decline(self, rng: random.Random) -> None:
        collection_id, _ = await self.collection(money(self.cents(rng)))
        await self.session(collection_id, {"scenario": "decline"})
        await self.authorize(collection_id, expect=(402,))

    async def three_ds(self, rng: random.Random) -> None:
        cents = self.cents(rng)
        collection_id, _ = await self.collection(money(cents))
        session_id = await self.session(collection_id, {"scenario": "requires_more"})
        first = load_json((await self.authorize(collection_id)).content)
        self.expect(
            first.get("action_required") is True
            and (first.get("payment_session") or {}).get("id") == session_id
            and (first.get("payment_session") or {}).get("status") == "requires_more",
            f"3-D Secure: authorize answered {json.dumps(first, default=str)[:300]}",
        )
        # The customer completed the challenge: the session now says so (see the module's docstring).
        await self.session(collection_id, {"scenario": "requires_more", "action_completed": True})
        payment = self.payment_of(await self.authorize(collection_id), "3-D Secure, completed")
        await self.capture(payment["id"])
        self.expected[payment["id"]] = Expected(
            as_decimal(money(cents)), as_decimal(money(cents)), Decimal(0), "three_ds"
        )

    async def provider_webhook(self, rng: random.Random) -> None:
        cents = self.cents(rng)
        collection_id, _ = await self.collection(money(cents))
        session_id = await self.session(collection_id, {})
        event = {"id": f"evt_{uuid.uuid4().hex}", "action": "authorized", "session_id": session_id}
        event["amount"] = money(cents)
        tampered = json.dumps({**event, "amount": money(cents * 2)}).encode()
        await asyncio.gather(
            self.hook_twice(event),
            self.hook(tampered, signature=sign(json.dumps(event).encode(), self.secret), expect=(400,)),
        )
        # The storefront authorizes too, racing the worker: one payment either way.
        for attempt in range(10):
            response = await self.authorize(collection_id, expect=(200, 409))
            if response.status_code == 200:
                break
            self.stats.conflicts_retried += 1
            await asyncio.sleep(0.1 * (attempt + 1))
        else:
            self.expect(False, f"provider webhook: authorize of {collection_id} kept answering 409")
        payment = self.payment_of(response, "provider webhook")
        await self.capture(payment["id"])
        self.expected[payment["id"]] = Expected(
            as_decimal(money(cents)), as_decimal(money(cents)), Decimal(0), "provider_webhook"
        )

    async def webhook_checkout(self, rng: random.Random) -> None:
        cents = self.cents(rng)
        collection_id, _ = await self.collection(money(cents))
        session_id = await self.session(collection_id, {})
        event = {
            "id": f"evt_{uuid.uuid4().hex}",
            "action": "captured",
            "session_id": session_id,
            "amount": money(cents),
        }
        await self.hook_twice(event)
        self.webhook_checkouts.append(
            WebhookCheckout(collection_id, session_id, as_decimal(money(cents)), str(event["id"]))
        )

    async def replay(self, rng: random.Random) -> None:
        cents = self.cents(rng)

        async def twice(send: Callable[[str], Awaitable[httpx.Response]], what: str) -> httpx.Response:
            key = uuid.uuid4().hex
            first = await send(key)
            again = await send(key)
            if again.headers.get("idempotent-replayed") != "true" or again.content != first.content:
                self.problems.add(
                    "replay_mismatch",
                    f"{what}: replayed={again.headers.get('idempotent-replayed')!r}, "
                    f"bodies {'equal' if again.content == first.content else 'differ'}: "
                    f"{first.text[:150]} / {again.text[:150]}",
                )
                raise FlowFailed
            return first

        async def create(key: str) -> httpx.Response:
            return (await self.collection(money(cents), key))[1]

        created = await twice(create, "POST /admin/payment-collections")
        collection_id = str(load_json(created.content)["payment_collection"]["id"])
        await self.session(collection_id, {})

        async def authorize(key: str) -> httpx.Response:
            return await self.authorize(collection_id, key)

        payment = self.payment_of(await twice(authorize, "POST /store/.../authorize"), "replay")

        async def capture(key: str) -> httpx.Response:
            return await self.capture(payment["id"], key=key)

        await twice(capture, "POST /admin/payments/{id}/capture")
        self.expected[payment["id"]] = Expected(
            as_decimal(money(cents)), as_decimal(money(cents)), Decimal(0), "replay"
        )

    async def lists(self, rng: random.Random) -> None:
        for path in ("/admin/payments", "/admin/payment-collections", "/admin/webhook-events"):
            response = await self.call("GET", f"{path}?limit=20", path, headers=self.admin)
            document = load_json(response.content)
            self.expect("count" in document, f"GET {path}: no count in {response.text[:200]}")

    # -- one client ---------------------------------------------------------------------------------
    async def run(self, index: int, seed: int, deadline: float, stop: asyncio.Event) -> None:
        rng = random.Random(seed * 1000 + index)
        kinds, weights = list(MIX), list(MIX.values())
        while time.monotonic() < deadline and not stop.is_set():
            kind = rng.choices(kinds, weights)[0]
            try:
                await self.flows[kind](rng)
            except FlowFailed:
                await asyncio.sleep(0.2)  # do not spin on a server that fails fast
                continue
            except (KeyError, TypeError, ValueError) as exc:  # an answer not shaped as documented
                self.problems.add("client_error", f"{kind}: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.2)
                continue
            self.stats.flows[kind] += 1
            self.stats.flows_total[kind] += 1


# -- the receiver's log -----------------------------------------------------------------------------
class Arrivals:
    """The live receiver's lines (`<unix time> <event id>`), read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.count: Counter[str] = Counter()
        self.first: dict[str, float] = {}

    def read_new(self) -> list[tuple[float, str]]:
        try:
            with self.path.open("rb") as file:
                file.seek(self.offset)
                data = file.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # a line being written stays for the next read
        self.offset += end
        new = []
        for line in data[:end].decode().splitlines():
            at, _, event_id = line.partition(" ")
            self.count[event_id] += 1
            self.first.setdefault(event_id, float(at))
            new.append((float(at), event_id))
        return new


# -- measurements -----------------------------------------------------------------------------------
class CpuMeter:
    """CPU of processes between two samples, in % of one core (from /proc/<pid>/stat)."""

    def __init__(self) -> None:
        self.last: dict[int, tuple[float, float]] = {}

    def percent(self, pid: int) -> float | None:
        used, now = proc_cpu_ms(pid), time.monotonic()
        if used is None:
            return None
        before = self.last.get(pid)
        self.last[pid] = (used, now)
        if before is None or now <= before[1]:
            return None
        return round((used - before[0]) / ((now - before[1]) * 1000) * 100, 1)


def utc(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


async def backlog(conn: asyncpg.Connection, live_id: str, dead_id: str) -> dict[str, int]:
    outbox = await conn.fetchval("SELECT count(*) FROM event_outbox WHERE status = 'pending'")
    inbox = await conn.fetchval("SELECT count(*) FROM webhook_event WHERE status = 'pending'")
    rows = await conn.fetch(
        "SELECT endpoint_id, count(*) AS n FROM webhook_delivery WHERE status = 'pending' "
        "GROUP BY endpoint_id"
    )
    by_endpoint = {row["endpoint_id"]: int(row["n"]) for row in rows}
    return {
        "outbox_pending": int(outbox),
        "inbox_pending": int(inbox),
        "deliveries_pending_live": by_endpoint.get(live_id, 0),
        "deliveries_pending_dead": by_endpoint.get(dead_id, 0),
    }


async def hook_latencies(conn: asyncpg.Connection, start: float, end: float) -> list[float]:
    rows = await conn.fetch(
        "SELECT extract(epoch FROM processed_at - created_at)::float8 AS s FROM webhook_event "
        "WHERE processed_at >= $1 AND processed_at < $2",
        utc(start),
        utc(end),
    )
    return [float(row["s"]) for row in rows]


async def live_latencies(conn: asyncpg.Connection, arrived: list[tuple[float, str]]) -> list[float]:
    if not arrived:
        return []
    rows = await conn.fetch(
        "SELECT id, extract(epoch FROM created_at)::float8 AS t FROM event_outbox WHERE id = ANY($1::text[])",
        sorted({event_id for _, event_id in arrived}),
    )
    created = {row["id"]: float(row["t"]) for row in rows}
    return [at - created[event_id] for at, event_id in arrived if event_id in created]


# -- the run ----------------------------------------------------------------------------------------
@dataclass
class SoakOptions:
    seconds: float
    clients: int = 7
    workers: int = 0
    dead: str = "refused"
    database_url: str = DEFAULT_SERVER
    keep: bool = False
    quiet: bool = False
    interval: float = 60.0
    drain: float = 30.0
    results_dir: Path = RESULTS
    src: Path | None = None
    seed: int = 1
    poll_interval: float = 0.2
    batch: int = 20
    retention_minutes: float | None = None
    disable_after_minutes: float | None = None


@dataclass
class SoakResult:
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    results_file: Path
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.summary["problems"] and not self.interrupted


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    def cell(row: Mapping[str, Any], key: str, fmt: str) -> str:
        value = row.get(key)
        return "-" if value is None else fmt.format(value)

    lines = [
        "| " + " | ".join(header for _, header, _ in COLUMNS) + " |",
        "|" + "|".join("---:" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(cell(row, k, f) for k, _, f in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def plain_row(row: Mapping[str, Any]) -> str:
    parts = []
    for key, header, fmt in COLUMNS:
        value = row.get(key)
        parts.append(f"{header}={'-' if value is None else fmt.format(value)}")
    return "  ".join(parts)


def source_info(src: Path | None) -> dict[str, Any]:
    """The sources the paymod processes run (git read-only, without touching the index)."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    info: dict[str, Any] = {"src": str(src) if src else str(ROOT / "src")}
    try:
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if src is None:
            changed = subprocess.run(
                ["git", "status", "--porcelain", "--", "src"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.splitlines()
            info["uncommitted_src_files"] = len(changed)
    except (OSError, subprocess.CalledProcessError):
        info["commit"] = None
    return info


async def run_soak(options: SoakOptions, out: Callable[[str], None] = print) -> SoakResult:
    """Runs the whole soak (set-up, load, checks, clean-up) and returns its rows and summary."""
    say: Callable[[str], None] = (lambda _text: None) if options.quiet else out
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    main_task = asyncio.current_task()
    signals = {"count": 0}

    def on_signal() -> None:
        signals["count"] += 1
        if signals["count"] == 1:
            out("[soak] stopping: finishing the flows in progress, then checking (again to abort)")
            stop.set()
        elif main_task is not None:
            main_task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)

    options.results_dir.mkdir(parents=True, exist_ok=True)
    results_file = options.results_dir / f"soak-{stamp()}.jsonl"
    admin_url, template = server_urls(options.database_url)
    db_name = database_name(keep=options.keep)
    db_url = template.format(db=db_name)
    workdir = Path(tempfile.mkdtemp(prefix="paymod-soak-"))
    admin_key = f"sk_soak_{secrets.token_urlsafe(18)}"
    publishable_key = f"pk_soak_{secrets.token_urlsafe(18)}"
    webhook_secret = f"whsec_soak_{secrets.token_hex(16)}"
    processes = Processes()
    rows: list[dict[str, Any]] = []
    problems = Problems()
    notes: list[str] = []
    summary: dict[str, Any] = {}
    keep_workdir = options.keep

    def record(line: Mapping[str, Any]) -> None:
        with results_file.open("a", encoding="utf-8") as file:
            file.write(json.dumps(line, default=str) + "\n")

    record(
        {
            "kind": "run",
            "date": now_iso(),
            "argv": sys.argv[1:],
            "options": {**asdict(options), "results_dir": str(options.results_dir)},
            "mix": MIX,
            "database": db_name,
            "machine": machine(),
            "paymod_src": source_info(options.src),
            "loadavg1_at_start": loadavg1(),
        }
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            # -- set-up -------------------------------------------------------------------------------
            say(f"[soak] database {db_name} on {admin_url.rsplit('/', 1)[0]}; logs in {workdir}")
            dropped = await create_database(admin_url, db_name)
            if dropped:
                notes.append(f"dropped stale soak databases (their soak was killed): {dropped}")
            if not options.keep:
                stack.push_async_callback(drop_database, admin_url, db_name)
            env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMOD_")}
            env.update(
                PAYMOD_DATABASE_URL=db_url,
                PAYMOD_CONFIG=str(
                    write_config(
                        workdir,
                        poll_interval=options.poll_interval,
                        batch=options.batch,
                        retention_minutes=options.retention_minutes,
                        disable_after_minutes=options.disable_after_minutes,
                    )
                ),
                PAYMOD_ADMIN_API_KEY=admin_key,
                PAYMOD_PUBLISHABLE_API_KEY=publishable_key,
                PAYMOD_PROVIDERS__DEFAULT__WEBHOOK_SECRET=webhook_secret,
                PYTHONUNBUFFERED="1",
            )
            if options.src is not None:
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(options.src), env.get("PYTHONPATH")]))
            paymod = [sys.executable, "-m", "paymod.cli"]
            migrated = await asyncio.to_thread(
                subprocess.run, [*paymod, "migrate"], cwd=ROOT, env=env, capture_output=True, text=True
            )
            if migrated.returncode != 0:
                raise RuntimeError(f"paymod migrate failed:\n{migrated.stdout}\n{migrated.stderr}"[-3000:])

            stack.callback(processes.kill_all)
            receiver_log = workdir / "receiver.log"
            receiver = processes.start(
                "receiver",
                [
                    sys.executable,
                    "-m",
                    "benchmarks.soak_receiver",
                    "--out",
                    str(workdir / "arrivals.txt"),
                    *(["--hang"] if options.dead == "hang" else []),
                ],
                os.environ,
                receiver_log,
                stdout_pipe=True,
            )
            assert receiver.stdout is not None
            ports_line = await asyncio.wait_for(asyncio.to_thread(receiver.stdout.readline), 30)
            if not ports_line:
                raise RuntimeError(f"the receiver did not start: {receiver_log.read_text()[-2000:]}")
            ports = json.loads(ports_line)
            live_url = f"http://127.0.0.1:{ports['live']}/paymod-events"
            dead_port = ports["hang"] if options.dead == "hang" else free_port()
            dead_url = f"http://127.0.0.1:{dead_port}/paymod-events"
            arrivals = Arrivals(workdir / "arrivals.txt")

            port = free_port()
            server_args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
            server_args += ["--no-migrate", *(["--no-worker"] if options.workers else [])]
            server = processes.start("server", [*paymod, *server_args], env, workdir / "server.log")
            workers = [
                processes.start(f"worker-{n}", [*paymod, "worker"], env, workdir / f"worker-{n}.log")
                for n in range(options.workers)
            ]
            base_url = f"http://127.0.0.1:{port}"
            await wait_healthy(base_url, server, workdir / "server.log")
            for n, worker in enumerate(workers):
                if not await wait_worker(worker, workdir / f"worker-{n}.log"):
                    notes.append(f"worker-{n} did not print {WORKER_READY!r} within 30 s (it runs)")
            say(
                f"[soak] paymod serve pid {server.pid} on {base_url}"
                + (
                    f", {len(workers)} paymod worker(s): {[w.pid for w in workers]}"
                    if workers
                    else ", in-process worker"
                )
            )

            limits = httpx.Limits(
                max_connections=options.clients * 3 + 4, max_keepalive_connections=options.clients * 3 + 4
            )
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30.0), limits=limits)
            )
            clients = Clients(
                http,
                admin_key=admin_key,
                publishable_key=publishable_key,
                webhook_secret=webhook_secret,
                problems=problems,
            )
            endpoints = {}
            for name, url in (("live", live_url), ("dead", dead_url)):
                try:
                    created = await clients.call(
                        "POST",
                        "/admin/webhook-endpoints",
                        "/admin/webhook-endpoints",
                        body={"url": url, "events": ["*"], "description": f"soak {name}"},
                        headers=clients.admin,
                    )
                except FlowFailed:
                    raise RuntimeError(
                        f"registering the {name} endpoint failed: {problems.examples}"
                    ) from None
                endpoints[name] = str(load_json(created.content)["webhook_endpoint"]["id"])
            live_id, dead_id = endpoints["live"], endpoints["dead"]
            say(f"[soak] endpoints: live {live_id} {live_url}; dead ({options.dead}) {dead_id} {dead_url}")

            metrics = await asyncpg.connect(db_url)
            stack.push_async_callback(metrics.close)

            # -- load ---------------------------------------------------------------------------------
            say(
                f"[soak] {options.clients} clients for {options.seconds:g} s, "
                f"a row every {options.interval:g} s"
            )
            say(plain_header())
            started = time.monotonic()
            deadline = started + options.seconds
            tasks = [
                asyncio.create_task(clients.run(i, options.seed, deadline, stop))
                for i in range(options.clients)
            ]

            async def cancel_clients() -> None:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            stack.push_async_callback(cancel_clients)
            period_start_mono, period_start_wall = started, time.time()
            cpu = CpuMeter()
            for pid in (server.pid, *(w.pid for w in workers), os.getpid()):
                cpu.percent(pid)
            index = 0
            while True:
                index += 1
                period_end = min(started + index * options.interval, deadline)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, period_end - time.monotonic()))
                final = stop.is_set() or time.monotonic() >= deadline - 0.05
                if final:
                    # The flows in progress finish (bounded): every flow lands in a row and is checked.
                    _done, pending = await asyncio.wait(tasks, timeout=60)
                    if pending:
                        notes.append(
                            f"{len(pending)} client(s) still in a flow 60 s after the end: cancelled"
                        )
                    await cancel_clients()
                now_mono, now_wall = time.monotonic(), time.time()
                if not final or now_mono - period_start_mono >= 1.0 or clients.stats.latencies_ms or not rows:
                    row = await measure(
                        index,
                        now_mono - period_start_mono,
                        (period_start_wall, now_wall),
                        clients,
                        problems,
                        metrics,
                        arrivals,
                        server,
                        workers,
                        live_id,
                        dead_id,
                        cpu,
                    )
                    rows.append(row)
                    record({"kind": "minute", **row})
                    say(plain_row(row) + (f"  problems={row['problems']}" if row["problems"] else ""))
                period_start_mono, period_start_wall = now_mono, now_wall
                if final:
                    break
                for name, code in processes.dead():
                    problems.add("process_exit", f"{name} exited with {code} during the load")
                    stop.set()

            # -- drain, stop, check -------------------------------------------------------------------
            drain = await drain_backlog(metrics, live_id, dead_id, options.drain, stop, arrivals)
            say(f"[soak] drain: {drain}")
            for name, process in list(processes.running):
                if name != "receiver":
                    exit_code = processes.stop(process)
                    if exit_code not in (0, -signal.SIGTERM, None):
                        notes.append(f"{name} exited with {exit_code} when stopped")
            arrivals.read_new()
            checks = await final_checks(metrics, clients, arrivals, live_id, dead_id, problems, notes)
            logs = scan_logs(workdir)
            if logs:
                notes.append(f"process logs: {logs} (in {workdir})")
            summary = {
                "kind": "summary",
                "date": now_iso(),
                "database": db_name,
                "seconds": round(time.monotonic() - started, 1),
                "flows": sum(clients.stats.flows_total.values()),
                "flows_by_kind": dict(clients.stats.flows_total),
                "requests": clients.stats.requests_total,
                "statuses": {str(k): v for k, v in sorted(clients.stats.statuses.items())},
                "five_xx": problems.counts.get("5xx", 0),
                "conflicts_retried": clients.stats.conflicts_retried,
                "drain": drain,
                "checks": checks,
                "problems": dict(problems.counts),
                "problem_examples": problems.examples,
                "notes": notes,
                "interrupted": signals["count"] > 0,
                "loadavg1_at_end": loadavg1(),
                "workdir": str(workdir),
            }
            if problems.total or logs or options.keep:
                keep_workdir = True
            record(summary)
    except BaseException:
        keep_workdir = True  # the logs say what went wrong
        out(f"[soak] logs kept in {workdir}")
        raise
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        processes.kill_all()
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return SoakResult(rows, summary, results_file, interrupted=signals["count"] > 0)


def plain_header() -> str:
    return "[soak] per row: " + ", ".join(header for _, header, _ in COLUMNS)


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:]


async def wait_healthy(base_url: str, server: subprocess.Popen[bytes], log: Path, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"paymod serve exited with {server.returncode}:\n{tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/health")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"paymod serve did not become healthy in {within} s:\n{tail(log)}")


async def wait_worker(worker: subprocess.Popen[bytes], log: Path, within: float = 30) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"paymod worker exited with {worker.returncode}:\n{tail(log)}")
        if WORKER_READY in tail(log, 100_000):
            return True
        await asyncio.sleep(0.1)
    return False


async def measure(
    index: int,
    seconds: float,
    window: tuple[float, float],
    clients: Clients,
    problems: Problems,
    conn: asyncpg.Connection,
    arrivals: Arrivals,
    server: subprocess.Popen[bytes],
    workers: Sequence[subprocess.Popen[bytes]],
    live_id: str,
    dead_id: str,
    cpu: CpuMeter,
) -> dict[str, Any]:
    """One row: the clients' period, the processes' RSS, the database's size, backlogs and latencies."""
    latencies, flows = clients.stats.take()
    arrived = arrivals.read_new()
    hooks = await hook_latencies(conn, *window)
    live = await live_latencies(conn, arrived)
    worker_rss = [rss_mib(w.pid) for w in workers]
    size = await conn.fetchval("SELECT pg_database_size(current_database())")
    seconds = max(seconds, 1e-6)
    return {
        "minute": index,
        "seconds": round(seconds, 1),
        "flows": sum(flows.values()),
        "flows_by_kind": dict(flows),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / seconds, 1),
        "latency_p50_ms": pct(latencies, 50, 1),
        "latency_p99_ms": pct(latencies, 99, 1),
        "server_rss_mib": rss_mib(server.pid),
        "workers_rss_mib": round(sum(r for r in worker_rss if r), 1) if workers else None,
        "workers_rss_each_mib": worker_rss,
        "db_size_mib": round(int(size) / 2**20, 1),
        **await backlog(conn, live_id, dead_id),
        "hook_applied_n": len(hooks),
        "hook_applied_p50_s": pct(hooks, 50),
        "hook_applied_p99_s": pct(hooks, 99),
        "live_delivered_n": len(arrived),
        "live_delivered_p50_s": pct(live, 50),
        "live_delivered_p99_s": pct(live, 99),
        "flows_per_s": round(sum(flows.values()) / seconds, 2),
        "problems": problems.take_period(),
        "cpu_pct": {
            "server": cpu.percent(server.pid),
            "workers": [cpu.percent(w.pid) for w in workers],
            "soak": cpu.percent(os.getpid()),
        },
        "loadavg1": loadavg1(),
    }


async def drain_backlog(
    conn: asyncpg.Connection,
    live_id: str,
    dead_id: str,
    seconds: float,
    stop: asyncio.Event,
    arrivals: Arrivals,
) -> dict[str, Any]:
    """Waits (up to `seconds`) for the outbox, the inbox and the live deliveries to empty."""
    started = time.monotonic()
    while True:
        left = await backlog(conn, live_id, dead_id)
        arrivals.read_new()
        busy = left["outbox_pending"] + left["inbox_pending"] + left["deliveries_pending_live"]
        waited = round(time.monotonic() - started, 1)
        if not busy:
            return {"drained": True, "seconds": waited, **left}
        if waited >= seconds or (stop.is_set() and seconds > 0 and waited >= 5):
            return {"drained": False, "seconds": waited, **left}
        await asyncio.sleep(0.5)


async def final_checks(
    conn: asyncpg.Connection,
    clients: Clients,
    arrivals: Arrivals,
    live_id: str,
    dead_id: str,
    problems: Problems,
    notes: list[str],
) -> dict[str, Any]:
    """Money invariants, what the flows asked for, and the live endpoint's deliveries, from the rows."""
    payments = await conn.fetch(
        """
        SELECT p.id, p.amount, p.payment_session_id, p.payment_collection_id, p.canceled_at,
               coalesce((SELECT sum(amount) FROM capture c
                         WHERE c.payment_id = p.id AND c.deleted_at IS NULL), 0) AS captured,
               coalesce((SELECT sum(amount) FROM refund r
                         WHERE r.payment_id = p.id AND r.deleted_at IS NULL), 0) AS refunded
        FROM payment p WHERE p.deleted_at IS NULL
        """
    )
    by_id = {row["id"]: row for row in payments}
    for row in payments:
        if row["captured"] > row["amount"]:
            problems.add("money", f"payment {row['id']}: captured {row['captured']} > amount {row['amount']}")
        if row["refunded"] > row["captured"]:
            problems.add(
                "money", f"payment {row['id']}: refunded {row['refunded']} > captured {row['captured']}"
            )
    per_session = Counter(row["payment_session_id"] for row in payments if row["canceled_at"] is None)
    for session_id, n in per_session.items():
        if n > 1:
            problems.add("money", f"session {session_id}: {n} live payments")
    over = await conn.fetch(
        """
        SELECT pc.id, pc.amount, sum(p.amount) AS paid FROM payment_collection pc
        JOIN payment p ON p.payment_collection_id = pc.id AND p.deleted_at IS NULL AND p.canceled_at IS NULL
        GROUP BY pc.id, pc.amount HAVING sum(p.amount) > pc.amount
        """
    )
    for row in over:
        problems.add("money", f"collection {row['id']}: live payments {row['paid']} > amount {row['amount']}")

    for payment_id, expected in clients.expected.items():
        row = by_id.get(payment_id)
        if row is None:
            problems.add("expectation", f"{expected.kind}: payment {payment_id} is not in the database")
        elif (row["amount"], row["captured"], row["refunded"]) != (
            expected.amount,
            expected.captured,
            expected.refunded,
        ):
            problems.add(
                "expectation",
                f"{expected.kind}: payment {payment_id} is amount/captured/refunded "
                f"{row['amount']}/{row['captured']}/{row['refunded']}, the flow asked for "
                f"{expected.amount}/{expected.captured}/{expected.refunded}",
            )

    # Webhook-driven checkouts: once the `captured` event is processed, the whole amount is captured.
    events = {
        row["event_id"]: row["status"]
        for row in await conn.fetch(
            "SELECT event_id, status FROM webhook_event WHERE event_id = ANY($1::text[])",
            [w.event_id for w in clients.webhook_checkouts],
        )
    }
    by_session = {row["payment_session_id"]: row for row in payments if row["canceled_at"] is None}
    webhook_states: Counter[str] = Counter()
    for checkout in clients.webhook_checkouts:
        status = events.get(checkout.event_id, "missing")
        done = by_session.get(checkout.session_id)
        if status == "missing" and done is not None and done["captured"] == checkout.amount:
            # processed, then pruned after the retention (`--retention-minutes`): its work is there
            status = "pruned"
        webhook_states[status] += 1
        if status != "processed":
            continue
        row = by_session.get(checkout.session_id)
        if row is None or row["captured"] != checkout.amount:
            booked = "no payment" if row is None else f"captured {row['captured']}"
            problems.add(
                "expectation",
                f"captured webhook {checkout.event_id} processed, but session {checkout.session_id} has "
                f"{booked} of {checkout.amount}",
            )
    if webhook_states.get("missing"):
        problems.add(
            "expectation", f"{webhook_states['missing']} acknowledged captured webhooks are not stored"
        )

    inbox = {
        row["status"]: int(row["n"])
        for row in await conn.fetch("SELECT status, count(*) AS n FROM webhook_event GROUP BY status")
    }
    if inbox.get("failed"):
        failed = await conn.fetch(
            "SELECT id, action, last_error FROM webhook_event WHERE status = 'failed' "
            "ORDER BY created_at LIMIT 5"
        )
        for row in failed:
            problems.add("inbox_failed", f"{row['id']} ({row['action']}): {row['last_error']}", n=0)
        problems.counts["inbox_failed"] += inbox["failed"]
    outbox = {
        row["status"]: int(row["n"])
        for row in await conn.fetch("SELECT status, count(*) AS n FROM event_outbox GROUP BY status")
    }
    if outbox.get("failed"):
        problems.add("outbox_failed", f"{outbox['failed']} outbox events failed")

    # The live endpoint: every dispatched event whose delivery says delivered arrived, and once.
    since = await conn.fetchval("SELECT created_at FROM webhook_endpoint WHERE id = $1", live_id)
    dispatched = await conn.fetch(
        """
        SELECT o.id, d.status AS delivery FROM event_outbox o
        LEFT JOIN webhook_delivery d ON d.event_id = o.id AND d.endpoint_id = $1
        WHERE o.status = 'dispatched' AND o.created_at >= $2
        """,
        live_id,
        since,
    )
    states: Counter[str] = Counter()
    arrived_not_recorded = 0
    for row in dispatched:
        delivery = row["delivery"] or "none"
        states[delivery] += 1
        got = arrivals.count.get(row["id"], 0)
        if delivery == "none":
            problems.add(
                "delivery_missing", f"event {row['id']} dispatched, no delivery to the live endpoint"
            )
        elif delivery == "delivered" and got == 0:
            problems.add("delivery_missing", f"event {row['id']}: delivery delivered, never arrived")
        elif delivery == "failed":
            problems.add("delivery_failed", f"event {row['id']}: live delivery failed")
        elif delivery == "pending" and got:
            arrived_not_recorded += 1
    duplicates = {event_id: n for event_id, n in arrivals.count.items() if n > 1}
    for event_id, n in sorted(duplicates.items()):
        problems.add("delivery_duplicate", f"event {event_id} arrived {n} times")
    known = {
        row["id"]
        for row in await conn.fetch(
            "SELECT id FROM event_outbox WHERE id = ANY($1::text[])", list(arrivals.count)
        )
    }
    unknown = len(set(arrivals.count) - known)
    if unknown:
        notes.append(f"{unknown} event ids arrived at the live endpoint that the outbox no longer has")
    if arrived_not_recorded:
        notes.append(
            f"{arrived_not_recorded} live deliveries arrived but are still pending (the worker stopped "
            "before recording them; they would be sent again)"
        )
    dead = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(attempts), 0) AS attempts FROM webhook_delivery "
        "WHERE endpoint_id = $1",
        dead_id,
    )
    return {
        "payments": len(payments),
        "payments_checked_against_flows": len(clients.expected),
        "webhook_checkouts": dict(webhook_states),
        "inbox": inbox,
        "outbox": outbox,
        "live_deliveries_of_dispatched_events": dict(states),
        "live_arrivals": sum(arrivals.count.values()),
        "live_distinct_events": len(arrivals.count),
        "live_duplicates": len(duplicates),
        "dead_deliveries": int(dead["n"]),
        "dead_attempts": int(dead["attempts"]),
    }


def scan_logs(workdir: Path) -> dict[str, dict[str, Any]]:
    """Tracebacks in the server's and workers' logs: how many, and their last lines (noted, not judged)."""
    found: dict[str, dict[str, Any]] = {}
    for log in sorted(workdir.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()
        errors: Counter[str] = Counter()
        for n, line in enumerate(lines):
            if line.startswith("Traceback"):
                end = next(
                    (
                        k
                        for k in range(n + 1, len(lines))
                        if lines[k] and not lines[k].startswith((" ", "\t"))
                    ),
                    None,
                )
                errors[lines[end][:200] if end is not None else "?"] += 1
        if errors:
            found[log.name] = {"tracebacks": sum(errors.values()), "last_lines": dict(errors.most_common(3))}
    return found


def report(result: SoakResult, options: SoakOptions, out: Callable[[str], None] = print) -> None:
    summary = result.summary
    out("")
    if options.interval != 60:
        out(f"(rows every {options.interval:g} s; `min` is the row's number)")
    out(markdown_table(result.rows))
    out("")
    if not summary:
        out(f"[soak] no summary (the run stopped early); rows in {result.results_file}")
        return
    flows = summary["flows_by_kind"]
    out(
        f"flows {summary['flows']} ({', '.join(f'{k} {v}' for k, v in sorted(flows.items()))}); "
        f"requests {summary['requests']}; statuses {summary['statuses']}; "
        f"409s retried {summary['conflicts_retried']}"
    )
    out(f"drain: {summary['drain']}")
    out(f"checks: {json.dumps(summary['checks'], default=str)}")
    for note in summary["notes"]:
        out(f"note: {note}")
    if summary["problems"]:
        out(f"PROBLEMS: {summary['problems']}")
        for kind, examples in summary["problem_examples"].items():
            for example in examples:
                out(f"  {kind}: {example}")
    else:
        out("no problems: no 5xx, replays identical, money invariants hold, live deliveries exactly once")
    if result.interrupted:
        out("interrupted: the load ended early")
    out(f"results: {result.results_file}")


def parse_args(argv: Sequence[str] | None = None) -> tuple[SoakOptions, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak",
        description="A soak of paymod serve/worker on PostgreSQL: a realistic mix, a row per minute.",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, default=None, help="how long the load runs (default 1)")
    length.add_argument("--seconds", type=float, default=None, help="how long the load runs, in seconds")
    parser.add_argument("--clients", type=int, default=7, help="concurrent clients (default 7)")
    parser.add_argument(
        "--workers", type=int, default=0, help="separate `paymod worker` processes (serve gets --no-worker)"
    )
    parser.add_argument("--dead", choices=("refused", "hang"), default="refused", help="the dead endpoint")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_SERVER,
        help=f"the PostgreSQL server the fresh database is created on (default {DEFAULT_SERVER})",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database and the logs")
    parser.add_argument("--quiet", action="store_true", help="only the final table and summary")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per row (default 60)")
    parser.add_argument(
        "--drain", type=float, default=30.0, help="seconds to wait for the backlogs at the end"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where soak-<time>.jsonl goes")
    parser.add_argument("--src", type=Path, default=None, help="run paymod from this source tree (see above)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the clients' choices")
    parser.add_argument("--poll-interval", type=float, default=0.2, help="[worker] poll_interval")
    parser.add_argument("--batch", type=int, default=20, help="[worker] batch")
    parser.add_argument(
        "--retention-minutes",
        type=float,
        default=None,
        help="[worker] retention (and pruning every minute), to see table sizes bounded in a short run",
    )
    parser.add_argument(
        "--disable-after-minutes",
        type=float,
        default=None,
        help="[worker] endpoint_disable_after: the dead endpoint is disabled after failing this long",
    )
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else 60.0 * (args.minutes if args.minutes else 1.0)
    if seconds <= 0 or args.clients < 1 or args.workers < 0 or args.interval <= 0:
        parser.error("--minutes/--seconds, --clients and --interval must be positive, --workers not negative")
    if args.src is not None and not (args.src / "paymod").is_dir():
        parser.error(f"--src {args.src}: no paymod package there")
    options = SoakOptions(
        seconds=seconds,
        clients=args.clients,
        workers=args.workers,
        dead=args.dead,
        database_url=args.database_url,
        keep=args.keep,
        quiet=args.quiet,
        interval=args.interval,
        drain=args.drain,
        results_dir=args.results_dir,
        src=args.src.resolve() if args.src else None,
        seed=args.seed,
        poll_interval=args.poll_interval,
        batch=args.batch,
        retention_minutes=args.retention_minutes,
        disable_after_minutes=args.disable_after_minutes,
    )
    return options, args


def main(argv: Sequence[str] | None = None) -> int:
    options, _ = parse_args(argv)

    def out(text: str) -> None:
        print(text, flush=True)

    try:
        result = asyncio.run(run_soak(options, out))
    except (RuntimeError, OSError, asyncpg.PostgresError) as exc:
        print(f"[soak] could not run: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("[soak] aborted (cleaned up)", file=sys.stderr)
        return 130
    report(result, options, out)
    if result.summary.get("problems"):
        return 1
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
