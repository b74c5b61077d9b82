"""Target (d): the flow through Medusa's own Payment Module, in Node (the harness in benchmarks/medusa/).

`@medusajs/payment` and what it needs are pinned in benchmarks/medusa/package.json and
package-lock.json and installed there with `npm ci` on first use (from npm's registry, about a
minute). Each run migrates the fresh database with the module's own migrations (`migrate.mjs`), then
`bench.mjs` runs the flow and prints one JSON line with the fields of paymod's lines.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

HARNESS = Path(__file__).resolve().parent / "medusa"
MIN_NODE = (20, 19)  # what @medusajs/framework 2.21 declares (^20.19 or >= 22.12)


class HarnessError(RuntimeError):
    """The Medusa harness cannot run here; the message says what is missing and what to do."""


def _say(text: str) -> None:
    print(f"[medusa] {text}", file=sys.stderr, flush=True)


def pinned() -> dict[str, str]:
    """The npm packages benchmarks/medusa/package.json pins: name -> version."""
    manifest = json.loads((HARNESS / "package.json").read_text())
    dependencies: dict[str, str] = manifest["dependencies"]
    return dependencies


def installed() -> bool:
    """Whether node_modules holds what the lockfile asks for (npm records what it installed)."""
    record = HARNESS / "node_modules" / ".package-lock.json"
    lock = HARNESS / "package-lock.json"
    if not record.exists() or (lock.exists() and lock.stat().st_mtime > record.stat().st_mtime):
        return False
    for name, version in pinned().items():
        manifest = HARNESS / "node_modules" / name / "package.json"
        if not manifest.exists() or json.loads(manifest.read_text()).get("version") != version:
            return False
    return True


def node_version() -> str:
    """`node --version`, after checking that Node is recent enough for the pinned packages."""
    node = shutil.which("node")
    if node is None:
        raise HarnessError(
            "Node.js is not on PATH: Medusa's module runs in Node "
            f"(version {MIN_NODE[0]}.{MIN_NODE[1]} or newer, with npm)"
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    found = re.match(r"v(\d+)\.(\d+)", version)
    if found is None or (int(found[1]), int(found[2])) < MIN_NODE:
        raise HarnessError(
            f"Node {version or '?'} is too old for @medusajs/framework: "
            f"it needs {MIN_NODE[0]}.{MIN_NODE[1]} or newer"
        )
    return version


def _registry(npm: str) -> str:
    done = subprocess.run(
        [npm, "config", "get", "registry"], cwd=HARNESS, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "https://registry.npmjs.org/"


def ensure_installed(reinstall: bool = False, say: Callable[[str], None] = _say) -> None:
    """Installs the pinned packages into benchmarks/medusa/node_modules unless they are there.

    Raises `HarnessError` when Node or npm is missing or npm's registry cannot be reached, rather
    than leaving npm to retry for minutes.
    """
    node_version()
    if not reinstall and installed():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise HarnessError("npm is not on PATH: it installs Medusa's packages into benchmarks/medusa/")
    registry = _registry(npm)
    try:
        httpx.get(registry.rstrip("/") + "/-/ping", timeout=15, follow_redirects=True).raise_for_status()
    except httpx.HTTPError as exc:
        raise HarnessError(
            f"cannot reach npm's registry at {registry} ({type(exc).__name__}: {exc}). Medusa's packages "
            f"({', '.join(f'{k}@{v}' for k, v in pinned().items())}) are installed from it on first use; "
            "connect to it, point npm at a mirror (`npm config set registry URL`), or run "
            "`npm ci` in benchmarks/medusa yourself"
        ) from exc
    command = [
        npm,
        "ci" if (HARNESS / "package-lock.json").exists() else "install",
        "--no-audit",
        "--no-fund",
    ]
    say(f"installing Medusa's packages: {' '.join(command[1:])} (in {HARNESS}, about a minute)")
    # npm's progress goes to our stderr: stdout carries the bench's JSON lines only.
    done = subprocess.run(command, cwd=HARNESS, stdout=sys.stderr, check=False)
    if done.returncode != 0 or not installed():
        raise HarnessError(f"`{' '.join(command)}` in {HARNESS} failed (exit status {done.returncode})")


def node_url(url: str) -> str:
    """A SQLAlchemy URL (`postgresql+asyncpg://`) as node-postgres takes it."""
    return re.sub(r"^postgres(?:ql)?(\+\w+)?://", "postgresql://", url)


async def _node(script: str, env: dict[str, str], capture: bool) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "node",
        script,
        cwd=HARNESS,
        env=env,
        # The migration's progress goes to stderr, like everything but the bench's JSON line.
        stdout=asyncio.subprocess.PIPE if capture else sys.stderr,
    )
    stdout, _ = await process.communicate()
    return process.returncode or 0, (stdout or b"").decode()


async def run_medusa(
    url: str,
    *,
    n: int,
    warmup: int,
    conc_n: int,
    conc_warmup: int,
    concurrency: int,
    phases: tuple[str, ...],
    announce: Any,
) -> dict[str, Any]:
    """Migrates the (fresh) database with the module's migrations, then runs bench.mjs on it."""
    ensure_installed(say=announce)
    env = {
        **os.environ,
        "DATABASE_URL": node_url(url),
        "N": str(n),
        "WARMUP": str(warmup),
        "CONC_N": str(conc_n),
        "CONC_WARMUP": str(conc_warmup),
        "CONCURRENCY": str(concurrency),
        "PHASES": ",".join(phases),
    }
    status, _ = await _node("migrate.mjs", env, capture=False)
    if status != 0:
        raise HarnessError(f"node migrate.mjs failed (exit status {status})")
    status, output = await _node("bench.mjs", env, capture=True)
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if not lines or status not in (0, 2):  # 2: the flow's check failed, and the line says so
        raise HarnessError(f"node bench.mjs failed (exit status {status})")
    result: dict[str, Any] = json.loads(lines[-1])
    return result
