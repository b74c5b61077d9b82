"""The `paymod` command: migrate, serve, worker, API keys, webhooks, and an operator's view of payments.

Every command reads the same settings as the server (`PAYMOD_DATABASE_URL`, `PAYMOD_CONFIG`, ...).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from paymod.config import ConfigError, Settings, load_settings
from paymod.domain.errors import PaymodError
from paymod.domain.rules import total
from paymod.http.json import dumps
from paymod.persistence.api_keys import ApiKeyStore, ApiKeyType
from paymod.persistence.database import Database
from paymod.providers.registry import load_providers
from paymod.services.dto import PaymentDTO
from paymod.services.payment_module import ModuleOptions, PaymentModule
from paymod.webhooks import inbox, outbox
from paymod.webhooks.worker import stop_worker, worker_for

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

# Piped output keeps whole ids on one line (rich would wrap at 80 columns).
console = Console(width=None if sys.stdout.isatty() else 250)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 250)

DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="default: $PAYMOD_DATABASE_URL or ./paymod.db")
]
JsonOutput = Annotated[bool, typer.Option("--json", help="JSON output (exact amounts)")]


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


def _settings(database_url: str | None) -> Settings:
    try:
        return load_settings(**({"database_url": database_url} if database_url else {}))
    except ConfigError as exc:
        errors.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _shown(database_url: str) -> str:
    """The database URL without its password, for printing."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


def _run(work: Any) -> Any:
    """Runs a coroutine; a paymod error becomes a message and exit status 1."""
    try:
        return asyncio.run(work)
    except PaymodError as exc:
        errors.print(f"[red]{exc.type}:[/red] {exc.message}")
        raise typer.Exit(1) from None


@asynccontextmanager
async def _module(settings: Settings, kind: str = "cli") -> AsyncIterator[PaymentModule]:
    """The module without `connect`'s side effects: operators' commands neither migrate nor
    enable or disable providers (which would change what a running server offers). It keeps the
    process's heartbeat, so what a killed command claimed is free again within seconds."""
    module = PaymentModule(
        Database(settings.database_url),
        load_providers(settings.provider_configs()),
        ModuleOptions.of(settings.module_options()),
    )
    try:
        await module.start_heartbeat(kind)
        yield module
    finally:
        await module.close()


# -- database and server ----------------------------------------------------------------------
@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Apply the database migrations."""
    from paymod.persistence.migrate import upgrade

    settings = _settings(database_url)

    async def run() -> None:
        database = Database(settings.database_url)
        try:
            await upgrade(database.engine)
        finally:
            await database.close()

    _run(run())
    console.print(f"migrated {settings.database_url}")


def curl_example(base_url: str, admin_key: str) -> str:
    return (
        f"curl -s -X POST {base_url}/admin/payment-collections "
        f'-H "Authorization: Bearer {admin_key}" -H "Content-Type: application/json" '
        """-d '{"amount": 49.90, "currency_code": "usd"}'"""
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 9000,
    database_url: DatabaseUrl = None,
    migrate: Annotated[bool, typer.Option(help="apply migrations before serving")] = True,
    dev: Annotated[
        bool, typer.Option(help="print a ready-to-run curl example, admin key included (local use only)")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="run a worker in this process (default: [worker] enabled, true); "
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
    import uvicorn

    from paymod.http import create_app
    from paymod.http.server import header_limited_protocol

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
        if dev and settings.admin_api_key is not None:
            typer.echo(f"  try it:   {curl_example(base_url, settings.admin_api_key.get_secret_value())}")
        elif settings.admin_api_key is not None:
            typer.echo(f"  try it:   {curl_example(base_url, '$PAYMOD_ADMIN_API_KEY')}")
        else:
            typer.echo("  create an admin key with: paymod api-keys create --type secret")

    protocol = header_limited_protocol(settings.server.header_limit, settings.server.header_timeout)
    server = _AnnouncingServer(
        uvicorn.Config(application, host=host, port=port, log_level=log_level, lifespan="on", http=protocol),
        announce,
    )
    server.run()
    if not server.started:
        raise typer.Exit(1)


class _AnnouncingServer:
    """uvicorn's server, printing how to call it once it listens."""

    def __init__(self, config: Any, announce: Callable[[], None]) -> None:
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


