"""`paymod migrate` and `paymod init`: the database's schema, and a local settings file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from paymod.cli.base import DatabaseUrl, read_settings, run, shown
from paymod.cli.output import escape, fail, say


def migrate(database_url: DatabaseUrl = None) -> None:
    """Apply the database migrations (creates the SQLite file if needed)."""
    from paymod import bootstrap

    config = read_settings(database_url)
    run(bootstrap.migrate(config))
    say(f"migrated {escape(shown(config.database_url))}", soft_wrap=True)


def init(
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            exists=True,
            dir_okay=False,
            help="a settings file to start from, e.g. examples/paymod.toml",
        ),
    ] = None,
    path: Annotated[Path, typer.Option("--path", help="the file to write")] = Path("paymod.toml"),
) -> None:
    """Write ./paymod.toml with local API keys, read by every `paymod` command run from this directory.

    The keys stay in the file, so they survive restarts. `./dev run` does this once.
    """
    from paymod.config import ConfigError, write_local_config

    try:
        keys = write_local_config(path, source)
    except ConfigError as exc:
        fail(f"[red]error:[/red] {escape(str(exc))}")
    typer.echo(f"wrote {path}: local API keys{f' and the settings of {source}' if source else ''}")
    typer.echo(f"  admin key (Authorization: Bearer):   {keys.admin}")
    typer.echo(f"  store key (x-publishable-api-key):   {keys.publishable}")
