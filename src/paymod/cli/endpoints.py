"""`paymod webhook-endpoints`: the HTTP endpoints paymod signs and sends its events to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from paymod.cli.base import DatabaseUrl, JsonOutput, PlainUsage, group, on_module, read_settings
from paymod.cli.output import console, dumps, escape, print_table, say, table, when

if TYPE_CHECKING:
    from paymod.services.payment_module import PaymentModule

endpoints_app = group("HTTP endpoints that receive paymod's events, signed: create, list, delete.")


@endpoints_app.command("create", cls=PlainUsage)
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

    settings = read_settings(database_url)

    async def work(module: PaymentModule) -> dict[str, Any]:
        return await outbox.create_webhook_endpoint(
            module, url, events=event or ["*"], description=description
        )

    endpoint = outbox.webhook_endpoint_document(on_module(settings, work), secret=True)
    if json:
        print(dumps({"webhook_endpoint": endpoint}))
    else:
        say(f"id:     {endpoint['id']}")
        say(f"url:    {escape(endpoint['url'])}", soft_wrap=True)
        say(f"events: {', '.join(endpoint['events'])}", soft_wrap=True)
        say(f"secret: {endpoint['secret']}", soft_wrap=True)
    console(stderr=True).print("The secret is shown only now: verify deliveries' Paymod-Signature with it.")


@endpoints_app.command("list", cls=PlainUsage)
def list_webhook_endpoints(json: JsonOutput = False, database_url: DatabaseUrl = None) -> None:
    """List endpoints (without their secrets)."""
    from paymod.webhooks import outbox

    settings = read_settings(database_url)

    async def work(module: PaymentModule) -> list[dict[str, Any]]:
        return await outbox.list_webhook_endpoints(module)

    endpoints = [outbox.webhook_endpoint_document(row) for row in on_module(settings, work)]
    if json:
        print(dumps({"webhook_endpoints": endpoints}))
        return
    rows = table("id", "url", "events", "description", "created")
    for e in endpoints:
        rows.add_row(
            e["id"],
            escape(e["url"]),
            ", ".join(e["events"]),
            escape(e["description"] or ""),
            when(e["created_at"]),
        )
    print_table(rows, "no webhook endpoints: add one with `paymod webhook-endpoints create URL`")


@endpoints_app.command("delete", cls=PlainUsage)
def delete_webhook_endpoint(
    id: Annotated[str, typer.Argument(metavar="ENDPOINT_ID", help="the endpoint's id (we_...)")],
    database_url: DatabaseUrl = None,
) -> None:
    """Delete an endpoint: nothing more is sent to it."""
    from paymod.webhooks import outbox

    settings = read_settings(database_url)

    async def work(module: PaymentModule) -> None:
        await outbox.delete_webhook_endpoint(module, id)

    on_module(settings, work)
    say(f"deleted {id}")
