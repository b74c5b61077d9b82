"""The database: engine set-up per dialect, transactions, and the errors they turn into.

PostgreSQL is the production engine; SQLite (WAL, `BEGIN IMMEDIATE` for writes) is the embedded
default. Write transactions on SQLite take the database's write lock up front, which serializes the
capture and refund guards the way `SELECT ... FOR UPDATE` does on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from paymod.domain.errors import ConflictError, InvalidDataError
from paymod.persistence import outbox
from paymod.persistence.types import dumps

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./paymod.db"
LOCK_TIMEOUT_MS = 3000
AUTOCOMMIT_OPTION = "paymod_autocommit"
#: Seconds a caller waits for its turn at the pool (SQLAlchemy's own pool timeout).
POOL_TIMEOUT = 30.0
CONFLICT_MESSAGE = (
    "The request conflicted with another request. "
    "You may retry the request with the provided Idempotency-Key."
)


def normalize_url(database_url: str | URL) -> URL:
    """Accepts plain `sqlite://` and `postgresql://` URLs and picks the async drivers."""
    url = make_url(database_url)
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        url = url.set(drivername="sqlite+aiosqlite")
    elif url.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+asyncpg")
    if url.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise ValueError(
            f"unsupported database URL {url.render_as_string()!r}: use sqlite:// or postgresql://"
        )
    return url


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)


def _is_lock_failure(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    sqlstate = _sqlstate(exc)
    return sqlstate in ("55P03", "40001", "40P01") or "database is locked" in text or "lock timeout" in text


@asynccontextmanager
async def _as_paymod_errors() -> AsyncIterator[None]:
    """A lock that could not be taken in time becomes a 409 `conflict`, data the database cannot
    store a 400 `invalid_data`."""
    try:
        yield
    except OperationalError as exc:
        if _is_lock_failure(exc):
            raise ConflictError(CONFLICT_MESSAGE) from exc
        raise
    except DBAPIError as exc:
        if _is_lock_failure(exc):
            raise ConflictError(CONFLICT_MESSAGE) from exc
        if isinstance(exc, DataError) or str(_sqlstate(exc)).startswith("22"):
            # A data exception (e.g. a NUL character PostgreSQL cannot store): bad input, not a fault.
            raise InvalidDataError("A value cannot be stored (invalid characters or out of range).") from exc
        raise


class Database:
    """One engine and the transactions paymod runs on it."""

    def __init__(self, database_url: str | URL, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = normalize_url(database_url)
        self.dialect = "sqlite" if self.url.drivername.startswith("sqlite") else "postgresql"
        kwargs: dict[str, Any] = {"echo": echo, "json_serializer": dumps}
        # Connections the pool may open beyond pool_size (10 is SQLAlchemy's default, kept for SQLite).
        max_overflow = pool_size * 2 if self.dialect == "postgresql" else 10
        if self.dialect == "postgresql":
            kwargs.update(
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_pre_ping=False,
                connect_args={"server_settings": {"lock_timeout": str(LOCK_TIMEOUT_MS)}},
            )
        else:
            if self.url.database in (None, "", ":memory:"):
                raise ValueError("paymod needs a SQLite file (an in-memory database is not shared)")
            kwargs.update(
                pool_size=pool_size,
                max_overflow=max_overflow,
                connect_args={"timeout": LOCK_TIMEOUT_MS / 1000 * 10},
            )
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        # Callers get the pool's connections in the order they asked. SQLAlchemy's pool lets a newcomer
        # take a connection that was being handed to a waiter, so under load (many requests, a busy
        # event loop) some waited out the pool's timeout while later ones passed: 69 of 800 flows
        # with 200 in flight (benchmarks.latency). At most as many callers as the pool has
        # connections go past this gate, so none waits in the pool itself.
        #: Connections the pool opens at most.
        self.capacity = pool_size + max_overflow
        self._turns = asyncio.Semaphore(self.capacity)
        #: The tasks that went past the gate, and how many times each (a task nests transactions).
        self._inside: dict[asyncio.Task[Any], int] = {}
        self._waiting = 0
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)
        self._writer = self.engine.execution_options(paymod_write=True)
        # One read statement needs no transaction: without it, PostgreSQL is spared the BEGIN and
        # ROLLBACK round trips (on SQLite, the `begin` listener below sends no BEGIN).
        autocommit: dict[str, Any] = {AUTOCOMMIT_OPTION: True}
        if self.dialect == "postgresql":
            autocommit["isolation_level"] = "AUTOCOMMIT"
        self._single = self.engine.execution_options(**autocommit)
        # PostgreSQL's READ COMMITTED gives each statement a snapshot of its own, in a transaction or
        # not: a read's BEGIN and ROLLBACK would buy it nothing but two round trips. SQLite's read
        # transaction does hold one snapshot for all its statements, at no round trip.
        self._reader = self._single if self.dialect == "postgresql" else self.engine

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    def waiting(self) -> int:
        """How many callers wait for their turn at the pool."""
        return self._waiting

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """Waits (first come, first served) until a connection is free for this caller; a task that
        holds one already goes on (it must not wait for itself)."""
        task = asyncio.current_task()
        assert task is not None, "paymod's database is used from asyncio tasks"
        inside = self._inside.get(task, 0)
        if not inside:
            queued = self._turns.locked()
            self._waiting += queued
            try:
                async with asyncio.timeout(POOL_TIMEOUT):
                    await self._turns.acquire()
            except TimeoutError:
                message = f"No database connection was free within {POOL_TIMEOUT:g} s"
                raise PoolTimeoutError(message) from None
            finally:
                self._waiting -= queued
        self._inside[task] = inside + 1
        try:
            yield
        finally:
            if inside:
                self._inside[task] = inside
            else:
                del self._inside[task]
                self._turns.release()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed on success, rolled back on any error."""
        async with _as_paymod_errors(), self._turn(), self._writer.begin() as conn:
            try:
                yield conn
                await outbox.flush(conn)
            finally:
                outbox.discard(conn)

    @asynccontextmanager
    async def write_one(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one write statement, atomic by itself, which also writes the events
        buffered before it (`outbox.BUFFERED_EVENTS`): on PostgreSQL it is sent without BEGIN and
        COMMIT (two round trips fewer); on SQLite this is `write`, whose events are written at the
        commit."""
        if not self.is_postgresql:
            async with self.write() as conn:
                yield conn
            return
        async with _as_paymod_errors(), self._turn(), self._single.connect() as conn:
            try:
                yield conn
                if outbox.take(conn):
                    raise RuntimeError("write_one's statement left events unwritten: use write()")
            finally:
                outbox.discard(conn)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads, no write lock. On SQLite its statements share one snapshot (a read
        transaction); on PostgreSQL each statement sees what was committed when it started, as it
        would in a READ COMMITTED transaction, so none is opened."""
        async with self._turn(), self._reader.connect() as conn:
            yield conn

    @asynccontextmanager
    async def single(self) -> AsyncIterator[AsyncConnection]:
        """A connection outside any transaction, for one read statement (no snapshot is shared)."""
        async with self._turn(), self._single.connect() as conn:
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let paymod emit BEGIN itself, so writes can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={LOCK_TIMEOUT_MS * 10}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(AUTOCOMMIT_OPTION):
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("paymod_write") else "BEGIN")
