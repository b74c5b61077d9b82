"""Ephemeral keys (`ephemeral_key` table): a shopper's short-lived access to one account holder.

As Stripe's: the merchant's backend, which knows who is signed in, asks for a key scoped to that
customer's account holder and hands it to the storefront; the storefront's saved-payment-method
calls carry it. The key is shown once and stored as its sha256, like API keys.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select

from paymod.domain.ids import new_id
from paymod.persistence import tables as t
from paymod.persistence.api_keys import token_hash
from paymod.persistence.database import Database
from paymod.persistence.repository import utc_now

EPHEMERAL_KEY = "ephkey"
TOKEN_PREFIX = "ek_"
DEFAULT_TTL = timedelta(hours=1)
MAX_TTL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class CreatedEphemeralKey:
    """A new key and its secret: the only time the secret is known."""

    id: str
    secret: str
    account_holder_id: str
    expires_at: datetime


class EphemeralKeyStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(self, account_holder_id: str, ttl: timedelta = DEFAULT_TTL) -> CreatedEphemeralKey:
        now = utc_now()
        created = CreatedEphemeralKey(
            id=new_id(EPHEMERAL_KEY),
            secret=TOKEN_PREFIX + secrets.token_urlsafe(32),
            account_holder_id=account_holder_id,
            expires_at=now + ttl,
        )
        async with self.database.write() as conn:
            await conn.execute(
                insert(t.ephemeral_key).values(
                    id=created.id,
                    account_holder_id=account_holder_id,
                    token_hash=token_hash(created.secret),
                    expires_at=created.expires_at,
                    created_at=now,
                )
            )
        return created

    async def grants(self, secret: str, account_holder_id: str) -> bool:
        """Whether `secret` is a live key for this account holder."""
        if not secret.startswith(TOKEN_PREFIX):
            return False
        table = t.ephemeral_key
        async with self.database.single() as conn:
            found = await conn.execute(
                select(table.c.id).where(
                    table.c.token_hash == token_hash(secret),
                    table.c.account_holder_id == account_holder_id,
                    table.c.revoked_at.is_(None),
                    table.c.expires_at > utc_now(),
                )
            )
            return found.first() is not None

    async def prune(self) -> int:
        """Deletes expired keys; returns how many."""
        table = t.ephemeral_key
        async with self.database.write() as conn:
            found = await conn.execute(
                delete(table).where(table.c.expires_at <= utc_now()).returning(table.c.id)
            )
            return len(found.all())
