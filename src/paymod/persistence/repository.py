"""Generic repository over a Core table: typed filters, paging, soft delete, row locks.

Rows travel as plain dicts keyed by column name; the service layer turns them into DTOs.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Insert,
    Numeric,
    Select,
    Table,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.dml import ReturningDelete
from sqlalchemy.sql.elements import BindParameter

from paymod.domain.errors import DuplicateError, InvalidDataError, NotFoundError, PaymodError
from paymod.domain.ids import new_id
from paymod.persistence.driver import DriverStatement
from paymod.persistence.tables import LIVE
from paymod.persistence.types import Amount

Row = dict[str, Any]

_OPERATORS = {"$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$like", "$ilike"}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FindConfig:
    """Medusa's find config: paging, order, relations and soft-deleted rows."""

    skip: int = 0
    take: int | None = None
    order: Mapping[str, str] = field(default_factory=dict)
    relations: Sequence[str] = ()
    select: Sequence[str] = ()
    with_deleted: bool = False

    @classmethod
    def of(cls, config: FindConfig | Mapping[str, Any] | None) -> FindConfig:
        if config is None:
            return cls()
        if isinstance(config, FindConfig):
            return config
        unknown = set(config) - {"skip", "take", "order", "relations", "select", "with_deleted"}
        if unknown:
            raise InvalidDataError(f"Unknown find config option(s): {', '.join(sorted(unknown))}")
        skip = config.get("skip") or 0
        take = config.get("take")
        if (
            not isinstance(skip, int)
            or skip < 0
            or (take is not None and (not isinstance(take, int) or take < 0))
        ):
            raise InvalidDataError("skip and take must be non-negative integers")
        return cls(
            skip=skip,
            take=take,
            order=dict(config.get("order") or {}),
            relations=tuple(config.get("relations") or ()),
            select=tuple(config.get("select") or ()),
            with_deleted=bool(config.get("with_deleted", False)),
        )


@dataclass(frozen=True, slots=True)
class Entity:
    name: str
    table: Table
    prefix: str | None
    searchable: tuple[str, ...] = ()
    filterable: tuple[str, ...] = ()

    def column(self, name: str) -> Any:
        try:
            return self.table.c[name]
        except KeyError:
            raise InvalidDataError(f"{self.name} has no field {name!r}") from None


