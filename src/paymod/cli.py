"""The `paymod` command: migrate, serve, worker, API keys, webhooks, and an operator's view of payments.

Every command reads the same settings as the server (`PAYMOD_DATABASE_URL`, `PAYMOD_CONFIG` or
./paymod.toml, ...).

Start-up time matters for a command typed by hand: this module imports only typer and the standard
library; each command imports what it needs (SQLAlchemy and the module for database commands,
uvicorn and FastAPI for `serve`, rich when it prints a table).
"""

from __future__ import annotations

import asyncio
import functools
import sys
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
import typer.core

from paymod import __version__

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine
    from decimal import Decimal

    from rich.console import Console
    from rich.table import Table

    from paymod.config import Settings
    from paymod.persistence.database import Database
    from paymod.services.dto import PaymentDTO
    from paymod.services.payment_module import PaymentModule

T = TypeVar("T")

app = typer.Typer(help="paymod: a payment module for Python commerce backends.", no_args_is_help=True)
api_keys_app = typer.Typer(help="Create and revoke API keys.", no_args_is_help=True)
payments_app = typer.Typer(help="Inspect and act on payments.", no_args_is_help=True)
providers_app = typer.Typer(help="Payment providers.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Provider webhooks received (the inbox): list, replay.", no_args_is_help=True)
endpoints_app = typer.Typer(
    help="HTTP endpoints that receive paymod's events, signed: create, list, delete.", no_args_is_help=True
)
app.add_typer(api_keys_app, name="api-keys")
app.add_typer(payments_app, name="payments")
app.add_typer(providers_app, name="providers")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(endpoints_app, name="webhook-endpoints")

# Help texts avoid square brackets: typer renders them as rich markup, and `[worker]` would vanish.
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="default: $PAYMOD_DATABASE_URL, the config file's database_url, or sqlite:///./paymod.db",
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="JSON output (exact amounts)")]
PaymentId = Annotated[str, typer.Argument(metavar="PAYMENT_ID", help="the payment's id (pay_...)")]


class _PlainUsage(typer.core.TyperCommand):
    """Usage lines as `paymod payments show [OPTIONS] PAYMENT_ID`, without typer's braces around
    required arguments (`{PAYMENT_ID}` reads like a template placeholder)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [
            piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece
            for piece in super().collect_usage_pieces(ctx)
        ]


class KeyType(StrEnum):
    SECRET = "secret"
    PUBLISHABLE = "publishable"


class PaymentStatus(StrEnum):
    AUTHORIZED = "authorized"
    PARTIALLY_CAPTURED = "partially_captured"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CANCELED = "canceled"


class CommandError(Exception):
    """Something the operator can fix (an unmigrated or unreachable database, ...): one line, status 1."""


@functools.cache
def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output keeps whole ids on one line (rich would wrap at 80 columns).
    return Console(stderr=stderr, width=None if stream.isatty() else 250)


def _say(text: str, *, soft_wrap: bool = False) -> None:
    _console().print(text, soft_wrap=soft_wrap)


def _fail(text: str, code: int = 1) -> NoReturn:
    _console(stderr=True).print(text, soft_wrap=True)
    raise typer.Exit(code)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


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


def _settings(database_url: str | None) -> Settings:
    from paymod.config import ConfigError, load_settings

    try:
        return load_settings(**({"database_url": database_url} if database_url else {}))
    except ConfigError as exc:
        _fail(f"[red]configuration error:[/red] {_escape(str(exc))}", 2)


def _shown(database_url: str) -> str:
    """The database URL without its password, for printing."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


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


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine; a paymod error or a `CommandError` becomes one line and exit status 1."""
    from paymod.domain.errors import PaymodError

    try:
        return asyncio.run(work)
    except PaymodError as exc:
        _fail(f"[red]{exc.type}:[/red] {_escape(exc.message)}")
    except CommandError as exc:
        _fail(f"[red]error:[/red] {_escape(str(exc))}")
    except Exception as exc:
        if _schema_is_behind(exc):
            _fail("[red]error:[/red] the database schema is older than this paymod: run `paymod migrate`")
        raise


def _reason(exc: BaseException) -> str:
    """The first line of a connection failure, without SQLAlchemy's wrapping."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip() or type(cause).__name__
    return text.splitlines()[0]


