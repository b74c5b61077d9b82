"""`paymod reconcile`: money flows left in an unknown state, asked about and finished; with
`--provider-sync`, sessions whose provider never reported, asked about and settled (the janitor)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from paymod.cli.base import DatabaseUrl, on_module, read_settings

if TYPE_CHECKING:
    from paymod.services.payment_module import PaymentModule


def reconcile(
    older_than: Annotated[float, typer.Option(help="only flows idle for at least this many seconds")] = 60.0,
    provider_sync: Annotated[
        bool,
        typer.Option(
            "--provider-sync",
            help="also ask providers about sessions left pending longer than [worker] session_sync_after",
        ),
    ] = False,
    sync_after: Annotated[
        float | None,
        typer.Option(help="with --provider-sync: sessions older than this many seconds (default: settings)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Finish capture/refund/cancel flows left in an unknown state (the worker does it too)."""
    import dataclasses
    import json
    from datetime import timedelta

    from paymod.webhooks.provider_sync import sync_sessions
    from paymod.workflows.reconciler import reconcile as reconcile_runs

    settings = read_settings(database_url)
    after = timedelta(
        seconds=settings.worker.session_sync_after if sync_after is None else max(sync_after, 0.0)
    )

    async def work(module: PaymentModule) -> dict[str, list[Any]]:
        report: dict[str, list[Any]] = {
            "runs": await reconcile_runs(module, older_than=timedelta(seconds=older_than))
        }
        if provider_sync:
            report["sessions"] = await sync_sessions(
                module,
                after=after,
                max_age=timedelta(seconds=settings.worker.session_sync_max_age),
                limit=1000,
            )
        return report

    report = on_module(settings, work)
    runs, sessions = report["runs"], report.get("sessions")
    if as_json:
        documents = [dataclasses.asdict(entry) for entry in runs]
        if sessions is None:
            typer.echo(json.dumps(documents))
        else:
            synced = [{**dataclasses.asdict(entry), "changed": entry.changed} for entry in sessions]
            typer.echo(json.dumps({"runs": documents, "sessions": synced}))
        return
    if not runs:
        typer.echo("nothing to reconcile")
    for entry in runs:
        typer.echo(f"{entry.run_id}  {entry.name:<16} {entry.outcome:<12} {entry.detail}")
    if sessions is None:
        return
    changed = sum(entry.changed for entry in sessions)
    typer.echo(f"provider sync: {len(sessions)} session(s) checked, {changed} changed")
    for entry in sessions:
        change = f"{entry.before} -> {entry.after}" if entry.changed else f"{entry.before} (unchanged)"
        said = entry.provider_status or "?"
        line = f"{entry.session_id}  {entry.provider_id:<24} provider: {said:<22} {change}"
        typer.echo(f"{line}  {entry.detail}".rstrip())
