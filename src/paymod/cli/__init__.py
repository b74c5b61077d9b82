"""The `paymod` command: migrate, serve, worker, API keys, webhooks, and an operator's view of payments.

Every command reads the same settings as the server (`PAYMOD_DATABASE_URL`, `PAYMOD_CONFIG` or
./paymod.toml, ...) and gets its parts from `paymod.bootstrap`. One module per topic: `migrate`
(migrate, init), `serve` (serve, worker), `demo`, `reconcile`, `api_keys`, `payments`, `providers`,
`webhooks` (the inbox) and `endpoints` (webhook endpoints); `base` and `output` hold what they share.

Start-up time matters for a command typed by hand: these modules import only typer and the standard
library; each command imports what it needs (SQLAlchemy and the module for database commands,
uvicorn and FastAPI for `serve`, rich when it prints a table).
"""

from __future__ import annotations

from paymod.cli import (
    api_keys,
    demo,
    endpoints,
    migrate,
    payments,
    providers,
    reconcile,
    serve,
    webhooks,
)
from paymod.cli.base import PlainUsage, app

# `paymod --help` lists the commands in this order.
app.command(cls=PlainUsage)(migrate.migrate)
app.command(cls=PlainUsage)(migrate.init)
app.command(cls=PlainUsage)(serve.serve)
app.command("worker", cls=PlainUsage)(serve.run_worker)
app.command(cls=PlainUsage)(demo.demo)
app.command(cls=PlainUsage)(reconcile.reconcile)
app.add_typer(api_keys.api_keys_app, name="api-keys")
app.add_typer(payments.payments_app, name="payments")
app.add_typer(providers.providers_app, name="providers")
app.add_typer(webhooks.webhooks_app, name="webhooks")
app.add_typer(endpoints.endpoints_app, name="webhook-endpoints")


def main() -> None:
    # The same name in usage lines whether started as `paymod` or `python -m paymod.cli`.
    app(prog_name="paymod")


__all__ = ["app", "main"]
