"""`paymod serve` (the HTTP API with an in-process worker) and `paymod worker` (a worker alone)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paymod.cli.base import DatabaseUrl, read_settings, run, shown

if TYPE_CHECKING:
    from paymod.config import Settings


def curl_example(base_url: str, admin_key: str) -> str:
    return (
        f"curl -s -X POST {base_url}/admin/payment-collections "
        f'-H "Authorization: Bearer {admin_key}" -H "Content-Type: application/json" '
        """-d '{"amount": 49.90, "currency_code": "usd"}'"""
    )


async def _require_migrated(settings: Settings) -> None:
    from paymod.bootstrap import database

    async with database(settings):
        pass


def _migrate_in_child(database_url: str) -> None:
    """Runs `paymod migrate` in a child process, so the serving process never loads the migration
    tool (Alembic and the template engine it brings: about 12 MB it would keep for its lifetime)."""
    # The URL goes by the environment, not the command line, where any local user could read its
    # password (`ps`); the environment's URL wins over the config file's.
    command = [sys.executable, "-m", "paymod.cli", "migrate"]
    environment = {**os.environ, "PAYMOD_DATABASE_URL": database_url}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    if done.returncode != 0:
        typer.echo((done.stderr or done.stdout).rstrip(), err=True)
        raise typer.Exit(done.returncode)


def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 9000,
    database_url: DatabaseUrl = None,
    migrate: Annotated[bool, typer.Option(help="apply migrations before serving")] = True,
    dev: Annotated[
        bool,
        typer.Option(help="print a ready-to-run curl example and the local keys (local use only)"),
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="run a worker in this process (default: worker.enabled of the config file, else yes); "
            "--no-worker on replicas that only serve, with `paymod worker` elsewhere",
        ),
    ] = None,
    header_limit: Annotated[
        int | None,
        typer.Option(
            min=1024,
            max=1024 * 1024,
            help="bytes of a request's line and headers; a larger request gets 431 "
            "(default: $PAYMOD_SERVER__HEADER_LIMIT, the config file's server.header_limit, or 16384)",
        ),
    ] = None,
    header_timeout: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            max=3600,
            help="seconds for a request's line and headers to arrive, then the connection is closed "
            "(default: $PAYMOD_SERVER__HEADER_TIMEOUT, the config file's server.header_timeout, or 10)",
        ),
    ] = None,
) -> None:
    """Migrate the database, then serve the HTTP API (store, admin, hooks) with an in-process worker."""
    from paymod.http import create_app
    from paymod.http.server import server_config
    from paymod.observability.logs import configure_logging

    settings = read_settings(database_url)
    if worker is not None:
        settings = settings.model_copy(
            update={"worker": settings.worker.model_copy(update={"enabled": worker})}
        )
    limits = {
        name: value
        for name, value in (("header_limit", header_limit), ("header_timeout", header_timeout))
        if value is not None
    }
    if limits:
        settings = settings.model_copy(update={"server": settings.server.model_copy(update=limits)})
    if migrate:
        _migrate_in_child(settings.database_url)
    else:
        # A replica started with --no-migrate on a database nobody migrated: say so in one line
        # rather than fail in the app's start-up with a traceback.
        run(_require_migrated(settings))
    application = create_app(settings, migrate=False)
    base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"

    def announce() -> None:
        typer.echo(f"paymod serving {base_url} (database {shown(settings.database_url)})")
        if not settings.worker.enabled:
            typer.echo("  no worker here: run `paymod worker` to process webhooks and deliver events")
        typer.echo(f"  API docs: {base_url}/docs")
        if dev and settings.config is not None:
            typer.echo(f"  settings: {settings.config} (environment variables win over it)")
        if dev and settings.admin_api_key is not None:
            typer.echo(f"  try it:   {curl_example(base_url, settings.admin_api_key.get_secret_value())}")
        elif settings.admin_api_key is not None:
            typer.echo(f"  try it:   {curl_example(base_url, '$PAYMOD_ADMIN_API_KEY')}")
        else:
            typer.echo("  create an admin key with: paymod api-keys create --type secret")
        if dev and settings.publishable_api_key is not None:
            key = settings.publishable_api_key.get_secret_value()
            typer.echo(f'  store routes: -H "x-publishable-api-key: {key}"')

    configure_logging(log_level)
    server = _AnnouncingServer(
        server_config(application, settings.server, host=host, port=port, log_level=log_level), announce
    )
    server.run()
    if not server.started:
        raise typer.Exit(1)


class _AnnouncingServer:
    """uvicorn's server, printing how to call it once it listens."""

    def __init__(self, config: Any, announce: Callable[[], None]) -> None:
        import socket

        import uvicorn

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                if self.started:
                    announce()

        self._server = Server(config)

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    def run(self) -> None:
        self._server.run()


def run_worker(
    database_url: DatabaseUrl = None,
    poll_interval: Annotated[
        float | None,
        typer.Option(min=0.01, help="seconds between idle looks (default: the config file's worker table)"),
    ] = None,
    grace: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="seconds to finish the current batch once asked to stop "
            "(default: the config file's worker table)",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="log level (debug, info, warning, error)")] = "warning",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="serve this worker's Prometheus metrics (webhook events applied, deliveries, provider "
            "calls) on http://HOST:PORT/metrics, without authentication (default: off)",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="interface for --metrics-port (keep it private)")
    ] = "127.0.0.1",
) -> None:
    """Process stored webhooks and deliver events until SIGINT or SIGTERM.

    Any number of workers (and `paymod serve` processes with their in-process worker) may share one
    PostgreSQL database: each row is claimed by one of them. It refuses to start on a database that
    is not migrated.
    """
    import logging
    import signal

    settings = read_settings(database_url)
    overrides = {
        name: value
        for name, value in (("poll_interval", poll_interval), ("shutdown_grace", grace))
        if value is not None
    }
    settings = settings.model_copy(update={"worker": settings.worker.model_copy(update=overrides)})
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    from paymod.observability.logs import configure_logging

    configure_logging(level)
    if metrics_port is not None:
        # The worker has no HTTP API of its own: its counters get a small server on another port.
        # The backlogs are the database's, and any `paymod serve` replica's /metrics shows them.
        from prometheus_client import start_http_server

        try:
            start_http_server(metrics_port, addr=metrics_host)
        except OSError as exc:
            raise typer.BadParameter(f"cannot listen on {metrics_host}:{metrics_port}: {exc}") from None

    from paymod.bootstrap import new_worker, operator_module
    from paymod.webhooks.worker import stop_worker

    async def work() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Before the module opens: a stop asked for while it connects is not lost.
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with operator_module(settings, "worker") as module:
            worker = new_worker(settings, module)
            running = asyncio.create_task(worker.run(stop))
            typer.echo(f"paymod worker running (database {shown(settings.database_url)}); stop with Ctrl-C")
            asked = asyncio.create_task(stop.wait())
            await asyncio.wait({running, asked}, return_when=asyncio.FIRST_COMPLETED)
            asked.cancel()
            await stop_worker(running, stop, settings.worker.shutdown_grace)
            return worker.handled

    handled = run(work())
    typer.echo(
        f"paymod worker stopped: {handled['inbox']} webhook events, {handled['outbox']} outbox events, "
        f"{handled['deliveries']} deliveries"
    )
