"""`paymod api-keys`: create, revoke and list API keys."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from paymod.cli.base import DatabaseUrl, PlainUsage, group, on_api_keys, read_settings
from paymod.cli.output import console, print_table, say, table, when

if TYPE_CHECKING:
    from paymod.services.access import ApiKey, ApiKeyStore, CreatedApiKey

api_keys_app = group("Create and revoke API keys.")


class KeyType(StrEnum):
    SECRET = "secret"
    PUBLISHABLE = "publishable"


@api_keys_app.command("create", cls=PlainUsage)
def create_api_key(
    type: Annotated[KeyType, typer.Option("--type", help="secret (admin routes) or publishable (store)")],
    title: Annotated[str | None, typer.Option(help="what the key is for")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key. Its token is shown once: store it now."""
    from paymod.services.access import ApiKeyType

    settings = read_settings(database_url)

    async def work(keys: ApiKeyStore) -> CreatedApiKey:
        return await keys.create(ApiKeyType(type.value), title)

    created = on_api_keys(settings, work)
    say(f"id:    {created.api_key.id}")
    say(f"type:  {created.api_key.type}")
    say(f"token: {created.token}", soft_wrap=True)
    console(stderr=True).print("The token is shown only now; paymod stores its hash.")


@api_keys_app.command("revoke", cls=PlainUsage)
def revoke_api_key(
    id: Annotated[str, typer.Argument(metavar="KEY_ID", help="the key's id (apk_...)")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API key: requests using it get 401 from now on."""
    settings = read_settings(database_url)

    async def work(keys: ApiKeyStore) -> ApiKey:
        return await keys.revoke(id)

    key = on_api_keys(settings, work)
    say(f"revoked {key.id} ({key.type}, {key.redacted})")


@api_keys_app.command("list", cls=PlainUsage)
def list_api_keys(database_url: DatabaseUrl = None) -> None:
    """List API keys (redacted)."""
    settings = read_settings(database_url)

    async def work(keys: ApiKeyStore) -> list[ApiKey]:
        return await keys.list()

    rows = table("id", "type", "title", "token", "created", "revoked")
    for key in on_api_keys(settings, work):
        rows.add_row(
            key.id, key.type, key.title or "", key.redacted, when(key.created_at), when(key.revoked_at)
        )
    print_table(rows, "no API keys: create one with `paymod api-keys create --type secret`")
