"""`paymod webhooks`: provider events received (the inbox): list them, replay one."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paymod.cli.base import DatabaseUrl, JsonOutput, PlainUsage, group, on_module, read_settings
from paymod.cli.output import dumps, escape, filters, print_table, say, table, when

if TYPE_CHECKING:
    from paymod.services.payment_module import PaymentModule

webhooks_app = group("Provider webhooks received (the inbox): list, replay.")


class WebhookEventStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


@webhooks_app.command("list", cls=PlainUsage)
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
    settings = read_settings(database_url)

    async def work(module: PaymentModule) -> list[dict[str, Any]]:
        return await inbox.list_webhook_events(module, status=wanted, limit=limit)

    events = [inbox.webhook_event_document(row) for row in on_module(settings, work)]
    if json:
        print(dumps({"webhook_events": events}))
        return
    rows = table("id", "provider", "event", "action", "status", "attempts", "session", "received", "error")
    for e in events:
        rows.add_row(
            e["id"],
            e["provider_id"],
            e["event_id"],
            e["action"],
            e["status"],
            str(e["attempts"]),
            e["session_id"] or "",
            when(e["created_at"]),
            escape(e["last_error"] or ""),
        )
    print_table(rows, f"no webhook events{filters(status=wanted)}")


@webhooks_app.command("replay", cls=PlainUsage)
def replay_webhook_event(
    id: Annotated[str, typer.Argument(metavar="EVENT_ID", help="the stored event's id (whev_...)")],
    database_url: DatabaseUrl = None,
) -> None:
    """Put a stored event (typically a failed one) back in the queue with a fresh retry budget."""
    from paymod.webhooks import inbox

    settings = read_settings(database_url)

    async def work(module: PaymentModule) -> None:
        await inbox.replay_webhook_event(module, id)

    on_module(settings, work)
    say(f"replayed {id}: pending, a worker processes it next")
