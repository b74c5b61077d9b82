"""Instructions per flow of the process that runs the module, counted by valgrind's callgrind.

    python -m benchmarks.instructions [--database postgresql|sqlite] [--flows 10,60]

Flows/s and CPU time move with the machine: on a shared virtual machine the same code measured an
hour apart can differ by a factor of two. Instructions do not: callgrind counts the instructions the
process executes, whatever else the machine is doing, so two versions of paymod can be compared
on any machine, at any time.

The flow (collection, session, authorize, capture 5000, refund 2000, through `PaymentModule`) runs
in a child process under `valgrind --tool=callgrind`, twice on a fresh database: with the smaller
and with the larger number of `--flows`, after the same warm-up. The difference of the two counts
divided by the difference of flows is one flow's instructions, start-up and warm-up cancelled out.
Only this process is counted (PostgreSQL's backends are not). Needs valgrind; takes a few minutes
(valgrind runs Python about 50 times slower). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import drop_postgres, fresh_postgres, fresh_sqlite, now_iso, source_state

WARMUP = 5
_SESSION = {"provider_id": "pp_system_default", "amount": 5000, "currency_code": "usd", "data": {}}


async def _flows(url: str, n: int) -> None:
    from paymod import PaymentModule

    async with await PaymentModule.connect(url, migrate=False) as module:
        for _ in range(WARMUP + n):
            collection = await module.create_payment_collections({"currency_code": "usd", "amount": 5000})
            session = await module.create_payment_session(collection.id, _SESSION)
            payment = await module.authorize_payment_session(session.id, {})
            assert payment is not None, "the system provider authorizes at once"
            await module.capture_payment({"payment_id": payment.id, "amount": 5000})
            await module.refund_payment({"payment_id": payment.id, "amount": 2000})


async def _migrated(url: str) -> None:
    from paymod import PaymentModule

    async with await PaymentModule.connect(url, migrate=True):
        pass


def _instructions(url: str, n: int, workdir: Path) -> int:
    """The instructions callgrind counts for the child process running `n` flows (after the warm-up)."""
    out = workdir / f"callgrind.{n}.out"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "benchmarks.instructions",
            "--child",
            url,
            str(n),
        ],
        check=True,
        capture_output=True,
    )
    found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no instruction count in {out}")
    return int(found.group(1))


def measure(database: str, small: int, large: int) -> dict[str, Any]:
    name = f"paymod_bench_instructions_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="paymod-instructions-") as tmp:
        workdir = Path(tmp)
        counts = {}
        for n in (small, large):
            url = (
                asyncio.run(fresh_postgres(name)) if database == "postgresql" else fresh_sqlite(workdir, name)
            )
            try:
                asyncio.run(_migrated(url))
                counts[n] = _instructions(url, n, workdir)
            finally:
                if database == "postgresql":
                    asyncio.run(drop_postgres(name))
    return {
        "bench": "instructions",
        "at": now_iso(),
        "database": database,
        "flows": [small, large],
        "instructions": {str(n): count for n, count in counts.items()},
        "instructions_per_flow": round((counts[large] - counts[small]) / (large - small)),
        "source": source_state(),
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        asyncio.run(_flows(sys.argv[2], int(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--flows", default="10,60", help="the two numbers of flows (default 10,60)")
    args = parser.parse_args()
    small, large = sorted(int(n) for n in args.flows.split(","))
    if small == large:
        parser.error("--flows needs two different numbers")
    print(json.dumps(measure(args.database, small, large)))


if __name__ == "__main__":
    main()
