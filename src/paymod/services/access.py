"""Who may call, and which requests were already answered: API keys, ephemeral keys and the
Idempotency-Key records, for the edges (HTTP, dashboard, CLI) that must not reach into persistence.

The stores themselves live in `paymod.persistence`; this module is the service-level door to them:
`AccessStores.of(module)` opens all three on a module's database, and the types the edges handle
are re-exported from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from paymod.persistence.api_keys import ApiKey, ApiKeyStore, ApiKeyType, CreatedApiKey, token_hash
from paymod.persistence.database import Database
from paymod.persistence.ephemeral_keys import DEFAULT_TTL as EPHEMERAL_KEY_TTL
from paymod.persistence.ephemeral_keys import CreatedEphemeralKey, EphemeralKeyStore
from paymod.persistence.idempotency import Claim, IdempotencyStore, Outcome, RequestIdentity


class HasDatabase(Protocol):
    """What `AccessStores.of` reads of a module: its database, and the process its claims name."""

    @property
    def database(self) -> Database: ...

    @property
    def process_id(self) -> str | None: ...


@dataclass(frozen=True)
class AccessStores:
    """The three stores on one database."""

    api_keys: ApiKeyStore
    idempotency: IdempotencyStore
    ephemeral_keys: EphemeralKeyStore

    @classmethod
    def of(cls, module: HasDatabase) -> AccessStores:
        """The stores on the module's database. Idempotency claims name the module's process (read on
        each claim: the heartbeat may start after the stores are made), so a crash frees them."""
        return cls.on(module.database, owner=lambda: module.process_id)

    @classmethod
    def on(cls, database: Database, owner: Callable[[], str | None] = lambda: None) -> AccessStores:
        return cls(
            ApiKeyStore(database), IdempotencyStore(database, owner=owner), EphemeralKeyStore(database)
        )


def api_key_store(database: Database) -> ApiKeyStore:
    """The API keys alone (`paymod api-keys`, which opens no module)."""
    return ApiKeyStore(database)


__all__ = [
    "EPHEMERAL_KEY_TTL",
    "AccessStores",
    "ApiKey",
    "ApiKeyStore",
    "ApiKeyType",
    "Claim",
    "CreatedApiKey",
    "CreatedEphemeralKey",
    "EphemeralKeyStore",
    "HasDatabase",
    "IdempotencyStore",
    "Outcome",
    "RequestIdentity",
    "api_key_store",
    "token_hash",
]
