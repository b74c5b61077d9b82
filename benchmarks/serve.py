"""`paymod serve`, with SQL counted on the server side: `python -m benchmarks.serve [serve options]`.

It is the real command (`paymod.cli`'s `serve`, same app, same settings from `PAYMOD_*`); the only
addition is `benchmarks.counting`'s SQLAlchemy listeners, whose counts go to the file named by
`$PAYMOD_BENCH_COUNTERS` (and each statement to `$PAYMOD_BENCH_SQL_LOG` when set).
"""

from __future__ import annotations

import os
import sys

from benchmarks.counting import ENV, SQL_LOG_ENV, SqlCounter


def serve_flags() -> list[str]:
    """`--no-worker` when this paymod's `serve` has it (an in-process worker would compete for CPU)."""
    import typer.main

    from paymod.cli import app

    command = typer.main.get_command(app)
    serve = command.commands["serve"]  # type: ignore[attr-defined]
    options = {opt for param in serve.params for opt in (*param.opts, *getattr(param, "secondary_opts", []))}
    return ["--no-worker"] if "--no-worker" in options else []


def main(argv: list[str] | None = None) -> None:
    shared = os.environ.get(ENV)
    if shared:
        SqlCounter(shared, os.environ.get(SQL_LOG_ENV) or None).install()
    from paymod.cli import app

    app(["serve", *(sys.argv[1:] if argv is None else argv)], prog_name="paymod")


if __name__ == "__main__":
    main()
