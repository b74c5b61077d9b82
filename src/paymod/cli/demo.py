"""`paymod demo`: a whole payment flow through the HTTP API."""

from __future__ import annotations

import typer

from paymod.cli.base import DatabaseUrl, read_settings, run


def demo(database_url: DatabaseUrl = None) -> None:
    """Run a whole payment flow through the HTTP API, against a server started on a free loopback port."""
    from paymod.demo import run_demo

    run(run_demo(read_settings(database_url), typer.echo))
