"""Workflow runs in the database (`workflow_run`): claims, recovery points and the journal.

A new run is not written on its own: its row is inserted by its first write (the first local step's
transaction or the journal entry before its first remote call), so a run costs one extra statement
per step and nothing before its first step. Two callers racing on one key meet on the unique index;
the loser gets the winner's run (its result, its error, or a conflict while it runs).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain.errors import ConflictError, DuplicateError, IdempotencyError
from paymod.domain.ids import new_id
from paymod.domain.statuses import RunStatus
from paymod.durable.engine import Run
from paymod.persistence.database import Database
from paymod.persistence.driver import DriverStatement
from paymod.persistence.processes import claim_free
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import workflow_run

LEASE_ENV = "PAYMOD_WORKFLOW_LEASE"
DEFAULT_LEASE = 30.0
RUN_PREFIX = "wfr"
_FINAL = (RunStatus.SUCCEEDED.value, RunStatus.FAILED.value)
_RESUMABLE = (RunStatus.RUNNING.value, RunStatus.SUSPENDED.value)


def lease() -> timedelta:
    return timedelta(seconds=float(os.environ.get(LEASE_ENV, DEFAULT_LEASE)))


def _run(row: Any) -> Run:
    return Run(
        id=row["id"],
        name=row["name"],
        idempotency_key=row["idempotency_key"],
        status=RunStatus(row["status"]),
        input=row["input"],
        steps=dict(row["steps"] or {}),
        result=row["result"],
        error=row["error"],
    )


class DatabaseRunStore:
    """`owner`: this process's id (see `persistence.processes`), named on every run it claims; a run's
    writes check it, so a process that lost its claim cannot record anything more for the run."""

    def __init__(self, database: Database, owner: Callable[[], str | None] = lambda: None) -> None:
        self.database = database
        self._owner = owner
        self._unsaved: dict[str, str] = {}  # run id -> fingerprint, for runs not inserted yet
        self._by_key = select(workflow_run).where(
            workflow_run.c.name == bindparam("name"), workflow_run.c.idempotency_key == bindparam("key")
        )
        self._insert = DriverStatement(insert(workflow_run))
        self._update_owned = DriverStatement(
            update(workflow_run).where(
                workflow_run.c.id == bindparam("_pk"), workflow_run.c.owner == bindparam("_owner")
            )
        )
        self._update_unowned = DriverStatement(
            update(workflow_run).where(workflow_run.c.id == bindparam("_pk"), workflow_run.c.owner.is_(None))
        )

    def _mine(self) -> ColumnElement[bool]:
        owner = self._owner()
        return workflow_run.c.owner.is_(None) if owner is None else workflow_run.c.owner == owner

    async def start(
        self, name: str, key: str, input: Any, fingerprint: str, *, fresh: bool = False
    ) -> tuple[Run, bool]:
        row = None
        if not fresh:
            async with self.database.single() as conn:
                row = (await conn.execute(self._by_key, {"name": name, "key": key})).mappings().first()
        if row is None:
            run = Run(
                id=new_id(RUN_PREFIX), name=name, idempotency_key=key, status=RunStatus.RUNNING, input=input
            )
            self._unsaved[run.id] = fingerprint
            return run, True
        return await self.claim(dict(row), fingerprint), False

    async def stale(self, older_than: timedelta) -> list[dict[str, Any]]:
        """Runs left running or suspended, unclaimed and untouched for `older_than`, oldest first: the
        reconciler's work (each is `claim`ed before it is resumed)."""
        now = utc_now()
        stmt = (
            select(workflow_run)
            .where(
                workflow_run.c.status.in_(_RESUMABLE),
                claim_free(workflow_run.c.locked_until, workflow_run.c.owner, now),
                workflow_run.c.updated_at < now - older_than,
            )
            .order_by(workflow_run.c.updated_at)
        )
        async with self.database.read() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    async def claim(self, row: dict[str, Any], fingerprint: str) -> Run:
        if row["fingerprint"] != fingerprint:
            raise IdempotencyError(
                "Keys for idempotent requests can only be used with the same parameters they were first "
                f"used with: {row['idempotency_key']}"
            )
        run = _run(row)
        if run.status in _FINAL:
            return run
        now = utc_now()
        async with self.database.write() as conn:
            claimed = await conn.execute(
                update(workflow_run)
                .where(
                    workflow_run.c.id == run.id,
                    workflow_run.c.status.in_(_RESUMABLE),
                    claim_free(workflow_run.c.locked_until, workflow_run.c.owner, now),
                )
                .values(
                    status=RunStatus.RUNNING.value,
                    locked_until=now + lease(),
                    owner=self._owner(),
                    updated_at=now,
                )
                .returning(workflow_run)
            )
            fresh = claimed.mappings().first()
        if fresh is None:
            raise ConflictError(f"The {run.name} run for this idempotency key is still in progress.")
        return _run(dict(fresh))

    async def _write(self, conn: AsyncConnection, run: Run, writes: dict[str, dict[str, Any]]) -> None:
        steps = {**run.steps, **writes}
        now = utc_now()
        final = run.status in _FINAL
        values: dict[str, Any] = {
            "steps": steps,
            "status": RunStatus(run.status).value,
            "result": run.result,
            "error": run.error,
            "updated_at": now,
            "locked_until": None if final or run.status == RunStatus.SUSPENDED else now + lease(),
            "completed_at": now if final else None,
        }
        fingerprint = self._unsaved.get(run.id)
        if fingerprint is not None:
            try:
                await self._insert.execute(
                    conn,
                    {
                        "id": run.id,
                        "name": run.name,
                        "idempotency_key": run.idempotency_key,
                        "fingerprint": fingerprint,
                        "input": run.input,
                        "owner": self._owner(),
                        "created_at": now,
                        **values,
                    },
                )
            except (DuplicateError, IntegrityError):
                raise ConflictError(
                    f"Another {run.name} run with this idempotency key started at the same time."
                ) from None
        else:
            owner = self._owner()
            statement = self._update_unowned if owner is None else self._update_owned
            written = await statement.execute(conn, {"_pk": run.id, "_owner": owner, **values})
            if not written:
                # Another process took the run over (this one was taken for dead): nothing of this
                # transaction may commit.
                raise ConflictError(f"The {run.name} run was taken over by another process.")
        run.steps = steps

    def _saved(self, run: Run) -> None:
        self._unsaved.pop(run.id, None)

    def local_step(self, run: Run, writes: dict[str, dict[str, Any]]) -> AbstractAsyncContextManager[Any]:
        return self._local_step(run, writes)

    @asynccontextmanager
    async def _local_step(
        self, run: Run, writes: dict[str, dict[str, Any]]
    ) -> AsyncIterator[AsyncConnection]:
        async with self.database.write() as conn:
            yield conn
            await self._write(conn, run, writes)
        self._saved(run)

    async def record(self, run: Run, writes: dict[str, dict[str, Any]]) -> None:
        if run.id in self._unsaved and not writes and run.status not in _FINAL:
            return  # nothing happened yet: no row to write
        async with self.database.write() as conn:
            await self._write(conn, run, writes)
        self._saved(run)

    async def finish(self, run: Run, writes: dict[str, dict[str, Any]], conn: Any = None) -> None:
        await self.record(run, writes)

    async def release(self, run: Run) -> None:
        if run.id in self._unsaved:
            self._unsaved.pop(run.id, None)
            return
        async with self.database.write() as conn:
            await conn.execute(
                update(workflow_run)
                .where(workflow_run.c.id == run.id, self._mine())
                .values(locked_until=None, updated_at=utc_now())
            )
