"""How commands print: rich tables and lines for people, exact JSON for scripts, one line per error."""

from __future__ import annotations

import functools
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


@functools.cache
def console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output keeps whole ids on one line (rich would wrap at 80 columns).
    return Console(stderr=stderr, width=None if stream.isatty() else 250)


def say(text: str, *, soft_wrap: bool = False) -> None:
    console().print(text, soft_wrap=soft_wrap)


def fail(text: str, code: int = 1) -> NoReturn:
    console(stderr=True).print(text, soft_wrap=True)
    raise typer.Exit(code)


def escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def dumps(document: Any) -> str:
    """JSON with exact amounts (Decimals as number literals)."""
    from paymod.exact_json import dumps

    return dumps(document).decode()


def table(*columns: str) -> Table:
    from rich.table import Table

    return Table(*columns)


def print_table(rows: Table, empty: str) -> None:
    """The table, or one line saying there is nothing (rather than a header over no rows)."""
    if rows.row_count:
        console().print(rows)
    else:
        typer.echo(empty)


def filters(**shown: object) -> str:
    """` (status captured, since ...)` for the filters given, to say what an empty answer is about."""
    given = [f"{name} {value}" for name, value in shown.items() if value not in (None, False)]
    return f" ({', '.join(given)})" if given else ""


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


__all__ = ["console", "dumps", "escape", "fail", "filters", "print_table", "say", "table", "when"]
