"""Process heartbeats: whether the process holding a claim is still alive.

Every process that connects a `PaymentModule` (a `paymod serve`, a `paymod worker`, a CLI command, an
application using the library) keeps a `process_heartbeat` row and renews it every
`HEARTBEAT_INTERVAL` seconds. Claims (an HTTP Idempotency-Key being executed, a workflow run, a
session being authorized) record their owner's id: a claim whose owner has not beaten for
`STALE_AFTER` seconds belongs to a dead process and another may take it over at once, instead of
waiting for the claim's lease to run out. Writes made under a claim check that the claim is still
theirs, so a process that was only paused (and lost its claim) cannot record anything twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, exists, insert, or_, select, update
from sqlalchemy.sql.elements import ColumnClause

from paymod.domain.ids import new_id
from paymod.persistence.database import Database
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import process_heartbeat

log = logging.getLogger("paymod.processes")

PROCESS_PREFIX = "proc"
#: Seconds between two beats (PAYMOD_HEARTBEAT_INTERVAL).
HEARTBEAT_INTERVAL = float(os.environ.get("PAYMOD_HEARTBEAT_INTERVAL", 2.0))
#: A process that has not beaten for this long is dead (PAYMOD_HEARTBEAT_STALE).
STALE_AFTER = timedelta(seconds=float(os.environ.get("PAYMOD_HEARTBEAT_STALE", 10.0)))
#: Rows of processes dead for this long are removed.
FORGET_AFTER = timedelta(hours=1)


def owner_alive(owner: ColumnElement[str | None] | ColumnClause[str], now: datetime) -> ColumnElement[bool]:
    """The claim's owner is a process that beat recently (a claim without an owner has its lease only)."""
    beating = exists(
        select(process_heartbeat.c.id).where(
            process_heartbeat.c.id == owner, process_heartbeat.c.heartbeat_at > now - STALE_AFTER
        )
    )
    return or_(owner.is_(None), beating)


def claim_held(
    locked_until: ColumnElement[datetime | None] | ColumnClause[datetime],
    owner: ColumnElement[str | None] | ColumnClause[str],
    now: datetime,
) -> ColumnElement[bool]:
    """A claim holds while its lease runs and its owner lives."""
    return and_(locked_until.is_not(None), locked_until > now, owner_alive(owner, now))


def claim_free(
    locked_until: ColumnElement[datetime | None] | ColumnClause[datetime],
    owner: ColumnElement[str | None] | ColumnClause[str],
    now: datetime,
) -> ColumnElement[bool]:
    return or_(locked_until.is_(None), locked_until <= now, ~owner_alive(owner, now))


class Heartbeat:
    """This process's `process_heartbeat` row, renewed in the background while it runs."""

    def __init__(self, database: Database, kind: str) -> None:
        self.database = database
        self.kind = kind
        self.id = new_id(PROCESS_PREFIX)
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        now = utc_now()
        async with self.database.write() as conn:
            await conn.execute(
                insert(process_heartbeat).values(
                    id=self.id,
                    kind=self.kind,
                    hostname=socket.gethostname()[:255],
                    pid=os.getpid(),
                    started_at=now,
                    heartbeat_at=now,
                )
            )
        self._task = asyncio.create_task(self._beat_forever(), name=f"paymod-heartbeat-{self.id}")

    async def beat(self) -> None:
        now = utc_now()
        async with self.database.write() as conn:
            renewed = await conn.execute(
                update(process_heartbeat).where(process_heartbeat.c.id == self.id).values(heartbeat_at=now)
            )
            if not renewed.rowcount:
                # Taken for dead (a pause longer than STALE_AFTER) and forgotten: come back under the same
                # id. Claims it held may have been taken over; their writes check ownership.
                await conn.execute(
                    insert(process_heartbeat).values(
                        id=self.id,
                        kind=self.kind,
                        hostname=socket.gethostname()[:255],
                        pid=os.getpid(),
                        started_at=now,
                        heartbeat_at=now,
                    )
                )
            await conn.execute(
                delete(process_heartbeat).where(process_heartbeat.c.heartbeat_at < now - FORGET_AFTER)
            )

    async def _beat_forever(self) -> None:
        # Stopped by an event, not cancelled: a beat is never cut off in the middle of its transaction.
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), HEARTBEAT_INTERVAL)
            if self._stop.is_set():
                return
            try:
                await self.beat()
            except Exception:
                log.warning("heartbeat failed; claims of this process may be taken over", exc_info=True)

    async def stop(self) -> None:
        """Stops beating and removes the row: this process's claims are free at once."""
        if self._task is not None:
            self._stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            async with self.database.write() as conn:
                await conn.execute(delete(process_heartbeat).where(process_heartbeat.c.id == self.id))
        except Exception:
            log.warning("could not remove the heartbeat of %s", self.id, exc_info=True)
