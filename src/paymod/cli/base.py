"""What every command shares: the root `app`, common options, settings, and running work against the
module or the API keys (`on_module`, `on_api_keys`), with errors turned into one line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
import typer.core

from paymod import __version__
from paymod.cli.output import escape, fail

if TYPE_CHECKING:
    from paymod.config import Settings
    from paymod.services.access import ApiKeyStore
    from paymod.services.payment_module import PaymentModule

T = TypeVar("T")

app = typer.Typer(help="paymod: a payment module for Python commerce backends.", no_args_is_help=True)

# Help texts avoid square brackets: typer renders them as rich markup, and `[worker]` would vanish.
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="default: $PAYMOD_DATABASE_URL, the config file's database_url, or sqlite:///./paymod.db",
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="JSON output (exact amounts)")]


class PlainUsage(typer.core.TyperCommand):
    """Usage lines as `paymod payments show [OPTIONS] PAYMENT_ID`, without typer's braces around
    required arguments (`{PAYMENT_ID}` reads like a template placeholder)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [
            piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece
            for piece in super().collect_usage_pieces(ctx)
        ]


def group(help: str) -> typer.Typer:
    """A group of commands (`paymod payments ...`)."""
    return typer.Typer(help=help, no_args_is_help=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"paymod {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print paymod's version and exit"),
    ] = False,
) -> None:
    """paymod: a payment module for Python commerce backends."""


def read_settings(database_url: str | None) -> Settings:
    """The settings every command reads (environment, config file), `--database-url` winning;
    a configuration error ends the command with status 2."""
    from paymod.config import ConfigError, load_settings

    try:
        return load_settings(**({"database_url": database_url} if database_url else {}))
    except ConfigError as exc:
        fail(f"[red]configuration error:[/red] {escape(str(exc))}", 2)


def _schema_is_behind(exc: BaseException) -> bool:
    """A statement failed because a table or column is missing: migrations were not applied."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    text = str(exc.orig)
    return sqlstate in ("42P01", "42703") or any(
        words in text for words in ("no such table", "no such column", "has no column named")
    )


def run(work: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine; a paymod error or a set-up problem becomes one line and exit status 1."""
    from paymod.bootstrap import SetupError
    from paymod.domain.errors import PaymodError

    try:
        return asyncio.run(work)
    except SetupError as exc:
        fail(f"[red]error:[/red] {escape(str(exc))}")
    except PaymodError as exc:
        fail(f"[red]{exc.type}:[/red] {escape(exc.message)}")
    except Exception as exc:
        if _schema_is_behind(exc):
            fail("[red]error:[/red] the database schema is older than this paymod: run `paymod migrate`")
        raise


def on_module(config: Settings, work: Callable[[PaymentModule], Awaitable[T]], *, kind: str = "cli") -> T:
    """`work` done with the operator's module (`paymod.bootstrap.operator_module`), closed after."""
    from paymod.bootstrap import operator_module

    async def with_module() -> T:
        async with operator_module(config, kind) as module:
            return await work(module)

    return run(with_module())


def on_api_keys(config: Settings, work: Callable[[ApiKeyStore], Awaitable[T]]) -> T:
    """`work` done with the API keys of the settings' migrated database (no module needed)."""
    from paymod.bootstrap import database
    from paymod.services.access import api_key_store

    async def with_api_keys() -> T:
        async with database(config) as opened:
            return await work(api_key_store(opened))

    return run(with_api_keys())


def shown(database_url: str) -> str:
    """The database URL without its password, for printing."""
    from paymod.bootstrap import shown_url

    return shown_url(database_url)


__all__ = [
    "DatabaseUrl",
    "JsonOutput",
    "PlainUsage",
    "app",
    "group",
    "on_api_keys",
    "on_module",
    "read_settings",
    "run",
    "shown",
]