@app.command("worker")
def run_worker(
    database_url: DatabaseUrl = None,
    poll_interval: Annotated[
        float | None, typer.Option(min=0.01, help="seconds between idle looks (default: [worker])")
    ] = None,
    grace: Annotated[
        float | None,
        typer.Option(
            min=0.1, help="seconds to finish the current batch once asked to stop (default: [worker])"
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="log level (debug, info, warning, error)")] = "warning",
) -> None:
    """Process stored webhooks and deliver events until SIGINT or SIGTERM.

    Any number of workers (and `paymod serve` processes with their in-process worker) may share one
    PostgreSQL database: each row is claimed by one of them.
    """
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
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

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


@app.command()
def demo(database_url: DatabaseUrl = None) -> None:
    """Run a whole payment flow through the HTTP API, against a server started on a free loopback port."""
    from paymod.demo import run_demo

    _run(run_demo(_settings(database_url), typer.echo))


@app.command()
def reconcile(
    older_than: Annotated[float, typer.Option(help="only flows idle for at least this many seconds")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Finish capture/refund/cancel flows left in an unknown state (the worker does it too)."""
    from datetime import timedelta

    from paymod.workflows.reconciler import reconcile as reconcile_runs

    async def run() -> None:
        async with _module(_settings(database_url)) as module:
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
@api_keys_app.command("create")
def create_api_key(
    type: Annotated[KeyType, typer.Option("--type", help="secret (admin routes) or publishable (store)")],
    title: Annotated[str | None, typer.Option(help="what the key is for")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key. Its token is shown once: store it now."""
    settings = _settings(database_url)

    async def run() -> None:
        database = Database(settings.database_url)
        try:
            created = await ApiKeyStore(database).create(ApiKeyType(type.value), title)
        finally:
            await database.close()
        console.print(f"id:    {created.api_key.id}")
        console.print(f"type:  {created.api_key.type}")
        console.print(f"token: {created.token}", soft_wrap=True)
        errors.print("The token is shown only now; paymod stores its hash.")

    _run(run())


@api_keys_app.command("revoke")
def revoke_api_key(
    id: Annotated[str, typer.Argument(help="the key's id (apk_...)")], database_url: DatabaseUrl = None
) -> None:
    """Revoke an API key: requests using it get 401 from now on."""
    settings = _settings(database_url)

    async def run() -> None:
        database = Database(settings.database_url)
        try:
            key = await ApiKeyStore(database).revoke(id)
        finally:
            await database.close()
        console.print(f"revoked {key.id} ({key.type}, {key.redacted})")

    _run(run())


@api_keys_app.command("list")
def list_api_keys(database_url: DatabaseUrl = None) -> None:
    """List API keys (redacted)."""
    settings = _settings(database_url)

    async def run() -> None:
        database = Database(settings.database_url)
        try:
            keys = await ApiKeyStore(database).list()
        finally:
            await database.close()
        table = Table("id", "type", "title", "token", "created", "revoked")
        for key in keys:
            table.add_row(
                key.id, key.type, key.title or "", key.redacted, _when(key.created_at), _when(key.revoked_at)
            )
        console.print(table)

    _run(run())


# -- payments ---------------------------------------------------------------------------------
def payment_status(payment: PaymentDTO) -> PaymentStatus:
    """One word for where a payment stands (payments have no status column: it is derived)."""
    if payment.canceled_at is not None:
        return PaymentStatus.CANCELED
    captured = total(c.amount for c in payment.captures or [])
    refunded = total(r.amount for r in payment.refunds or [])
    if refunded > 0:
        return PaymentStatus.REFUNDED if refunded >= captured else PaymentStatus.PARTIALLY_REFUNDED
    if payment.captured_at is not None:
        return PaymentStatus.CAPTURED
    return PaymentStatus.PARTIALLY_CAPTURED if captured > 0 else PaymentStatus.AUTHORIZED


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _amount(value: str | None, option: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{value!r} is not an amount", param_hint=option) from None


def _payment_document(payment: PaymentDTO) -> dict[str, Any]:
    return {**payment.model_dump(mode="python"), "status": payment_status(payment).value}


@payments_app.command("list")
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
                    {
                        "skip": offset,
                        "take": 200,
                        "order": {"created_at": "DESC"},
                        "relations": ["captures", "refunds"],
                    },
                )
                found.extend(p for p in page if status is None or payment_status(p) is status)
                if len(page) < 200:
                    break
                offset += 200
            return found[:limit]

    payments = _run(run())
    if json:
        print(dumps({"payments": [_payment_document(p) for p in payments]}).decode())
        return
    table = Table("id", "status", "amount", "captured", "refunded", "provider", "created")
    for p in payments:
        table.add_row(
            p.id,
            payment_status(p).value,
            f"{p.amount} {p.currency_code}",
            str(total(c.amount for c in p.captures or [])),
            str(total(r.amount for r in p.refunds or [])),
            p.provider_id,
            _when(p.created_at),
        )
    console.print(table)


def _show(payment: PaymentDTO, json: bool) -> None:
    if json:
        print(dumps({"payment": _payment_document(payment)}).decode())
        return
    console.print(f"[bold]{payment.id}[/bold]  {payment_status(payment).value}")
    console.print(f"  amount      {payment.amount} {payment.currency_code}")
    console.print(f"  provider    {payment.provider_id}")
    console.print(f"  collection  {payment.payment_collection_id}")
    console.print(f"  session     {payment.payment_session_id}")
    console.print(f"  created     {_when(payment.created_at)}")
    if payment.captured_at:
        console.print(f"  captured at {_when(payment.captured_at)}")
    if payment.canceled_at:
        console.print(f"  canceled at {_when(payment.canceled_at)}")
    for capture in payment.captures or []:
        console.print(f"  capture  {capture.id}  {capture.amount}  {_when(capture.created_at)}")
    for refund in payment.refunds or []:
        reason = refund.refund_reason.code if refund.refund_reason else ""
        console.print(f"  refund   {refund.id}  {refund.amount}  {reason}  {refund.note or ''}".rstrip())


_DETAIL = {"relations": ["captures", "refunds", "refunds.refund_reason"]}


@payments_app.command("show")
def show_payment(id: str, json: JsonOutput = False, database_url: DatabaseUrl = None) -> None:
    """Show a payment with its captures and refunds."""
    settings = _settings(database_url)

    async def run() -> PaymentDTO:
        async with _module(settings) as module:
            return await module.retrieve_payment(id, _DETAIL)

    _show(_run(run()), json)


@payments_app.command("capture")
def capture_payment(
    id: str,
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


@payments_app.command("refund")
def refund_payment(
    id: str,
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
@providers_app.command("list")
def list_providers(json: JsonOutput = False, database_url: DatabaseUrl = None) -> None:
    """List the payment providers the database knows, and which this configuration loads."""
    settings = _settings(database_url)

    async def run() -> tuple[list[Any], list[str]]:
        async with _module(settings) as module:
            return await module.list_payment_providers(), module.providers.ids

    providers, configured = _run(run())
    if json:
        print(
            dumps(
                {
                    "payment_providers": [
                        {"id": p.id, "is_enabled": p.is_enabled, "configured": p.id in configured}
                        for p in providers
                    ]
                }
            ).decode()
        )
        return
    table = Table("id", "enabled", "configured here")
    for p in providers:
        table.add_row(p.id, "yes" if p.is_enabled else "no", "yes" if p.id in configured else "no")
    console.print(table)


# -- webhooks ---------------------------------------------------------------------------------
class WebhookEventStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


@webhooks_app.command("list")
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
    if failed and status not in (None, WebhookEventStatus.FAILED):
        raise typer.BadParameter("--failed and --status disagree", param_hint="--status")
    wanted = WebhookEventStatus.FAILED.value if failed else (status.value if status else None)
    settings = _settings(database_url)

    async def run() -> list[dict[str, Any]]:
        async with _module(settings) as module:
            return await inbox.list_webhook_events(module, status=wanted, limit=limit)

    events = [inbox.webhook_event_document(row) for row in _run(run())]
    if json:
        print(dumps({"webhook_events": events}).decode())
        return
    table = Table("id", "provider", "event", "action", "status", "attempts", "session", "received", "error")
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
            e["last_error"] or "",
        )
    console.print(table)


@webhooks_app.command("replay")
def replay_webhook_event(
    id: Annotated[str, typer.Argument(help="the stored event's id (whev_...)")],
    database_url: DatabaseUrl = None,
) -> None:
    """Put a stored event (typically a failed one) back in the queue with a fresh retry budget."""
    settings = _settings(database_url)

    async def run() -> None:
        async with _module(settings) as module:
            await inbox.replay_webhook_event(module, id)

    _run(run())
    console.print(f"replayed {id}: pending, a worker processes it next")


@endpoints_app.command("create")
def create_webhook_endpoint(
    url: Annotated[str, typer.Argument(help="where events are POSTed (http or https)")],
    event: Annotated[
        list[str] | None, typer.Option("--event", help="an event to send (repeatable); default: all")
    ] = None,
    description: Annotated[str | None, typer.Option(help="what the endpoint is for")] = None,
    json: JsonOutput = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Register an endpoint. Its signing secret is shown once: store it now."""
    settings = _settings(database_url)

    async def run() -> dict[str, Any]:
        async with _module(settings) as module:
            return await outbox.create_webhook_endpoint(
                module, url, events=event or ["*"], description=description
            )

    endpoint = outbox.webhook_endpoint_document(_run(run()), secret=True)
    if json:
        print(dumps({"webhook_endpoint": endpoint}).decode())
    else:
        console.print(f"id:     {endpoint['id']}")
        console.print(f"url:    {endpoint['url']}", soft_wrap=True)
        console.print(f"events: {', '.join(endpoint['events'])}", soft_wrap=True)
        console.print(f"secret: {endpoint['secret']}", soft_wrap=True)
    errors.print("The secret is shown only now: verify deliveries' Paymod-Signature with it.")


@endpoints_app.command("list")
def list_webhook_endpoints(json: JsonOutput = False, database_url: DatabaseUrl = None) -> None:
    """List endpoints (without their secrets)."""
    settings = _settings(database_url)

    async def run() -> list[dict[str, Any]]:
        async with _module(settings) as module:
            return await outbox.list_webhook_endpoints(module)

    endpoints = [outbox.webhook_endpoint_document(row) for row in _run(run())]
    if json:
        print(dumps({"webhook_endpoints": endpoints}).decode())
        return
    table = Table("id", "url", "events", "description", "created")
    for e in endpoints:
        table.add_row(
            e["id"], e["url"], ", ".join(e["events"]), e["description"] or "", _when(e["created_at"])
        )
    console.print(table)


@endpoints_app.command("delete")
def delete_webhook_endpoint(
    id: Annotated[str, typer.Argument(help="the endpoint's id (we_...)")], database_url: DatabaseUrl = None
) -> None:
    """Delete an endpoint: nothing more is sent to it."""
    settings = _settings(database_url)

    async def run() -> None:
        async with _module(settings) as module:
            await outbox.delete_webhook_endpoint(module, id)

    _run(run())
    console.print(f"deleted {id}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
