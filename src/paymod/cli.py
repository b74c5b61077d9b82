"""The `paymod` command: migrate the database and run the demo flow."""

from __future__ import annotations

import asyncio
import os

import typer

from paymod.persistence.database import DEFAULT_DATABASE_URL

app = typer.Typer(help="paymod: a payment module for Python commerce backends.", no_args_is_help=True)


def _database_url(url: str | None) -> str:
    return url or os.environ.get("PAYMOD_DATABASE_URL") or DEFAULT_DATABASE_URL


@app.command()
def migrate(
    database_url: str | None = typer.Option(None, help="default: $PAYMOD_DATABASE_URL or ./paymod.db"),
) -> None:
    """Apply the database migrations."""
    from paymod.persistence.database import Database
    from paymod.persistence.migrate import upgrade

    async def run() -> None:
        database = Database(_database_url(database_url))
        try:
            await upgrade(database.engine)
        finally:
            await database.close()

    asyncio.run(run())
    typer.echo(f"migrated {_database_url(database_url)}")


@app.command()
def demo(
    database_url: str | None = typer.Option(None, help="default: $PAYMOD_DATABASE_URL or ./paymod.db"),
) -> None:
    """Run one whole flow (collection, session, authorize, capture, refund) and print its statuses."""
    from paymod.demo import run_demo

    asyncio.run(run_demo(_database_url(database_url), typer.echo))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