async def _reachable(database: Database, shown: str) -> None:
    from sqlalchemy.exc import DBAPIError

    try:
        async with database.read():
            pass
    except (DBAPIError, OSError) as exc:
        await database.close()
        raise CommandError(f"cannot reach the database {shown}: {_reason(exc)}") from None


async def _open_database(settings: Settings, *, create: bool = False) -> Database:
    """The settings' database; unless `create`, it must exist and be migrated.

    Without this check a command on a fresh checkout would leave an empty SQLite file behind and fail
    deep inside with `no such table`.
    """
    from sqlalchemy import inspect
    from sqlalchemy.exc import ArgumentError

    from paymod.persistence.database import Database, normalize_url

    shown = _shown(settings.database_url)
    try:
        url = normalize_url(settings.database_url)
    except (ArgumentError, ValueError) as exc:
        raise CommandError(f"PAYMOD_DATABASE_URL: {exc}") from None
    if not create and url.drivername.startswith("sqlite") and url.database:
        path = Path(url.database)
        if not await asyncio.to_thread(path.exists):
            raise CommandError(f"no database at {path}: run `paymod migrate` to create it")
    try:
        database = Database(url)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    await _reachable(database, shown)
    if create:
        return database
    try:
        async with database.read() as conn:
            migrated = await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version"))
            revision = (
                (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalar()
                if migrated
                else None
            )
    except BaseException:
        await database.close()
        raise
    if revision is None:
        await database.close()
        raise CommandError(f"the database {shown} is not migrated: run `paymod migrate` first")
    return database


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    database = await _open_database(settings)
    try:
        yield database
    finally:
        await database.close()


@asynccontextmanager
async def _module(settings: Settings, kind: str = "cli") -> AsyncIterator[PaymentModule]:
    """The module without `connect`'s side effects: operators' commands neither migrate nor
    enable or disable providers (which would change what a running server offers). It keeps the
    process's heartbeat, so what a killed command claimed is free again within seconds."""
    from paymod.providers.registry import load_providers
    from paymod.services.payment_module import ModuleOptions, PaymentModule

    providers = load_providers(settings.provider_configs())
    module = PaymentModule(
        await _open_database(settings), providers, ModuleOptions.of(settings.module_options())
    )
    try:
        await module.start_heartbeat(kind)
        yield module
    finally:
        await module.close()


def _dumps(document: Any) -> str:
    """JSON with exact amounts (Decimals as number literals)."""
    from paymod.exact_json import dumps

    return dumps(document).decode()


def _table(*columns: str) -> Table:
    from rich.table import Table

    return Table(*columns)


def _print_table(table: Table, empty: str) -> None:
    """The table, or one line saying there is nothing (rather than a header over no rows)."""
    if table.row_count:
        _console().print(table)
    else:
        typer.echo(empty)


def _filters(**shown: object) -> str:
    """` (status captured, since ...)` for the filters given, to say what an empty answer is about."""
    given = [f"{name} {value}" for name, value in shown.items() if value not in (None, False)]
    return f" ({', '.join(given)})" if given else ""


# -- database and server ----------------------------------------------------------------------
@app.command(cls=_PlainUsage)
def migrate(database_url: DatabaseUrl = None) -> None:
    """Apply the database migrations (creates the SQLite file if needed)."""
    from paymod.persistence.migrate import upgrade

    settings = _settings(database_url)

    async def run() -> None:
        database = await _open_database(settings, create=True)
        try:
            await upgrade(database.engine)
        finally:
            await database.close()

    _run(run())
    _say(f"migrated {_escape(_shown(settings.database_url))}", soft_wrap=True)


@app.command(cls=_PlainUsage)
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
        _fail(f"[red]error:[/red] {_escape(str(exc))}")
    typer.echo(f"wrote {path}: local API keys{f' and the settings of {source}' if source else ''}")
    typer.echo(f"  admin key (Authorization: Bearer):   {keys.admin}")
    typer.echo(f"  store key (x-publishable-api-key):   {keys.publishable}")


def curl_example(base_url: str, admin_key: str) -> str:
    return (
        f"curl -s -X POST {base_url}/admin/payment-collections "
        f'-H "Authorization: Bearer {admin_key}" -H "Content-Type: application/json" '
        """-d '{"amount": 49.90, "currency_code": "usd"}'"""
    )


@app.command(cls=_PlainUsage)
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

    settings = _settings(database_url)
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
    application = create_app(settings, migrate=migrate)
    base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"

    def announce() -> None:
        typer.echo(f"paymod serving {base_url} (database {_shown(settings.database_url)})")
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


@app.command("worker", cls=_PlainUsage)
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
) -> None:
    """Process stored webhooks and deliver events until SIGINT or SIGTERM.

    Any number of workers (and `paymod serve` processes with their in-process worker) may share one
    PostgreSQL database: each row is claimed by one of them. It refuses to start on a database that
    is not migrated.
    """
    import logging
    import signal

    settings = _settings(database_url)
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

    from paymod.webhooks.worker import stop_worker, worker_for

    async def run() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with _module(settings, "worker") as module:
            worker = worker_for(settings.worker, module)
            running = asyncio.create_task(worker.run(stop))
            typer.echo(f"paymod worker running (database {_shown(settings.database_url)}); stop with Ctrl-C")
            asked = asyncio.create_task(stop.wait())
            await asyncio.wait({running, asked}, return_when=asyncio.FIRST_COMPLETED)
            asked.cancel()
            await stop_worker(running, stop, settings.worker.shutdown_grace)
            return worker.handled

    handled = _run(run())
    typer.echo(
        f"paymod worker stopped: {handled['inbox']} webhook events, {handled['outbox']} outbox events, "
        f"{handled['deliveries']} deliveries"
    )


