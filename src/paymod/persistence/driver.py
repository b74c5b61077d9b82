"""Statements of the money path sent on the driver's own connection.

A statement costs the process about 0.10-0.16 ms of CPU through SQLAlchemy's asyncio layer (result
metadata, execution context, greenlet hops) and about 0.04 ms on asyncpg itself
(`python -m benchmarks.statement_cost`). A `DriverStatement` is built once from a Core or text
statement; on PostgreSQL it is compiled once per set of parameter names by SQLAlchemy (same SQL,
same bind and result conversions as SQLAlchemy applies) and sent on the asyncpg connection under the
`AsyncConnection`, in that connection's transaction. Elsewhere (SQLite) it runs through SQLAlchemy.

What stays the same as a statement sent through SQLAlchemy:
- the transaction: the one SQLAlchemy began on the connection (started first when it has not sent a
  statement yet), committed or rolled back by it;
- the errors: the driver's exceptions become SQLAlchemy's (`IntegrityError`, `OperationalError`, ...)
  with the same `orig`, so `Database.write` maps lock failures and bad data as before;
- the `before_cursor_execute` event, so what counts statements still counts these.

A statement that needs SQLAlchemy's execution (defaults computed in Python, expanding `IN`
parameters) is sent through SQLAlchemy.

This leans on the internals of SQLAlchemy's asyncpg adapter (its transaction start, its cache of
prepared statements, its error translation); `tests/integration/test_driver_statements.py` fails if
they change, and the dependency is held below SQLAlchemy 2.2.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

Row = dict[str, Any]
_Processor = Callable[[Any], Any] | None


@dataclass(slots=True)
class _Compiled:
    """One statement compiled for PostgreSQL with one set of parameter names."""

    sql: str
    #: (parameter name, value when the caller gives none, bind conversion) in `$n` order.
    binds: tuple[tuple[str, Any, _Processor], ...]
    #: Result types by column name (from the statement's declared columns).
    result_types: dict[str, Any]
    #: (column name, result conversion) per column of the rows, known after the first run.
    columns: list[tuple[str, _Processor]] | None = None
    #: False when SQLAlchemy's own execution is needed (defaults computed in Python, expanding binds).
    direct: bool = True


@dataclass(slots=True)
class DriverStatement:
    """A statement built once and sent on the driver's connection on PostgreSQL."""

    statement: Executable
    _compiled: dict[tuple[str, ...], _Compiled] = field(default_factory=dict)

    def _compile(self, dialect: Dialect, names: tuple[str, ...]) -> _Compiled:
        compiled = cast(ClauseElement, self.statement).compile(dialect=dialect, column_keys=list(names))
        assert isinstance(compiled, SQLCompiler)
        direct = not (
            compiled.insert_prefetch
            or compiled.update_prefetch
            or compiled.literal_execute_params
            or compiled.post_compile_params
        )
        processors: Mapping[str, Any] = compiled._bind_processors
        return _Compiled(
            sql=compiled.string,
            binds=tuple(
                (name, compiled.binds[name].effective_value, processors.get(name))
                for name in compiled.positiontup or ()
            ),
            result_types={entry[0]: entry[3] for entry in compiled._result_columns},
            direct=direct,
        )

    async def rows(self, conn: AsyncConnection, params: Mapping[str, Any] | None = None) -> list[Row]:
        """The rows the statement returns, as dicts."""
        return (await self._run(conn, params or {}))[0]

    async def first(self, conn: AsyncConnection, params: Mapping[str, Any] | None = None) -> Row | None:
        found = (await self._run(conn, params or {}))[0]
        return found[0] if found else None

    async def scalar(self, conn: AsyncConnection, params: Mapping[str, Any] | None = None) -> Any:
        found = (await self._run(conn, params or {}))[0]
        return next(iter(found[0].values())) if found else None

    async def execute(self, conn: AsyncConnection, params: Mapping[str, Any] | None = None) -> int:
        """Runs the statement; the number of rows it changed or returned."""
        return (await self._run(conn, params or {}))[1]

    async def _run(self, conn: AsyncConnection, params: Mapping[str, Any]) -> tuple[list[Row], int]:
        if conn.dialect.name != "postgresql":
            return await self._through_sqlalchemy(conn, params)
        names = tuple(sorted(params))
        compiled = self._compiled.get(names)
        if compiled is None:
            compiled = self._compiled[names] = self._compile(conn.dialect, names)
        if not compiled.direct:
            return await self._through_sqlalchemy(conn, params)
        args = []
        try:
            for name, default, processor in compiled.binds:
                value = params.get(name, default)
                args.append(value if processor is None else processor(value))
        except Exception as error:  # a value the bind cannot convert, as SQLAlchemy reports it
            dbapi_error = conn.dialect.loaded_dbapi.Error
            raise DBAPIError.instance(compiled.sql, dict(params), error, dbapi_error) from error
        sync = conn.sync_connection
        assert sync is not None
        for listener in sync.dispatch.before_cursor_execute:
            listener(sync, None, compiled.sql, tuple(args), None, False)
        adapted: Any = sync.connection.dbapi_connection
        try:
            async with adapted._execute_mutex:
                if adapted._transaction is None:
                    # The transaction SQLAlchemy began sends BEGIN with its first statement.
                    await adapted._start_transaction()
                # The adapter's cache of prepared statements (asyncpg's `prepare` would parse anew).
                prepared, attributes = await adapted._prepare(
                    compiled.sql, getattr(conn.dialect, "_invalidate_schema_cache_asof", 0)
                )
                records = await prepared.fetch(*args)
                status = prepared.get_statusmsg() or ""
        except Exception as error:
            raise _translated(conn.dialect, adapted, compiled.sql, args, error) from error
        columns = compiled.columns
        if columns is None:
            columns = compiled.columns = _result_columns(conn.dialect, compiled.result_types, attributes)
        rows = [
            {
                name: (convert(value) if convert else value)
                for (name, convert), value in zip(columns, record, strict=True)
            }
            for record in records
        ]
        return rows, _count(status, len(rows))

    async def _through_sqlalchemy(
        self, conn: AsyncConnection, params: Mapping[str, Any]
    ) -> tuple[list[Row], int]:
        result = await conn.execute(self.statement, dict(params))
        if not result.returns_rows:
            return [], result.rowcount
        rows = [dict(row) for row in result.mappings()]
        return rows, len(rows)


