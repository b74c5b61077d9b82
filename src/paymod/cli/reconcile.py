"""`paymod reconcile`: money flows left in an unknown state, asked about and finished."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from paymod.cli.base import DatabaseUrl, on_module, read_settings

if TYPE_CHECKING:
    from paymod.services.payment_module import PaymentModule
    from paymod.workflows.reconciler import Reconciled


def reconcile(
    older_than: Annotated[float, typer.Option(help="only flows idle for at least this many seconds")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Finish capture/refund/cancel flows left in an unknown state (the worker does it too)."""
    import dataclasses
    import json
    from datetime import timedelta

    from paymod.workflows.reconciler import reconcile as reconcile_runs

    settings = read_settings(database_url)

    async def work(module: PaymentModule) -> list[Reconciled]:
        return await reconcile_runs(module, older_than=timedelta(seconds=older_than))

    report = on_module(settings, work)
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(entry) for entry in report]))
        return
    if not report:
        typer.echo("nothing to reconcile")
    for entry in report:
        typer.echo(f"{entry.run_id}  {entry.name:<16} {entry.outcome:<12} {entry.detail}")
