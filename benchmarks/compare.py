"""Medusa's own Payment Module and paymod, back to back: medians, ratios, a chart, docs/performance.md.

    python -m benchmarks.compare                 # N=500, 3 runs of everything, rewrites the docs
    python -m benchmarks.compare --n 200 --runs 3
    python -m benchmarks.compare --quick         # 10 flows per phase, 1 run: proves it all runs
    python -m benchmarks.compare --target module --database postgresql --n 100 --no-docs
    python -m benchmarks.compare --from benchmarks/results/compare-....jsonl   # only re-render

Medusa's module runs in Node from benchmarks/medusa/ (`@medusajs/payment` and what it needs,
pinned; `npm ci` installs them there on first use). Each run is `python -m benchmarks.flow
--target medusa` (a fresh PostgreSQL database, migrated with the module's own migrations, then
`node bench.mjs`) followed by `python -m benchmarks.flow` for paymod's targets, with the same N,
warm-ups and concurrency. The runs alternate (Medusa, paymod, Medusa, ...) so both see the same
machine load. Raw lines go to benchmarks/results/compare-<date>.jsonl.

Only the part of docs/performance.md between the `results` markers is rewritten; the rest
(how to run it, the analysis) is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import OPS, SNAPSHOT_ENV, machine, snapshot_src, source_state
from benchmarks.flow import ALL, DATABASES
from benchmarks.medusa_target import HarnessError, ensure_installed

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DOC = ROOT / "docs" / "performance.md"
CHART = ROOT / "docs" / "performance.png"
# What the first version of the Medusa harness wrote (Medusa's method names, its own field names);
# `--from` still reads such files.
LEGACY_MEDUSA = "medusa-payment-module-standalone"
BEGIN = "<!-- results:begin (written by python -m benchmarks.compare; edits here are overwritten) -->"
END = "<!-- results:end -->"
MEDUSA_OPS = dict(
    zip(
        (
            "createPaymentCollections",
            "createPaymentSession",
            "authorizePaymentSession",
            "capturePayment",
            "refundPayment",
        ),
        OPS,
        strict=True,
    )
)
# Rows of the tables and bars of the chart, in order: key -> label.
ROWS = {
    "medusa/postgresql": "Medusa module, PostgreSQL",
    "floor/postgresql": "floor (asyncpg), PostgreSQL",
    "module/postgresql": "paymod module, PostgreSQL",
    "module/sqlite": "paymod module, SQLite",
    "http/postgresql": "paymod HTTP, PostgreSQL",
    "http/sqlite": "paymod HTTP, SQLite",
}


def log(text: str) -> None:
    print(f"[compare] {text}", file=sys.stderr, flush=True)


def sh(command: list[str], cwd: Path) -> str:
    log(f"$ {' '.join(command)}  (in {cwd})")
    done = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with status {done.returncode}")
    return done.stdout


# -- running ----------------------------------------------------------------------------------
def run_flow(targets: list[str], database: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One `python -m benchmarks.flow` run of these targets: its JSON lines."""
    command = [sys.executable, "-m", "benchmarks.flow", "--database", database]
    for target in targets:
        command += ["--target", target]
    command += ["--n", str(args.n), "--warmup", str(args.warmup)]
    command += ["--conc-warmup", str(args.conc_warmup), "--concurrency", str(args.concurrency)]
    output = sh(command, ROOT)
    return [json.loads(x) for x in output.splitlines() if x.startswith("{")]


