"""`paymod providers`: the payment providers the database knows and this configuration loads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from paymod.cli.base import DatabaseUrl, JsonOutput, PlainUsage, group, on_module, read_settings
from paymod.cli.output import dumps, print_table, table

if TYPE_CHECKING:
    from paymod.services.payment_module import PaymentModule

providers_app = group("Payment providers.")


@providers_app.command("list", cls=PlainUsage)
def list_providers(json: JsonOutput = False, database_url: DatabaseUrl = None) -> None:
    """List the payment providers the database knows, and which this configuration loads."""
    settings = read_settings(database_url)

    async def work(module: PaymentModule) -> tuple[list[Any], list[str]]:
        return await module.list_payment_providers(), module.providers.ids

    providers, configured = on_module(settings, work)
    if json:
        document = [
            {"id": p.id, "is_enabled": p.is_enabled, "configured": p.id in configured} for p in providers
        ]
        print(dumps({"payment_providers": document}))
        return
    rows = table("id", "enabled", "configured here")
    for p in providers:
        rows.add_row(p.id, "yes" if p.is_enabled else "no", "yes" if p.id in configured else "no")
    print_table(
        rows,
        f"no payment providers registered yet: `paymod serve` registers those configured here "
        f"({', '.join(configured)})",
    )