def _result_columns(
    dialect: Dialect, types: Mapping[str, Any], attributes: Sequence[Any]
) -> list[tuple[str, _Processor]]:
    columns: list[tuple[str, _Processor]] = []
    for attribute in attributes:
        type_ = types.get(attribute.name)
        processor = None if type_ is None else type_._cached_result_processor(dialect, attribute.type.oid)
        columns.append((attribute.name, processor))
    return columns


def _count(status: str, returned: int) -> int:
    """Rows changed, from the command tag (`UPDATE 3`, `INSERT 0 1`); rows returned otherwise."""
    tag = status.split()
    if tag and tag[0] in ("UPDATE", "DELETE", "INSERT", "MERGE") and tag[-1].isdigit():
        return int(tag[-1])
    return returned


def _translated(
    dialect: Dialect, adapted: Any, sql: str, args: Sequence[Any], error: Exception
) -> BaseException:
    """The driver's error as SQLAlchemy raises it for a statement (DBAPI error kept as `orig`)."""
    try:
        adapted._handle_exception(error)
    except Exception as dbapi_error:  # the DBAPI-shaped error SQLAlchemy's adapter makes of it
        if isinstance(dbapi_error, dialect.loaded_dbapi.Error):
            return DBAPIError.instance(
                sql, tuple(args), dbapi_error, dialect.loaded_dbapi.Error, dialect=dialect
            )
        return dbapi_error
    return error