# -- normalising both benches' output -----------------------------------------------------------
def _phase(raw: dict[str, Any], legacy: bool) -> dict[str, Any]:
    cpu = raw.get("cpu") or {}
    if legacy:
        ops = {MEDUSA_OPS[k]: v["median_ms"] for k, v in raw["ops"].items()}
        load = cpu.get("loadavg1_after")
    else:
        ops = raw["ops_median_ms"]
        load = raw.get("loadavg1_after")
    # The process that runs the payment code: the bench (module, floor), the server, or Node.
    process_cpu = next(
        (
            cpu[f"{name}_cpu_ms_per_flow"]
            for name in ("python", "server", "node")
            if cpu.get(f"{name}_cpu_ms_per_flow")
        ),
        None,
    )
    return {
        "flows_per_s": raw["flows_per_s"],
        "p50": raw["latency_ms"]["p50"],
        "p99": raw["latency_ms"]["p99"],
        "ops": ops,
        "cpu_ms_per_flow": process_cpu,
        "client_cpu_ms_per_flow": cpu.get("client_cpu_ms_per_flow"),
        "pg_cpu_ms_per_flow": cpu.get("pg_backend_cpu_ms_per_flow"),
        "errors": raw.get("errors", 0),
        "load": load,
    }


def normalise(raw: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    legacy = raw.get("bench") == LEGACY_MEDUSA
    if legacy:
        key = "medusa/postgresql"
        per_op = {MEDUSA_OPS[k]: {"statements": v} for k, v in raw["sql_statements_per_op"].items()}
        transactions = 11  # not in those lines; the current harness counts 11 for the same packages
        check_ok = raw.get("final_collection_status") == "completed"
    else:
        key = f"{raw['target']}/{raw['database']}"
        per_op = raw["sql_per_op"]
        transactions = raw["transactions_per_flow"]
        check_ok = raw["check"]["ok"]
    return key, {
        "seq": _phase(raw["sequential"], legacy),
        "conc": _phase(raw["concurrent"], legacy),
        "sql_statements_per_flow": raw["sql_statements_per_flow"],
        "sql_data_statements_per_flow": raw.get("sql_data_statements_per_flow"),
        "transactions_per_flow": transactions,
        "sql_per_op": per_op,
        "peak_rss_mb": raw["peak_rss_mb"],
        "check_ok": check_ok,
    }


def _median(values: list[Any]) -> Any:
    numbers = [v for v in values if isinstance(v, int | float)]
    return round(statistics.median(numbers), 3) if numbers else None


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every number over the runs (each number on its own, as run3.mjs does)."""
    first = runs[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = median_of([r[key] for r in runs])
        elif isinstance(value, bool):
            out[key] = all(r[key] for r in runs)
        else:
            out[key] = _median([r.get(key) for r in runs])
    return out


def summarise(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for raw in lines:
        if "error" in raw or "sequential" not in raw:
            continue
        key, record = normalise(raw)
        grouped.setdefault(key, []).append(record)
    summary = {}
    for key, runs in grouped.items():
        summary[key] = median_of(runs)
        summary[key]["runs"] = len(runs)
        summary[key]["per_run_seq"] = [r["seq"]["flows_per_s"] for r in runs]
        summary[key]["per_run_conc"] = [r["conc"]["flows_per_s"] for r in runs]
    return summary


# -- rendering ----------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value.is_integer() and digits == 0:
        return str(int(value))
    return f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "—"
    return f"{a / b:.2f}x"


def render_chart(summary: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ROWS if k in summary]
    colors = {
        "medusa/postgresql": "#8c8c8c",
        "floor/postgresql": "#2f4b7c",
        "module/postgresql": "#ff7c43",
        "module/sqlite": "#ffa600",
        "http/postgresql": "#d45087",
        "http/sqlite": "#f95d6a",
    }
    phases = [("seq", "one at a time"), ("conc", "16 in flight")]
    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=120)
    width = 0.8 / max(len(keys), 1)
    for i, key in enumerate(keys):
        values = [summary[key][phase]["flows_per_s"] or 0 for phase, _ in phases]
        xs = [p + (i - (len(keys) - 1) / 2) * width for p in range(len(phases))]
        bars = ax.bar(xs, values, width * 0.92, label=ROWS[key], color=colors.get(key))
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(
                f"{value:.0f}" if value >= 10 else f"{value:.1f}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(0, 2),
                textcoords="offset points",
            )
    ax.set_xticks(range(len(phases)), [label for _, label in phases])
    ax.set_ylabel("flows per second (median of runs; higher is better)")
    ax.set_yscale("log")
    top = max((summary[k][p]["flows_per_s"] or 0) for k in keys for p, _ in phases)
    ax.set_ylim(bottom=1, top=max(10.0, top) * 1.6)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, frameon=False)
    ax.grid(axis="y", alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def render_results(summary: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    medusa = summary.get("medusa/postgresql")
    floor = summary.get("floor/postgresql")
    in_flight = meta.get("concurrency", 16)
    lines: list[str] = []
    add = lines.append
    add(f"Measured **{meta['date']}** on {meta['machine']['nproc']} vCPU ({meta['machine']['cpu']}),")
    add(
        f"Python {meta['machine']['python']}, Node {meta.get('node', '?')}, "
        f"PostgreSQL {meta.get('postgres', '?')}; "
        f"N = {meta['n']} flows per phase (warm-ups {meta['warmup']} / {meta['conc_warmup']}), "
        + (f"{meta['runs']} runs of each, **medians**" if meta["runs"] > 1 else "1 run")
        + ". 1-minute load average during the runs: "
        f"{meta['load_min']:.2f}-{meta['load_max']:.2f}."
    )
    versions = []
    if meta.get("medusa_packages"):
        versions.append(
            f"Medusa: `@medusajs/payment` {meta['medusa_packages'].get('@medusajs/payment', '?')}"
        )
    src = meta.get("paymod_src") or {}
    if src.get("commit"):
        changed = src.get("uncommitted_src_files") or 0
        versions.append(
            f"paymod: commit `{src['commit']}`"
            + (f" plus {changed} changed files under src/" if changed else "")
        )
    if versions:
        add("")
        add("; ".join(versions) + ".")
    add("")
    add("### Side by side")
    add("")
    add(
        "| configuration | flows/s, 1 in flight | x Medusa | x floor | p50 / p99 ms "
        f"| flows/s, {in_flight} in flight | x Medusa | x floor | p50 / p99 ms "
        "| SQL per flow (transactions) | peak RSS MB |"
    )
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key, label in ROWS.items():
        row = summary.get(key)
        if row is None:
            continue
        cells = [label]
        for phase in ("seq", "conc"):
            value = row[phase]["flows_per_s"]
            versus_medusa = medusa[phase]["flows_per_s"] if medusa else None
            versus_floor = floor[phase]["flows_per_s"] if floor else None
            paymod_pg = key in ("module/postgresql", "http/postgresql")
            cells += [
                f"**{_fmt(value)}**",
                "1" if key == "medusa/postgresql" else _ratio(value, versus_medusa),
                _ratio(value, versus_floor) if paymod_pg else "—",
                f"{_fmt(row[phase]['p50'])} / {_fmt(row[phase]['p99'])}",
            ]
        txns = row["transactions_per_flow"]
        cells.append(_fmt(row["sql_statements_per_flow"], 0) + (f" ({_fmt(txns, 0)})" if txns else ""))
        cells.append(_fmt(row["peak_rss_mb"]))
        add("| " + " | ".join(cells) + " |")
    add("")
    add(
        "x Medusa: flows/s divided by Medusa's module's (PostgreSQL) in the same phase; x floor: "
        "divided by the asyncpg floor's (PostgreSQL only). SQL per flow counts every statement sent, "
        "BEGIN, COMMIT and ROLLBACK included; transactions are the BEGINs. Peak RSS: the process that "
        "runs the payment code (Node for Medusa, the `paymod serve` process for HTTP, the bench process "
        "for paymod's module and the floor)."
    )
    add("")
    add(f"![flows per second per configuration]({CHART.name})")
    add("")
    add("### Per operation (one at a time): median ms, and SQL statements")
    add("")
    keys = [k for k in ROWS if k in summary]
    add("| operation | " + " | ".join(ROWS[k] for k in keys) + " |")
    add("| --- | " + " | ".join("---:" for _ in keys) + " |")
    for op in OPS:
        cells = []
        for key in keys:
            row = summary[key]
            ms = row["seq"]["ops"].get(op)
            sql = row["sql_per_op"].get(op, {}).get("statements")
            cells.append(f"{_fmt(ms, 2)} ms · {_fmt(sql, 0)} SQL")
        add(f"| {op} | " + " | ".join(cells) + " |")
    add("")
    add(f"### CPU per flow (one at a time / {in_flight} in flight), ms")
    add("")
    add("| configuration | process running the payment code | PostgreSQL backends | HTTP client |")
    add("| --- | ---: | ---: | ---: |")
    for key in keys:
        row = summary[key]
        seq, conc = row["seq"], row["conc"]
        add(
            f"| {ROWS[key]} | {_fmt(seq['cpu_ms_per_flow'])} / {_fmt(conc['cpu_ms_per_flow'])} | "
            f"{_fmt(seq['pg_cpu_ms_per_flow'])} / {_fmt(conc['pg_cpu_ms_per_flow'])} | "
            f"{_fmt(seq['client_cpu_ms_per_flow'])} / {_fmt(conc['client_cpu_ms_per_flow'])} |"
        )
    add("")
    add(f"Per-run flows/s (1 in flight; {in_flight} in flight):")
    add("")
    for key in keys:
        row = summary[key]
        add(
            f"- {ROWS[key]}: {', '.join(_fmt(v, 2) for v in row['per_run_seq'])}; "
            f"{', '.join(_fmt(v, 2) for v in row['per_run_conc'])}"
        )
    add("")
    add(f"Raw lines: `{meta['raw']}`. The command (from the repository root):")
    add("")
    add("```bash")
    add(compare_command(meta))
    add("```")
    return "\n".join(lines)


def compare_command(meta: dict[str, Any]) -> str:
    """The command that measures what `meta` describes (older files do not record every option)."""
    command = (
        f"python -m benchmarks.compare --n {meta['n']} --warmup {meta['warmup']} "
        f"--conc-warmup {meta['conc_warmup']} --concurrency {meta.get('concurrency', 16)} "
        f"--runs {meta['runs']}"
    )
    for target in meta.get("targets") or []:
        if target != "all":
            command += f" --target {target}"
    if meta.get("database", "both") != "both":
        command += f" --database {meta['database']}"
    return command


SKELETON = f"""# Performance

{BEGIN}
{END}
"""


def write_doc(results_md: str, doc: Path = DOC) -> None:
    doc.parent.mkdir(parents=True, exist_ok=True)
    text = doc.read_text() if doc.exists() else SKELETON
    if BEGIN not in text or END not in text:
        text = text.rstrip() + "\n\n" + BEGIN + "\n" + END + "\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n{results_md}\n{END}{tail}")


def _postgres_version() -> str:
    try:
        out = subprocess.run(["psql", "--version"], stdout=subprocess.PIPE, text=True, check=False).stdout
        return out.split()[2] if out else "?"
    except OSError:
        return "?"


def _node_version() -> str:
    try:
        return subprocess.run(
            ["node", "--version"], stdout=subprocess.PIPE, text=True, check=False
        ).stdout.strip()
    except OSError:
        return "?"


def measure(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any], Path]:
    """Alternates Medusa's and paymod's runs; returns the raw lines, their meta line and the file."""
    try:
        ensure_installed(args.reinstall, log)
    except HarnessError as exc:
        raise SystemExit(f"[compare] {exc}") from exc
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    source = source_state()
    if not args.no_snapshot:
        snapshot = Path(tempfile.gettempdir()) / f"paymod-bench-src-{stamp}"
        source = snapshot_src(snapshot)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(snapshot / "src"), str(ROOT), os.environ.get("PYTHONPATH")])
        )
        os.environ[SNAPSHOT_ENV] = str(snapshot / "src")
        log(f"measuring a copy of src/: {source}")
    raw_path = args.results_dir / f"compare-{stamp}.jsonl"
    lines: list[dict[str, Any]] = []
    loads: list[float] = []
    for run in range(1, args.runs + 1):
        for name, targets, database in (
            ("Medusa", ["medusa"], "postgresql"),
            ("paymod", args.targets, args.database),
        ):
            log(f"run {run}/{args.runs}: {name} (load {os.getloadavg()[0]:.2f})")
            loads.append(os.getloadavg()[0])
            lines.extend(run_flow(targets, database, args))
        loads.append(os.getloadavg()[0])
        with raw_path.open("w") as out:
            for line in lines:
                out.write(json.dumps(line) + "\n")
    for line in lines:
        for phase in ("sequential", "concurrent"):
            block = line.get(phase) or {}
            for value in (block.get("loadavg1_before"), block.get("loadavg1_after")):
                if isinstance(value, int | float):
                    loads.append(value)
    try:
        relative = raw_path.relative_to(ROOT)
    except ValueError:
        relative = raw_path
    meta = {
        "bench": "compare-meta",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "node": _node_version(),
        "postgres": _postgres_version(),
        "medusa_packages": next((x["packages"] for x in lines if "packages" in x), None),
        "n": args.n,
        "warmup": args.warmup,
        "conc_warmup": args.conc_warmup,
        "concurrency": args.concurrency,
        "runs": args.runs,
        "targets": args.targets,
        "database": args.database,
        "load_min": min(loads),
        "load_max": max(loads),
        "raw": str(relative),
        "paymod_src": source,
    }
    with raw_path.open("a") as out:
        out.write(json.dumps(meta) + "\n")
    return lines, meta, raw_path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=500, help="flows measured per phase (default 500)")
    parser.add_argument("--warmup", type=int, default=50, help="sequential warm-up flows (default 50)")
    parser.add_argument("--conc-warmup", type=int, default=64, help="concurrent warm-up flows (default 64)")
    parser.add_argument("--concurrency", type=int, default=16, help="flows in flight (default 16)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each side; medians are reported")
    parser.add_argument(
        "--quick", action="store_true", help="10 flows per phase, warm-ups 2 / 4, 1 run: proves it all runs"
    )
    parser.add_argument(
        "--target",
        action="append",
        choices=[*ALL, "all"],
        help="paymod's targets to run against Medusa's (repeatable; default all)",
    )
    parser.add_argument(
        "--database", choices=[*DATABASES, "both"], default="both", help="for paymod's targets"
    )
    parser.add_argument("--reinstall", action="store_true", help="reinstall Medusa's npm packages first")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where the raw lines go")
    parser.add_argument("--from", dest="source", type=Path, help="re-render from a raw results file")
    parser.add_argument("--no-docs", action="store_true", help="print the summary, leave the docs alone")
    parser.add_argument("--doc", type=Path, default=DOC, help="the page whose results part is rewritten")
    parser.add_argument(
        "--no-chart", action="store_true", help="no chart (it needs matplotlib: the bench extra)"
    )
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="measure the live src/ (default: a copy taken at the start: edits during the run do not count)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.warmup, args.conc_warmup, args.runs = 10, 2, 4, 1
    args.targets = args.target or ["all"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.source is not None:
        lines = [json.loads(x) for x in args.source.read_text().splitlines() if x.strip()]
        meta = next(x for x in lines if x.get("bench") == "compare-meta")
        meta.setdefault("medusa_packages", next((x["packages"] for x in lines if "packages" in x), None))
        raw_path = args.source
    else:
        lines, meta, raw_path = measure(args)
    summary = summarise(lines)
    print(json.dumps({"bench": "compare-summary", **summary}, default=str))
    failed = [x for x in lines if "error" in x] + [
        {"configuration": key} for key, row in summary.items() if not row["check_ok"]
    ]
    if args.no_docs:
        return 1 if failed else 0
    if not args.no_chart:
        medusa_version = (meta.get("medusa_packages") or {}).get("@medusajs/payment", "?")
        render_chart(
            summary,
            args.doc.parent / CHART.name,
            f"Payment flow, flows/s (log scale): paymod vs Medusa {medusa_version} vs floor; "
            f"median of {meta['runs']} runs, N={meta['n']}, {meta['date']}",
        )
    write_doc(render_results(summary, meta), args.doc)
    log(f"wrote {args.doc} (raw: {raw_path})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
