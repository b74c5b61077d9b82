"""API keys: random tokens shown once, stored as their sha256 (`api_key` table)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select, update

from paymod.domain.errors import InvalidDataError, NotFoundError
from paymod.domain.ids import new_id
from paymod.persistence import tables as t
from paymod.persistence.database import Database
from paymod.persistence.repository import utc_now

API_KEY = "apk"


class ApiKeyType(StrEnum):
    SECRET = "secret"
    PUBLISHABLE = "publishable"


_TOKEN_PREFIX = {ApiKeyType.SECRET: "sk_", ApiKeyType.PUBLISHABLE: "pk_"}


def token_hash(token: str) -> str:
    """sha256 is enough: tokens carry 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    type: ApiKeyType
    title: str | None
    redacted: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> ApiKey:
        return cls(
            id=row.id,
            type=ApiKeyType(row.type),
            title=row.title,
            redacted=row.redacted,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    """A new key and its token: the only time the token is known."""

    api_key: ApiKey
    token: str


class ApiKeyStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(self, type: ApiKeyType | str, title: str | None = None) -> CreatedApiKey:
        try:
            key_type = ApiKeyType(type)
        except ValueError:
            raise InvalidDataError(f"API key type must be secret or publishable, not {type!r}") from None
        token = _TOKEN_PREFIX[key_type] + secrets.token_urlsafe(32)
        values = {
            "id": new_id(API_KEY),
            "type": key_type.value,
            "title": title,
            "token_hash": token_hash(token),
            "redacted": f"{token[:3]}***{token[-4:]}",
            "created_at": utc_now(),
        }
        async with self.database.write() as conn:
            row = (await conn.execute(insert(t.api_key).values(values).returning(*t.api_key.c))).one()
        return CreatedApiKey(api_key=ApiKey.of(row), token=token)

    async def revoke(self, id: str) -> ApiKey:
        table = t.api_key
        async with self.database.write() as conn:
            await conn.execute(
                update(table)
                .where(table.c.id == id, table.c.revoked_at.is_(None))
                .values(revoked_at=utc_now())
            )
            row = (await conn.execute(select(table).where(table.c.id == id))).first()
        if row is None:
            raise NotFoundError(f"ApiKey with id: {id} was not found")
        return ApiKey.of(row)

    async def list(self) -> list[ApiKey]:
        async with self.database.read() as conn:
            rows = (await conn.execute(select(t.api_key).order_by(t.api_key.c.created_at))).all()
        return [ApiKey.of(r) for r in rows]

    async def verify(self, token: str, type: ApiKeyType) -> ApiKey | None:
        """The live key of that type whose token this is, or None."""
        table = t.api_key
        stmt = select(table).where(
            table.c.token_hash == token_hash(token), table.c.type == type.value, table.c.revoked_at.is_(None)
        )
        async with self.database.read() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else ApiKey.of(row)