@app.command(cls=_PlainUsage)
def demo(database_url: DatabaseUrl = None) -> None:
    """Run a whole payment flow through the HTTP API, against a server started on a free loopback port."""
    from paymod.demo import run_demo

    _run(run_demo(_settings(database_url), typer.echo))


@app.command(cls=_PlainUsage)
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

    settings = _settings(database_url)

    async def run() -> None:
        async with _module(settings) as module:
            report = await reconcile_runs(module, older_than=timedelta(seconds=older_than))
        if as_json:
            typer.echo(json.dumps([dataclasses.asdict(entry) for entry in report]))
            return
        if not report:
            typer.echo("nothing to reconcile")
        for entry in report:
            typer.echo(f"{entry.run_id}  {entry.name:<16} {entry.outcome:<12} {entry.detail}")

    _run(run())


# -- API keys ---------------------------------------------------------------------------------
@api_keys_app.command("create", cls=_PlainUsage)
def create_api_key(
    type: Annotated[KeyType, typer.Option("--type", help="secret (admin routes) or publishable (store)")],
    title: Annotated[str | None, typer.Option(help="what the key is for")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key. Its token is shown once: store it now."""
    from paymod.persistence.api_keys import ApiKeyStore, ApiKeyType

    settings = _settings(database_url)

    async def run() -> None:
        async with _database(settings) as database:
            created = await ApiKeyStore(database).create(ApiKeyType(type.value), title)
        _say(f"id:    {created.api_key.id}")
        _say(f"type:  {created.api_key.type}")
        _say(f"token: {created.token}", soft_wrap=True)
        _console(stderr=True).print("The token is shown only now; paymod stores its hash.")

    _run(run())


@api_keys_app.command("revoke", cls=_PlainUsage)
def revoke_api_key(
    id: Annotated[str, typer.Argument(metavar="KEY_ID", help="the key's id (apk_...)")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API key: requests using it get 401 from now on."""
    from paymod.persistence.api_keys import ApiKeyStore

    settings = _settings(database_url)

    async def run() -> None:
        async with _database(settings) as database:
            key = await ApiKeyStore(database).revoke(id)
        _say(f"revoked {key.id} ({key.type}, {key.redacted})")

    _run(run())


@api_keys_app.command("list", cls=_PlainUsage)
def list_api_keys(database_url: DatabaseUrl = None) -> None:
    """List API keys (redacted)."""
    from paymod.persistence.api_keys import ApiKeyStore

    settings = _settings(database_url)

    async def run() -> list[Any]:
        async with _database(settings) as database:
            return await ApiKeyStore(database).list()

    table = _table("id", "type", "title", "token", "created", "revoked")
    for key in _run(run()):
        table.add_row(
            key.id, key.type, key.title or "", key.redacted, _when(key.created_at), _when(key.revoked_at)
        )
    _print_table(table, "no API keys: create one with `paymod api-keys create --type secret`")


# -- payments ---------------------------------------------------------------------------------
def payment_status(payment: PaymentDTO) -> PaymentStatus:
    """One word for where a payment stands (payments have no status column: it is derived)."""
    from paymod.domain.rules import total

    if payment.canceled_at is not None:
        return PaymentStatus.CANCELED
    captured = total(c.amount for c in payment.captures or [])
    refunded = total(r.amount for r in payment.refunds or [])
    if refunded > 0:
        return PaymentStatus.REFUNDED if refunded >= captured else PaymentStatus.PARTIALLY_REFUNDED
    if payment.captured_at is not None:
        return PaymentStatus.CAPTURED
    return PaymentStatus.PARTIALLY_CAPTURED if captured > 0 else PaymentStatus.AUTHORIZED


def money(amount: Decimal, currency_code: str) -> str:
    """An amount at its currency's precision: `10.00` and `2.50` USD, `1000` JPY, `1.500` KWD.

    An amount with more significant digits than its currency has keeps them (nothing is hidden).
    """
    from decimal import Decimal

    from paymod.domain.money import currency_precision

    places = currency_precision(currency_code)
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return format(amount.normalize(), "f")
    return format(amount.quantize(Decimal(1).scaleb(-places)), "f")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _amount(value: str | None, option: str) -> Decimal | None:
    from decimal import Decimal, InvalidOperation

    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{value!r} is not an amount", param_hint=option) from None


def _payment_document(payment: PaymentDTO) -> dict[str, Any]:
    return {**payment.model_dump(mode="python"), "status": payment_status(payment).value}


# A refund's reason comes with it, in the table and in --json.
_DETAIL = {"relations": ["captures", "refunds", "refunds.refund_reason"]}


@payments_app.command("list", cls=_PlainUsage)
def list_payments(
    status: Annotated[PaymentStatus | None, typer.Option(help="only payments in this state")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="created at or after (UTC unless a zone is given)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many")] = 50,
    json: JsonOutput = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List payments, newest first."""
    from paymod.domain.rules import total

    settings = _settings(database_url)

    async def run() -> list[PaymentDTO]:
        filters: dict[str, Any] = {}
        if since is not None:
            moment = since if since.tzinfo else since.replace(tzinfo=UTC)
            filters["created_at"] = {"$gte": moment}
        if status is PaymentStatus.CANCELED:
            filters["canceled_at"] = {"$ne": None}
        async with _module(settings) as module:
            found: list[PaymentDTO] = []
            offset = 0
            # The status is derived from captures and refunds, so it is filtered here, page by page.
            while len(found) < limit:
                page = await module.list_payments(
                    filters,
                    {"skip": offset, "take": 200, "order": {"created_at": "DESC"}, **_DETAIL},
                )
                found.extend(p for p in page if status is None or payment_status(p) is status)
                if len(page) < 200:
                    break
                offset += 200
            return found[:limit]

    payments = _run(run())
    if json:
        print(_dumps({"payments": [_payment_document(p) for p in payments]}))
        return
    table = _table("id", "status", "amount", "captured", "refunded", "provider", "created")
    for p in payments:
        table.add_row(
            p.id,
            payment_status(p).value,
            f"{money(p.amount, p.currency_code)} {p.currency_code}",
            money(total(c.amount for c in p.captures or []), p.currency_code),
            money(total(r.amount for r in p.refunds or []), p.currency_code),
            p.provider_id,
            _when(p.created_at),
        )
    _print_table(table, f"no payments{_filters(status=status.value if status else None, since=since)}")


def _show(payment: PaymentDTO, json: bool) -> None:
    if json:
        print(_dumps({"payment": _payment_document(payment)}))
        return
    currency = payment.currency_code
    _say(f"[bold]{payment.id}[/bold]  {payment_status(payment).value}")
    _say(f"  amount      {money(payment.amount, currency)} {currency}")
    _say(f"  provider    {payment.provider_id}")
    _say(f"  collection  {payment.payment_collection_id}")
    _say(f"  session     {payment.payment_session_id}")
    _say(f"  created     {_when(payment.created_at)}")
    if payment.captured_at:
        _say(f"  captured at {_when(payment.captured_at)}")
    if payment.canceled_at:
        _say(f"  canceled at {_when(payment.canceled_at)}")
    for capture in payment.captures or []:
        _say(f"  capture  {capture.id}  {money(capture.amount, currency)}  {_when(capture.created_at)}")
    for refund in payment.refunds or []:
        reason = _escape(refund.refund_reason.code) if refund.refund_reason else ""
        note = _escape(refund.note or "")
        _say(f"  refund   {refund.id}  {money(refund.amount, currency)}  {reason}  {note}".rstrip())


@payments_app.command("show", cls=_PlainUsage)
def show_payment(id: PaymentId, json: JsonOutput = False, database_url: DatabaseUrl = None) -> None:
    """Show a payment with its captures and refunds."""
    settings = _settings(database_url)

    async def run() -> PaymentDTO:
        async with _module(settings) as module:
            return await module.retrieve_payment(id, _DETAIL)

    _show(_run(run()), json)


@payments_app.command("capture", cls=_PlainUsage)
def capture_payment(
    id: PaymentId,
    amount: Annotated[str | None, typer.Option(help="default: what remains uncaptured")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Capture a payment (all that remains, or --amount)."""
    settings = _settings(database_url)
    value = _amount(amount, "--amount")

    async def run() -> PaymentDTO:
        async with _module(settings) as module:
            await module.capture_payment({"payment_id": id, "amount": value, "captured_by": "cli"})
            return await module.retrieve_payment(id, _DETAIL)

    _show(_run(run()), False)


@payments_app.command("refund", cls=_PlainUsage)
def refund_payment(
    id: PaymentId,
    amount: Annotated[str | None, typer.Option(help="default: what remains refundable")] = None,
    reason: Annotated[str | None, typer.Option(help="refund reason id (refr_...) or code")] = None,
    note: Annotated[str | None, typer.Option(help="a note kept with the refund")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Refund a captured payment (all that remains refundable, or --amount)."""
    settings = _settings(database_url)
    value = _amount(amount, "--amount")

    async def run() -> PaymentDTO:
        async with _module(settings) as module:
            reason_id = None
            if reason is not None:
                found = await module.list_refund_reasons({"$or": [{"id": reason}, {"code": reason}]})
                if not found:
                    raise typer.BadParameter(
                        f"no refund reason with id or code {reason!r}", param_hint="--reason"
                    )
                reason_id = found[0].id
            await module.refund_payment(
                {
                    "payment_id": id,
                    "amount": value,
                    "refund_reason_id": reason_id,
                    "note": note,
                    "created_by": "cli",
                }
            )
            return await module.retrieve_payment(id, _DETAIL)

    _show(_run(run()), False)


# -- providers --------------------------------------------------------------------------------
@providers_app.command("list", cls=_PlainUsage)
def list_providers(json: JsonOutput = False, database_url: DatabaseUrl = None) -> None:
    """List the payment providers the database knows, and which this configuration loads."""
    settings = _settings(database_url)

    async def run() -> tuple[list[Any], list[str]]:
        async with _module(settings) as module:
            return await module.list_payment_providers(), module.providers.ids

    providers, configured = _run(run())
    if json:
        document = [
            {"id": p.id, "is_enabled": p.is_enabled, "configured": p.id in configured} for p in providers
        ]
        print(_dumps({"payment_providers": document}))
        return
    table = _table("id", "enabled", "configured here")
    for p in providers:
        table.add_row(p.id, "yes" if p.is_enabled else "no", "yes" if p.id in configured else "no")
    _print_table(
        table,
        f"no payment providers registered yet: `paymod serve` registers those configured here "
        f"({', '.join(configured)})",
    )


# -- webhooks ---------------------------------------------------------------------------------
class WebhookEventStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


@webhooks_app.command("list", cls=_PlainUsage)
def list_webhook_events(
    failed: Annotated[
        bool, typer.Option("--failed", help="only events that exhausted their retries")
    ] = False,
    status: Annotated[WebhookEventStatus | None, typer.Option(help="only events in this state")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many")] = 50,
    json: JsonOutput = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List provider events received, newest first."""
    from paymod.webhooks import inbox

    if failed and status not in (None, WebhookEventStatus.FAILED):
        raise typer.BadParameter("--failed and --status disagree", param_hint="--status")
    wanted = WebhookEventStatus.FAILED.value if failed else (status.value if status else None)
    settings = _settings(database_url)

    async def run() -> list[dict[str, Any]]:
        async with _module(settings) as module:
            return await inbox.list_webhook_events(module, status=wanted, limit=limit)

    events = [inbox.webhook_event_document(row) for row in _run(run())]
    if json:
        print(_dumps({"webhook_events": events}))
        return
    table = _table("id", "provider", "event", "action", "status", "attempts", "session", "received", "error")
    for e in events:
        table.add_row(
            e["id"],
            e["provider_id"],
            e["event_id"],
            e["action"],
            e["status"],
            str(e["attempts"]),
            e["session_id"] or "",
            _when(e["created_at"]),
            _escape(e["last_error"] or ""),
        )
    _print_table(table, f"no webhook events{_filters(status=wanted)}")


@webhooks_app.command("replay", cls=_PlainUsage)
def replay_webhook_event(
    id: Annotated[str, typer.Argument(metavar="EVENT_ID", help="the stored event's id (whev_...)")],
    database_url: DatabaseUrl = None,
) -> None:
    """Put a stored event (typically a failed one) back in the queue with a fresh retry budget."""
    from paymod.webhooks import inbox

    settings = _settings(database_url)

    async def run() -> None:
        async with _module(settings) as module:
            await inbox.replay_webhook_event(module, id)

    _run(run())
    _say(f"replayed {id}: pending, a worker processes it next")


@endpoints_app.command("create", cls=_PlainUsage)
def create_webhook_endpoint(
    url: Annotated[str, typer.Argument(metavar="URL", help="where events are POSTed (http or https)")],
    event: Annotated[
        list[str] | None, typer.Option("--event", help="an event to send (repeatable); default: all")
    ] = None,
    description: Annotated[str | None, typer.Option(help="what the endpoint is for")] = None,
    json: JsonOutput = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Register an endpoint. Its signing secret is shown once: store it now."""
    from paymod.webhooks import outbox

    settings = _settings(database_url)

    async def run() -> dict[str, Any]:
        async with _module(settings) as module:
            return await outbox.create_webhook_endpoint(
                module, url, events=event or ["*"], description=description
            )

    endpoint = outbox.webhook_endpoint_document(_run(run()), secret=True)
    if json:
        print(_dumps({"webhook_endpoint": endpoint}))
    else:
        _say(f"id:     {endpoint['id']}")
        _say(f"url:    {_escape(endpoint['url'])}", soft_wrap=True)
        _say(f"events: {', '.join(endpoint['events'])}", soft_wrap=True)
        _say(f"secret: {endpoint['secret']}", soft_wrap=True)
    _console(stderr=True).print("The secret is shown only now: verify deliveries' Paymod-Signature with it.")


@endpoints_app.command("list", cls=_PlainUsage)
def list_webhook_endpoints(json: JsonOutput = False, database_url: DatabaseUrl = None) -> None:
    """List endpoints (without their secrets)."""
    from paymod.webhooks import outbox

    settings = _settings(database_url)

    async def run() -> list[dict[str, Any]]:
        async with _module(settings) as module:
            return await outbox.list_webhook_endpoints(module)

    endpoints = [outbox.webhook_endpoint_document(row) for row in _run(run())]
    if json:
        print(_dumps({"webhook_endpoints": endpoints}))
        return
    table = _table("id", "url", "events", "description", "created")
    for e in endpoints:
        table.add_row(
            e["id"],
            _escape(e["url"]),
            ", ".join(e["events"]),
            _escape(e["description"] or ""),
            _when(e["created_at"]),
        )
    _print_table(table, "no webhook endpoints: add one with `paymod webhook-endpoints create URL`")


@endpoints_app.command("delete", cls=_PlainUsage)
def delete_webhook_endpoint(
    id: Annotated[str, typer.Argument(metavar="ENDPOINT_ID", help="the endpoint's id (we_...)")],
    database_url: DatabaseUrl = None,
) -> None:
    """Delete an endpoint: nothing more is sent to it."""
    from paymod.webhooks import outbox

    settings = _settings(database_url)

    async def run() -> None:
        async with _module(settings) as module:
            await outbox.delete_webhook_endpoint(module, id)

    _run(run())
    _say(f"deleted {id}")


def main() -> None:
    # The same name in usage lines whether started as `paymod` or `python -m paymod.cli`.
    app(prog_name="paymod")


if __name__ == "__main__":
    main()