class Repository:
    """Reads and writes the rows of one entity."""

    def __init__(self, entity: Entity, dialect: str) -> None:
        self.entity = entity
        self.table = entity.table
        self.dialect = dialect
        self._has_deleted_at = "deleted_at" in self.table.c
        # Statements of the common single-row operations, built once: building a Core statement costs
        # about as much as sending it (issue 7's profile), and the compiled form is cached by SQLAlchemy.
        self._insert: Insert = insert(self.table).returning(*self.table.c)
        # One row at a time on the driver's connection (persistence.driver); many through SQLAlchemy.
        self._insert_one = DriverStatement(self._insert)
        self._update = DriverStatement(
            update(self.table).where(self.table.c.id == bindparam("_pk")).returning(*self.table.c)
        )
        self._delete: ReturningDelete[Any] = (
            delete(self.table).where(self.table.c.id.in_(bindparam("_pks", expanding=True)))
        ).returning(self.table.c.id)
        self._get: dict[bool, Select[Any]] = {}
        self._get_on_driver: dict[bool, DriverStatement] = {}
        self._children: dict[str, Executable] = {}

    # -- writes ---------------------------------------------------------------------------
    async def insert(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> list[Row]:
        if not rows:
            return []
        now = utc_now()
        values = [self.with_defaults(row, now) for row in rows]
        try:
            if len(values) == 1:
                return await self._insert_one.rows(conn, values[0])
            result = await conn.execute(self._insert, values)
        except IntegrityError as exc:
            raise self.integrity_error(exc, values) from exc
        return [dict(r) for r in result.mappings()]

    def with_defaults(self, row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """A new row's values with an id (the entity's prefix) and timestamps where it has none."""
        value = dict(row)
        if self.entity.prefix and not value.get("id"):
            value["id"] = new_id(self.entity.prefix)
        if "created_at" in self.table.c:
            value.setdefault("created_at", now)
        if "updated_at" in self.table.c:
            value.setdefault("updated_at", now)
        return value

    def integrity_error(self, exc: IntegrityError, values: Sequence[Mapping[str, Any]]) -> PaymodError:
        """The error to raise for a constraint violated by writing `values`."""
        text = str(exc.orig)
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        ids = ", ".join(str(v.get("id")) for v in values)
        if sqlstate == "23503" or "FOREIGN KEY" in text.upper():
            return NotFoundError(f"{self.entity.name} {ids} refers to a record that does not exist.")
        if sqlstate == "23505" or "UNIQUE" in text.upper():
            return DuplicateError(f"{self.entity.name} with id: {ids}, already exists.")
        return InvalidDataError(f"{self.entity.name} {ids} violates a constraint of the data model.")

    async def update(self, conn: AsyncConnection, id: str, values: Mapping[str, Any]) -> Row:
        changes = dict(values)
        if "updated_at" in self.table.c:
            changes.setdefault("updated_at", utc_now())
        row = await self._update.first(conn, {"_pk": id, **changes})
        if row is None:
            raise self.not_found(id)
        return row

    async def update_where(
        self, conn: AsyncConnection, where: ColumnElement[bool], values: Mapping[str, Any]
    ) -> list[Row]:
        changes = dict(values)
        if "updated_at" in self.table.c:
            changes.setdefault("updated_at", utc_now())
        stmt = update(self.table).where(where).values(changes).returning(*self.table.c)
        return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    async def delete(self, conn: AsyncConnection, ids: Sequence[str]) -> list[str]:
        if not ids:
            return []
        return list((await conn.execute(self._delete, {"_pks": list(ids)})).scalars())

    async def soft_delete(self, conn: AsyncConnection, ids: Sequence[str]) -> list[str]:
        now = utc_now()
        stmt = (
            update(self.table)
            .where(self.table.c.id.in_(ids), self.table.c.deleted_at.is_(None))
            .values(deleted_at=now, updated_at=now)
            .returning(self.table.c.id)
        )
        return list((await conn.execute(stmt)).scalars())

    async def restore(self, conn: AsyncConnection, ids: Sequence[str]) -> list[str]:
        stmt = (
            update(self.table)
            .where(self.table.c.id.in_(ids), self.table.c.deleted_at.is_not(None))
            .values(deleted_at=None, updated_at=utc_now())
            .returning(self.table.c.id)
        )
        return list((await conn.execute(stmt)).scalars())

    # -- reads ----------------------------------------------------------------------------
    def not_found(self, id: object) -> NotFoundError:
        return NotFoundError(f"{self.entity.name} with id: {id} was not found")

    async def get(
        self, conn: AsyncConnection, id: str, *, lock: bool = False, with_deleted: bool = False
    ) -> Row:
        """One row by id; `lock` takes `SELECT ... FOR NO KEY UPDATE`, which does not conflict with the
        KEY SHARE locks foreign keys take when a child row is inserted, so writers never deadlock on a
        parent."""
        statement = self._get_on_driver.get(lock)
        if statement is None:
            statement = self._get_on_driver[lock] = DriverStatement(self.get_statement(lock=lock))
        row = await statement.first(conn, {"_pk": id})
        if row is None or (self._has_deleted_at and not with_deleted and row["deleted_at"] is not None):
            raise self.not_found(id)
        return row

    def get_statement(self, *, lock: bool = False) -> Select[Any]:
        """`get`'s statement (`_pk` bound). It finds the row by its key alone and `get` checks that it
        is live: with `deleted_at IS NULL` in the WHERE clause, a planner without statistics may pick
        the partial index on `deleted_at`, which lists every live row."""
        stmt = self._get.get(lock)
        if stmt is None:
            stmt = select(self.table).where(self.table.c.id == bindparam("_pk"))
            if lock:
                stmt = stmt.with_for_update(key_share=True)
            self._get[lock] = stmt
        return stmt

    async def find(
        self,
        conn: AsyncConnection,
        filters: Mapping[str, Any] | None = None,
        config: FindConfig | None = None,
    ) -> list[Row]:
        config = config or FindConfig()
        stmt: Select[Any] = select(self.table).where(self.where(filters, with_deleted=config.with_deleted))
        stmt = stmt.order_by(*self._order(config.order))
        if config.skip:
            stmt = stmt.offset(config.skip)
        if config.take is not None:
            stmt = stmt.limit(config.take)
        return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    async def find_children(self, conn: AsyncConnection, column: str, keys: Sequence[Any]) -> list[Row]:
        """The live rows whose `column` (a parent's key) is one of `keys`, oldest first: a relation's
        rows (`services.relations`)."""
        found = await conn.execute(self.children_statement(column), {"keys": list(keys)})
        return [dict(r) for r in found.mappings()]

    def children_statement(self, column: str) -> Executable:
        """`find_children`'s statement (`keys` bound), built once per column. On SQLite it names the
        index on `column` (`INDEXED BY`): without statistics, which SQLite gathers only when told to,
        its planner preferred the partial index on `deleted_at`, which lists every live row.
        PostgreSQL's planner chooses by the statistics autovacuum gathers."""
        statement = self._children.get(column)
        if statement is not None:
            return statement
        keys: BindParameter[Any] = bindparam("keys", expanding=True)
        order = self._order({})
        index = next(
            (
                i.name
                for i in self.table.indexes
                if [c.name for c in i.columns] == [column]
                and _usable_for_live_rows(i.dialect_options["sqlite"]["where"])
            ),
            None,
        )
        if self.dialect == "sqlite" and index is not None and self._has_deleted_at:
            table = self.table.name
            columns = ", ".join(f"{table}.{c.name}" for c in self.table.c)
            statement = (
                text(
                    f'SELECT {columns} FROM {table} INDEXED BY "{index}" '
                    f"WHERE {table}.deleted_at IS NULL AND {table}.{column} IN :keys "
                    f"ORDER BY {', '.join(f'{table}.{c.element.name} ASC' for c in order)}"
                )
                .bindparams(keys)
                .columns(*self.table.c)
            )
        else:
            live = [self.table.c.deleted_at.is_(None)] if self._has_deleted_at else []
            statement = select(self.table).where(*live, self.table.c[column].in_(keys)).order_by(*order)
        self._children[column] = statement
        return statement

    async def count(
        self, conn: AsyncConnection, filters: Mapping[str, Any] | None = None, *, with_deleted: bool = False
    ) -> int:
        stmt = (
            select(func.count()).select_from(self.table).where(self.where(filters, with_deleted=with_deleted))
        )
        return int((await conn.execute(stmt)).scalar_one())

    def _order(self, order: Mapping[str, str]) -> list[Any]:
        clauses = []
        descending = False
        for name, direction in order.items():
            column = self.entity.column(name)
            text = str(direction).upper()
            if text not in ("ASC", "DESC"):
                raise InvalidDataError(f"Order direction for {name!r} must be ASC or DESC")
            descending = text == "DESC"
            clauses.append(column.desc() if descending else column.asc())
        # The tie-breakers run the way the last key does: newest first is then one backward scan of
        # the (created_at, id) index, and the order keyset pages follow.
        tie_breakers = (
            [self.table.c.created_at] if "created_at" in self.table.c and "created_at" not in order else []
        )
        tie_breakers.append(self.table.c[next(iter(self.table.primary_key.columns)).name])
        clauses.extend(c.desc() if descending else c.asc() for c in tie_breakers)
        return clauses

    async def find_after(
        self,
        conn: AsyncConnection,
        filters: Mapping[str, Any] | None,
        config: FindConfig,
        after: tuple[Any, str] | None,
    ) -> tuple[list[Row], bool]:
        """A keyset page: the rows in `config.order` (one key, `created_at` by default) that come after
        the row (key value, id) `after`, at most `config.take`; and whether more follow. A page deep
        in the list costs what the first one does when an index has (filter, key, id) in this order."""
        order = dict(config.order) or {"created_at": "ASC"}
        if len(order) != 1:
            raise InvalidDataError("Pages after a cursor are ordered by one field")
        ((name, direction),) = order.items()
        key, id = self.entity.column(name), self.table.c[next(iter(self.table.primary_key.columns)).name]
        descending = str(direction).upper() == "DESC"
        stmt: Select[Any] = select(self.table).where(self.where(filters, with_deleted=config.with_deleted))
        if after is not None:
            position = tuple_(key, id)
            bound = tuple_(literal(after[0], key.type), literal(after[1], id.type))
            stmt = stmt.where(position < bound if descending else position > bound)
        stmt = stmt.order_by(*self._order({name: "DESC" if descending else "ASC"}))
        if config.take is not None:
            stmt = stmt.limit(config.take + 1)
        rows = [dict(r) for r in (await conn.execute(stmt)).mappings()]
        if config.take is not None and len(rows) > config.take:
            return rows[: config.take], True
        return rows, False

    # -- filters --------------------------------------------------------------------------
    def where(self, filters: Mapping[str, Any] | None, *, with_deleted: bool = False) -> ColumnElement[bool]:
        clauses: list[ColumnElement[bool]] = []
        if self._has_deleted_at and not with_deleted and not _mentions(filters, "deleted_at"):
            clauses.append(self.table.c.deleted_at.is_(None))
        if filters:
            clauses.append(self._where(filters))
        return and_(true(), *clauses)

    def _where(self, filters: Mapping[str, Any]) -> ColumnElement[bool]:
        clauses: list[ColumnElement[bool]] = []
        for key, value in filters.items():
            if key == "$and":
                clauses.append(and_(true(), *(self._where(f) for f in _filter_list(key, value))))
            elif key == "$or":
                parts = [self._where(f) for f in _filter_list(key, value)]
                clauses.append(or_(*parts) if parts else true())
            elif key == "q":
                clauses.append(self._search(value))
            else:
                clauses.append(self._condition(key, value))
        return and_(true(), *clauses)

    def _search(self, value: Any) -> ColumnElement[bool]:
        if not self.entity.searchable:
            # Medusa's q on entities without searchable fields matches the id.
            return self.table.c.id.ilike(f"%{_escape_like(str(value))}%", escape="\\")
        pattern = f"%{_escape_like(str(value))}%"
        return or_(*(self.table.c[c].ilike(pattern, escape="\\") for c in self.entity.searchable))

    def _comparable(self, column: Any) -> Any:
        # SQLite keeps amounts as exact strings; compare them as numbers.
        if isinstance(column.type, Amount) and self.dialect == "sqlite":
            return cast(column, Numeric)
        return column

    def _condition(self, key: str, value: Any) -> ColumnElement[bool]:
        column = self.entity.column(key)
        target = self._comparable(column)
        if value is None:
            return column.is_(None)  # type: ignore[no-any-return]
        if isinstance(value, list | tuple | set | frozenset):
            return column.in_(list(value))  # type: ignore[no-any-return]
        if isinstance(value, Mapping):
            clauses = []
            for op, operand in value.items():
                if op not in _OPERATORS:
                    raise InvalidDataError(f"Unknown filter operator {op!r} on {key!r}")
                clauses.append(_apply(column, target, op, operand))
            return and_(true(), *clauses)
        return column == value  # type: ignore[no-any-return]


_COMPARISONS = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}


def _apply(column: Any, target: Any, op: str, operand: Any) -> ColumnElement[bool]:
    if op == "$eq":
        return column.is_(None) if operand is None else column == operand  # type: ignore[no-any-return]
    if op == "$ne":
        return column.is_not(None) if operand is None else column != operand  # type: ignore[no-any-return]
    if op in ("$in", "$nin"):
        clause = column.in_(list(operand))
        return not_(clause) if op == "$nin" else clause  # type: ignore[no-any-return]
    if op == "$like":
        return column.like(operand)  # type: ignore[no-any-return]
    if op == "$ilike":
        return column.ilike(operand)  # type: ignore[no-any-return]
    if target is not column:
        operand = cast(literal(str(operand)), Numeric)
    return _COMPARISONS[op](target, operand)  # type: ignore[no-any-return]


def _escape_like(text: str) -> str:
    """`q` is literal text: its %, _ and backslash match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filter_list(key: str, value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, Mapping) for v in value):
        raise InvalidDataError(f"{key} takes a list of filters")
    return list(value)


def _mentions(filters: Mapping[str, Any] | None, key: str) -> bool:
    if not filters:
        return False
    for k, v in filters.items():
        if k == key:
            return True
        nested = k in ("$and", "$or") and isinstance(v, list | tuple)
        if nested and any(isinstance(f, Mapping) and _mentions(f, key) for f in v):
            return True
    return False


def _usable_for_live_rows(index_where: Any) -> bool:
    """An index with no WHERE clause, or one on live rows only, serves a query for live rows."""
    return index_where is None or str(index_where) == str(LIVE)
