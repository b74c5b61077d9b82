"""Idempotency-Key records (`idempotency_key` table), shared by every process on the database.

A request claims its key in one transaction; the unique (scope, key) primary key decides which of
several concurrent requests runs. The first response is then stored and later requests replay it.

A claim names its process (`owner`, see `persistence.processes`): once that process stops beating
(a crash, a kill -9), a retry takes the key over within seconds instead of waiting out the lease; the
lease only bounds a claim whose process still runs. Completing checks the claim is still the
process's own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import ColumnElement, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from paymod.persistence import tables as t
from paymod.persistence.database import Database
from paymod.persistence.driver import DriverStatement
from paymod.persistence.processes import owner_alive
from paymod.persistence.repository import utc_now

log = logging.getLogger("paymod.http")

#: Stripe keeps keys at least 24 hours.
RETENTION = timedelta(hours=24)
#: The longest a claim holds while its process lives (a request stuck that long is given up); a claim
#: whose process died is free at once. PAYMOD_IDEMPOTENCY_LEASE (seconds) changes it.
LEASE = timedelta(seconds=float(os.environ.get("PAYMOD_IDEMPOTENCY_LEASE", 300)))


class Outcome(Enum):
    CLAIMED = "claimed"
    REPLAY = "replay"
    IN_FLIGHT = "in_flight"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: Outcome
    status: int | None = None
    body: str | None = None


@dataclass(frozen=True, slots=True)
class RequestIdentity:
    """Who sent it (`scope`), with which key, and what was asked."""

    scope: str
    key: str
    method: str
    path: str
    fingerprint: str


_KEYS = t.idempotency_key
# A new key's claim: one statement, atomic by itself (no transaction on PostgreSQL).
_CLAIM_NEW = {
    "postgresql": DriverStatement(pg_insert(_KEYS).on_conflict_do_nothing().returning(_KEYS.c.key)),
    "sqlite": DriverStatement(sqlite_insert(_KEYS).on_conflict_do_nothing().returning(_KEYS.c.key)),
}


def _complete_statement(owned: bool) -> DriverStatement:
    table = _KEYS
    mine = table.c.owner == bindparam("_owner") if owned else table.c.owner.is_(None)
    return DriverStatement(
        update(table).where(
            table.c.scope == bindparam("_scope"),
            table.c.key == bindparam("_key"),
            table.c.response_status.is_(None),
            mine,
        )
    )


# The response stored by the request that holds the claim (named by owner, or unowned).
_COMPLETE = {True: _complete_statement(True), False: _complete_statement(False)}


class IdempotencyStore:
    """`owner`: this process's id, named on the claims it makes (None: claims lapse with the lease)."""

    def __init__(self, database: Database, owner: Callable[[], str | None] = lambda: None) -> None:
        self.database = database
        self._owner = owner

    def _mine(self) -> ColumnElement[bool]:
        owner = self._owner()
        table = t.idempotency_key
        return table.c.owner.is_(None) if owner is None else table.c.owner == owner

    async def claim(self, request: RequestIdentity, *, now: datetime | None = None) -> Claim:
        now = now or utc_now()
        table = t.idempotency_key
        where = (table.c.scope == request.scope) & (table.c.key == request.key)
        values = {
            "scope": request.scope,
            "key": request.key,
            "method": request.method,
            "path": request.path,
            "fingerprint": request.fingerprint,
            "locked_until": now + LEASE,
            "owner": self._owner(),
            "created_at": now,
        }
        async with self.database.write_one() as conn:
            if await _CLAIM_NEW[self.database.dialect].first(conn, values) is not None:
                return Claim(Outcome.CLAIMED)
        # The key exists (or existed a moment ago: released meanwhile, it is inserted again below):
        # decide under its row lock.
        dialect_insert = pg_insert if self.database.is_postgresql else sqlite_insert
        async with self.database.write() as conn:
            inserted = (
                await conn.execute(
                    dialect_insert(table).values(values).on_conflict_do_nothing().returning(table.c.key)
                )
            ).first()
            if inserted is not None:
                return Claim(Outcome.CLAIMED)
            row = (
                await conn.execute(
                    select(table, owner_alive(table.c.owner, now).label("owner_alive"))
                    .where(where)
                    .with_for_update(of=table)
                )
            ).one()
            if row.created_at <= now - RETENTION:
                # An expired key is a new key (Stripe: reusing a pruned key creates a new request).
                await conn.execute(
                    update(table)
                    .where(where)
                    .values({**values, "response_status": None, "response_body": None, "completed_at": None})
                )
                return Claim(Outcome.CLAIMED)
            if (row.method, row.path, row.fingerprint) != (request.method, request.path, request.fingerprint):
                return Claim(Outcome.MISMATCH)
            if row.response_status is not None:
                return Claim(Outcome.REPLAY, status=row.response_status, body=row.response_body)
            if row.locked_until is not None and row.locked_until > now and row.owner_alive:
                return Claim(Outcome.IN_FLIGHT)
            await conn.execute(
                update(table).where(where).values(locked_until=now + LEASE, owner=self._owner())
            )
            return Claim(Outcome.CLAIMED)

    async def complete(self, request: RequestIdentity, status: int, body: str) -> None:
        owner = self._owner()
        async with self.database.write_one() as conn:
            stored = await _COMPLETE[owner is not None].execute(
                conn,
                {
                    "_scope": request.scope,
                    "_key": request.key,
                    "_owner": owner,
                    "response_status": status,
                    "response_body": body,
                    "completed_at": utc_now(),
                    "locked_until": None,
                },
            )
        if not stored:
            # Taken over while this process was taken for dead: the request that took it answers.
            log.warning("an Idempotency-Key claim was taken over; this response is not stored")

    async def release(self, request: RequestIdentity) -> None:
        """Forgets a claim whose request never started executing, so it may be retried."""
        table = t.idempotency_key
        async with self.database.write() as conn:
            await conn.execute(
                delete(table).where(
                    table.c.scope == request.scope,
                    table.c.key == request.key,
                    table.c.response_status.is_(None),
                    self._mine(),
                )
            )

    async def prune(self, *, now: datetime | None = None) -> int:
        """Deletes keys older than the retention period; returns how many."""
        cutoff = (now or utc_now()) - RETENTION
        table = t.idempotency_key
        async with self.database.write() as conn:
            result = await conn.execute(
                delete(table).where(table.c.created_at <= cutoff).returning(table.c.key)
            )
            return len(result.all())
