"""The money path's statements: a payment with its movements, a collection with the facts its status
is derived from, the checks before a provider call and the authorization of a session, each in as few
round trips as the database allows.

The child rows come along as JSON arrays built by the database, so a guard or a recomputation reads
one statement instead of one per table. Amounts stay exact: PostgreSQL writes NUMERIC into JSON as
its decimal text, SQLite stores them as strings, and both are parsed into `Decimal`.

Locks: on PostgreSQL a statement reads with the snapshot it started with, so facts read by the
statement that waited for a row lock would miss what the lock's holder committed (READ COMMITTED), and
a guard or a total could be computed from stale rows. So every holder of a collection's or a payment's
lock takes it with a write (an UPDATE that changes no value), which leaves its transaction id on the
row (`xmin`); the lock and the facts are then one statement that updates the row only if the row's
newest version is the one its snapshot sees. No holder committed after the snapshot: the facts are
current and the lock is held. Otherwise it updates nothing, and the lock and the facts are taken
again by two statements, the second one reading after the lock. On SQLite, `BEGIN IMMEDIATE` already
holds the database's write lock, so the facts come with the row in one statement.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Table,
    Text,
    bindparam,
    column,
    func,
    insert,
    literal,
    null,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter

from paymod.domain.errors import NotFoundError
from paymod.domain.rules import (
    ZERO,
    CollectionTotals,
    PaymentFacts,
    SessionFacts,
    payment_status,
    total,
)
from paymod.domain.statuses import PaymentCollectionStatus, PaymentSessionStatus, PaymentStatus
from paymod.persistence import entities, outbox
from paymod.persistence import tables as t
from paymod.persistence.disputes import DisputeFacts
from paymod.persistence.driver import DriverStatement
from paymod.persistence.payment_status import PaymentStatusWriter
from paymod.persistence.processes import STALE_AFTER
from paymod.persistence.repository import Entity, Repository, utc_now
from paymod.persistence.types import Amount, JSONDocument, UTCDateTime

Row = dict[str, Any]

# {agg}: the aggregate that builds a JSON array; {arr}: a JSON array of values; {sub}: makes a
# subquery's JSON text a nested array.
_DIALECT = {
    "postgresql": {"agg": "json_agg", "arr": "json_build_array", "sub": ""},
    "sqlite": {"agg": "json_group_array", "arr": "json_array", "sub": "json"},
}

_MOVEMENTS = """
  (SELECT CAST({agg}(x.amount) AS TEXT) FROM capture x
    WHERE x.payment_id = {payment} AND x.deleted_at IS NULL) AS captured,
  (SELECT CAST({agg}(y.amount) AS TEXT) FROM refund y
    WHERE y.payment_id = {payment} AND y.deleted_at IS NULL) AS refunded,
  (SELECT CAST({agg}({arr}(d.status, d.amount)) AS TEXT) FROM dispute d
    WHERE d.payment_id = {payment}) AS disputes
"""

# PostgreSQL's locks are taken by writes (see the module's docstring): `SET` keeps every value, and the
# row's newest version is compared with the one the statement's snapshot sees (`_CURRENT`).
_LOCK_PAYMENT = "UPDATE payment p SET status = p.status WHERE p.id = :id AND p.deleted_at IS NULL"
_LOCK_COLLECTION = (
    "UPDATE payment_collection c SET updated_at = c.updated_at WHERE c.id = {key} AND c.deleted_at IS NULL"
)
_CURRENT = " AND {row}.xmin = (SELECT seen.xmin FROM {table} seen WHERE seen.id = {row}.id)"
# A session's write riding with the lock of its collection (`SessionWrite`): only to a live session of
# that collection without a live payment, and only when the statement took the lock (`locked` has the
# collection's row).
_SESSION_WRITES = {
    "claim": "authorizing_until = :_until, authorizing_by = :_by",
    "authorize": (
        f"status = '{PaymentSessionStatus.AUTHORIZED.value}', data = :_data, "
        "authorized_at = coalesce(s.authorized_at, :_now), authorizing_until = NULL, "
        "authorizing_by = NULL, updated_at = :_now"
    ),
}
_LOCK_WITH_SESSION_WRITE = """WITH locked AS ({lock} RETURNING {facts}),
written AS (
  UPDATE payment_session s SET {values} FROM locked
  WHERE s.id = :_pk AND s.payment_collection_id = locked.id AND s.deleted_at IS NULL
    AND NOT EXISTS (SELECT 1 FROM payment p WHERE p.payment_session_id = s.id AND p.deleted_at IS NULL)
  RETURNING s.*)
SELECT locked.*, {written} FROM locked LEFT JOIN written ON true"""
_WRITTEN = "_session_"

# The collection a live session belongs to: locked on PostgreSQL (`_LOCK_COLLECTION`), its id alone
# on SQLite (where the write transaction holds the database's lock already). The session's collection
# id is a scalar subquery so the collection is found by its primary key whatever the planner knows:
# written as a join, a plan made before the tables had statistics scanned every live collection (by
# the partial index on `deleted_at`), and authorizations slowed down as collections accumulated.
_COLLECTION_OF_SESSION_ID = (
    "(SELECT s.payment_collection_id FROM payment_session s WHERE s.id = :id AND s.deleted_at IS NULL)"
)
_COLLECTION_OF_SESSION = (
    f"SELECT c.id FROM payment_collection c WHERE c.id = {_COLLECTION_OF_SESSION_ID} AND c.deleted_at IS NULL"
)

# Rows are found by their key alone; whether a collection is live is checked on the row found (in the
# WHERE clause, `deleted_at IS NULL` lets a planner without statistics pick the partial index on
# `deleted_at`, which lists every live collection: tests/integration/test_money_path_plans.py).
_COLLECTION_FACTS = """c.id, c.amount, c.currency_code, c.deleted_at IS NULL AS live,
  (SELECT p.is_enabled FROM payment_provider p WHERE p.id = :provider) AS provider_enabled,
  (SELECT CAST({agg}({arr}(s.id, s.status, s.amount, s.currency_code,
      CASE WHEN s.authorizing_until > :now AND (s.authorizing_by IS NULL OR EXISTS (
        SELECT 1 FROM process_heartbeat h WHERE h.id = s.authorizing_by AND h.heartbeat_at > :alive_since))
      THEN 1 ELSE 0 END)) AS TEXT)
    FROM payment_session s
    WHERE s.payment_collection_id = c.id AND s.deleted_at IS NULL) AS sessions,
  (SELECT CAST({agg}({arr}(p.id, p.payment_session_id, p.currency_code, p.canceled_at IS NOT NULL,
      {sub}((SELECT {agg}(x.amount) FROM capture x WHERE x.payment_id = p.id AND x.deleted_at IS NULL)),
      {sub}((SELECT {agg}(y.amount) FROM refund y WHERE y.payment_id = p.id AND y.deleted_at IS NULL)),
      p.amount
    )) AS TEXT)
    FROM payment p
    WHERE p.payment_collection_id = c.id AND p.deleted_at IS NULL) AS payments
"""
_COLLECTION = "SELECT " + _COLLECTION_FACTS + "FROM payment_collection c\nWHERE c.id = :id"

# A collection's derived status and totals, stored in one statement with what its transaction wrote
# along: `{with_}` the events buffered so far (PostgreSQL runs a data-modifying WITH whatever the outer
# statement does) and a row the transaction adds to the collection (a session, a payment): `new_row`,
# joined by `{from_}`, its columns returned as `{returning}` (renamed `_new_<column>`).
_STORE_TOTALS = """
{with_}UPDATE payment_collection SET
  status = :status, authorized_amount = :authorized_amount, captured_amount = :captured_amount,
  refunded_amount = :refunded_amount,
  completed_at = CASE WHEN CAST(:completed AS BOOLEAN) THEN :now ELSE payment_collection.completed_at END,
  updated_at = :now
{from_}WHERE payment_collection.id = :id
RETURNING payment_collection.*{returning}
"""
_NEW = "_new_"
_CREATE_COLLECTION_WITH_EVENTS = (
    "WITH "
    + outbox.BUFFERED_EVENTS
    + """
INSERT INTO payment_collection (id, currency_code, amount, status, metadata, created_at, updated_at)
VALUES (:id, :currency_code, :amount, :status, :metadata, :now, :now)
RETURNING payment_collection.*
"""
)

# Typed by name (positional columns would be matched by position).
_PAYMENT_TYPES: dict[str, Any] = {
    "amount": Amount(),
    "data": JSONDocument,
    "metadata": JSONDocument,
    "captured_at": UTCDateTime(),
    "canceled_at": UTCDateTime(),
    "created_at": UTCDateTime(),
    "updated_at": UTCDateTime(),
    "deleted_at": UTCDateTime(),
    "authorization_expires_at": UTCDateTime(),
    "expiring_notified_at": UTCDateTime(),
    "expired_at": UTCDateTime(),
}


# Core statements of the money path, built once (see persistence.repository on why).
_LIVE_PAYMENT_OF_SESSION = (
    select(t.payment.c.id)
    .where(t.payment.c.payment_session_id == t.payment_session.c.id, t.payment.c.deleted_at.is_(None))
    .limit(1)
)
_COLLECTION_AND_PROVIDER = DriverStatement(
    select(
        t.payment_collection.c.currency_code,
        select(t.payment_provider.c.is_enabled)
        .where(t.payment_provider.c.id == bindparam("provider"))
        .scalar_subquery()
        .label("provider_enabled"),
    ).where(t.payment_collection.c.id == bindparam("id"), t.payment_collection.c.deleted_at.is_(None))
)
_SESSION_AND_PAYMENT = DriverStatement(
    select(t.payment_session, _LIVE_PAYMENT_OF_SESSION.scalar_subquery().label("live_payment_id")).where(
        t.payment_session.c.id == bindparam("id"), t.payment_session.c.deleted_at.is_(None)
    )
)
# Marks a session authorized unless it has a payment already; the UPDATE takes the session's row lock.
_AUTHORIZE_SESSION = DriverStatement(
    update(t.payment_session)
    .where(
        t.payment_session.c.id == bindparam("_pk"),
        t.payment_session.c.deleted_at.is_(None),
        ~_LIVE_PAYMENT_OF_SESSION.exists(),
    )
    .values(
        status=PaymentSessionStatus.AUTHORIZED.value,
        data=bindparam("_data", type_=t.payment_session.c.data.type),
        authorized_at=func.coalesce(
            t.payment_session.c.authorized_at, bindparam("_now", type_=UTCDateTime())
        ),
        authorizing_until=None,
        authorizing_by=None,
        updated_at=bindparam("_now", type_=UTCDateTime()),
    )
    .returning(*t.payment_session.c)
)
# A payment's fields, written unless it was fully captured already (the capture's last step).
_UPDATE_UNCAPTURED_PAYMENT = DriverStatement(
    update(t.payment)
    .where(t.payment.c.id == bindparam("_pk"), t.payment.c.captured_at.is_(None))
    .returning(*t.payment.c)
)
# Marks a session as being authorized by a process until a time (the claim before the provider call).
_CLAIM_SESSION = DriverStatement(
    update(t.payment_session)
    .where(t.payment_session.c.id == bindparam("_pk"))
    .values(
        authorizing_until=bindparam("_until", type_=UTCDateTime()),
        authorizing_by=bindparam("_by", type_=Text()),
    )
    .returning(*t.payment_session.c)
)
# A live collection's live sessions, oldest first (the order the generic reads use); one row with a
# NULL session for a collection without sessions, no row for a missing one.
_SESSIONS_OF_COLLECTION = DriverStatement(
    select(
        t.payment_session.c.id,
        t.payment_session.c.status,
        t.payment_collection.c.deleted_at.is_(None).label("live"),
    )
    .select_from(
        t.payment_collection.outerjoin(
            t.payment_session,
            (t.payment_session.c.payment_collection_id == t.payment_collection.c.id)
            & t.payment_session.c.deleted_at.is_(None),
        )
    )
    .where(t.payment_collection.c.id == bindparam("id"))
    .order_by(t.payment_session.c.created_at, t.payment_session.c.id)
)
_CREATE_COLLECTION = DriverStatement(insert(t.payment_collection).returning(*t.payment_collection.c))
_UPDATE_COLLECTION = DriverStatement(
    update(t.payment_collection)
    .where(t.payment_collection.c.id == bindparam("_pk"))
    .returning(*t.payment_collection.c)
)
# A status derived under the payment's lock; only a changed status is written.
_STORE_PAYMENT_STATUS = (
    update(t.payment)
    .where(t.payment.c.id == bindparam("_payment_id"), t.payment.c.status != bindparam("_status"))
    .values(status=bindparam("_status"))
)
_MOVEMENT_ENTITIES = {entity.table.name: entity for entity in (entities.CAPTURE, entities.REFUND)}
_CAPTURE_ONLY = ("refund_reason_id", "note")
_LIVE_MOVEMENTS = (
    select(
        *t.capture.c,
        *(null().label(name) for name in _CAPTURE_ONLY),
        literal("captures").label("kind"),
    )
    .where(t.capture.c.payment_id == bindparam("payment_id"), t.capture.c.deleted_at.is_(None))
    .union_all(
        select(
            *(t.refund.c[c.name] for c in t.capture.c),
            *(t.refund.c[name] for name in _CAPTURE_ONLY),
            literal("refunds").label("kind"),
        ).where(t.refund.c.payment_id == bindparam("payment_id"), t.refund.c.deleted_at.is_(None))
    )
    .order_by("kind", "created_at", "id")
)
_LIVE_MOVEMENTS_STATEMENT = DriverStatement(_LIVE_MOVEMENTS)


def _split_movements(found: list[Row]) -> tuple[list[Row], list[Row]]:
    """Rows of `_LIVE_MOVEMENTS` as (captures, refunds)."""
    rows: dict[str, list[Row]] = {"captures": [], "refunds": []}
    for row in found:
        kind = row.pop("kind")
        if kind == "captures":
            for name in _CAPTURE_ONLY:
                del row[name]
        rows[kind].append(row)
    return rows["captures"], rows["refunds"]


def _collection_facts(found: Row) -> CollectionFacts | None:
    """The facts of a collection row read by `_COLLECTION_FACTS`; None when it is deleted."""
    if not found["live"]:
        return None
    payments = _parse(found["payments"])
    canceled_sessions = {p[1] for p in payments if p[3]}
    enabled = found["provider_enabled"]
    return CollectionFacts(
        id=found["id"],
        amount=found["amount"],
        currency_code=found["currency_code"],
        sessions=[
            SessionFacts(
                status=s[1],
                amount=Decimal(str(s[2])),
                currency_code=s[3],
                payment_canceled=s[0] in canceled_sessions,
                id=s[0],
                authorizing=bool(s[4]),
            )
            for s in _parse(found["sessions"])
        ],
        payments=[
            PaymentFacts(
                currency_code=p[2],
                canceled=bool(p[3]),
                captures=_amounts(p[4]),
                refunds=_amounts(p[5]),
                id=p[0],
                session_id=p[1],
                amount=Decimal(str(p[6])),
            )
            for p in payments
        ],
        provider_enabled=None if enabled is None else bool(enabled),
    )


def _prefixed(table: Table, source: str, prefix: str) -> tuple[str, list[Any]]:
    """The columns of `table` as `source` returns them, renamed `<prefix><column>` so they can share a
    result row with another table's: the SELECT list and the typed result columns."""
    sql = ", ".join(f"{source}.{c.name} AS {prefix}{c.name}" for c in table.c)
    return sql, [column(f"{prefix}{c.name}", c.type) for c in table.c]


def _take_prefixed(row: Row, prefix: str) -> Row:
    """Removes the `<prefix><column>` values from `row` and returns them by column name."""
    return {name[len(prefix) :]: row.pop(name) for name in list(row) if name.startswith(prefix)}


def _amounts(values: Any) -> list[Decimal]:
    return [Decimal(str(v)) for v in values or ()]


def _parse(document: str | None) -> list[Any]:
    if document is None:  # PostgreSQL aggregates no rows into NULL
        return []
    parsed = json.loads(document, parse_float=Decimal, parse_int=Decimal)
    return list(parsed)


@dataclass(frozen=True, slots=True)
class CollectionFacts:
    """A live collection with its live sessions and payments, in the domain's shapes."""

    id: str
    amount: Decimal
    currency_code: str
    sessions: list[SessionFacts]
    payments: list[PaymentFacts]
    #: Whether the provider asked about (`provider_id=`) is enabled; None when not asked or unknown.
    provider_enabled: bool | None = None

    def session(self, session_id: str) -> SessionFacts | None:
        return next((s for s in self.sessions if s.id == session_id), None)

    def live_payment_of(self, session_id: str) -> PaymentFacts | None:
        return next((p for p in self.payments if p.session_id == session_id and not p.canceled), None)

    def changed(
        self,
        *,
        sessions: list[SessionFacts] | None = None,
        payments: list[PaymentFacts] | None = None,
    ) -> CollectionFacts:
        """These facts after a write this transaction made under the collection's lock: nothing else
        can change them meanwhile, so the status is derived without reading them again."""
        return replace(
            self,
            sessions=self.sessions if sessions is None else sessions,
            payments=self.payments if payments is None else payments,
        )


@dataclass(slots=True)
class NewRow:
    """A row written with the collection's totals (`Ledger.store_collection_totals`), by the same
    statement on PostgreSQL. `values` gets an id and timestamps when it has none; `row` is the row
    as written (the database's defaults included), once stored."""

    entity: Entity
    values: dict[str, Any]
    row: Row | None = None


@dataclass(slots=True)
class SessionWrite:
    """A write to one session that the caller makes after checking the facts read under its
    collection's lock. On PostgreSQL it is sent by the same statement as the lock and the facts, before
    the checks: a check that fails must raise, so that the transaction's rollback undoes it.
    `Ledger.written_session` returns the row written, writing it then if the lock's statement did not
    (on SQLite, and when the lock had to be taken again).

    `kind` "claim": `params` has `until` and `by` (see `Ledger.claim_session`); "authorize": `data` and
    `now` (see `Ledger.authorize_session`)."""

    kind: str
    session_id: str
    params: dict[str, Any]
    row: Row | None = None
    sent: bool = False


@dataclass(frozen=True, slots=True)
class LockedPayment:
    row: Row
    captures: list[Decimal]
    refunds: list[Decimal]
    #: Its disputes, read with the movements (a dispute is recorded under the payment's lock).
    disputes: DisputeFacts

    def status_with(self, *, captured: Decimal = ZERO, refunded: Decimal = ZERO) -> PaymentStatus:
        """The payment's status once `captured` or `refunded` more is booked under this lock."""
        return payment_status(
            canceled=self.row["canceled_at"] is not None,
            fully_captured=self.row["captured_at"] is not None,
            captured=total(self.captures) + captured,
            refunded=total(self.refunds) + refunded,
        )


class Ledger:
    """The money path's statements, built once for a dialect."""

    def __init__(self, dialect: str) -> None:
        parts = _DIALECT[dialect]
        self._locks = dialect == "postgresql"
        self._statuses = PaymentStatusWriter(dialect)
        self._book: dict[tuple[str, tuple[str, ...]], DriverStatement] = {}
        self._totals_statements: dict[tuple[str | None, tuple[str, ...], bool], DriverStatement] = {}
        self._repositories: dict[str, Repository] = {}
        self._dialect = dialect
        facts_binds = (
            bindparam("now", type_=UTCDateTime()),
            bindparam("alive_since", type_=UTCDateTime()),
            bindparam("provider", type_=Text()),
        )
        if self._locks:
            movements = _MOVEMENTS.format(**parts, payment="p.id")
            current_payment = _CURRENT.format(row="p", table="payment")
            current_collection = _CURRENT.format(row="c", table="payment_collection")
            facts = _COLLECTION_FACTS.format(**parts)
            self._payment = DriverStatement(
                text(f"{_LOCK_PAYMENT}{current_payment} RETURNING p.*, {movements}").columns(**_PAYMENT_TYPES)
            )
            self._lock_payment = DriverStatement(
                text(f"{_LOCK_PAYMENT} RETURNING p.*").columns(**_PAYMENT_TYPES)
            )
            self._movements = DriverStatement(text("SELECT " + _MOVEMENTS.format(**parts, payment=":id")))
            self._collection_locked: dict[str, DriverStatement] = {}
            self._lock_collection_only: dict[str, DriverStatement] = {}
            written, written_columns = _prefixed(t.payment_session, "written", _WRITTEN)
            for name, key in (("collection", ":id"), ("session", _COLLECTION_OF_SESSION_ID)):
                lock = _LOCK_COLLECTION.format(key=key)
                self._collection_locked[name] = DriverStatement(
                    text(f"{lock}{current_collection} RETURNING {facts}")
                    .bindparams(*facts_binds)
                    .columns(amount=Amount())
                )
                self._lock_collection_only[name] = DriverStatement(text(f"{lock} RETURNING c.id"))
                for kind, values in _SESSION_WRITES.items():
                    self._collection_locked[f"{name}+{kind}"] = DriverStatement(
                        text(
                            _LOCK_WITH_SESSION_WRITE.format(
                                lock=lock + current_collection,
                                facts=facts,
                                values=values,
                                written=written,
                            )
                        )
                        .bindparams(
                            *facts_binds,
                            *(
                                [
                                    bindparam("_until", type_=UTCDateTime()),
                                    bindparam("_by", type_=Text()),
                                ]
                                if kind == "claim"
                                else [
                                    bindparam("_data", type_=t.payment_session.c.data.type),
                                    bindparam("_now", type_=UTCDateTime()),
                                ]
                            ),
                        )
                        .columns(column("amount", Amount()), *written_columns)
                    )
            # The status written and the movements read by one statement: both see what was committed
            # when it started, after the lock its transaction holds.
            self._refresh_with_movements = DriverStatement(
                _LIVE_MOVEMENTS.add_cte(self._statuses.update.returning(t.payment.c.id).cte("refreshed"))
            )
        else:
            movements = _MOVEMENTS.format(**parts, payment="p.id")
            self._payment = DriverStatement(
                text(
                    f"SELECT p.*, {movements} FROM payment p WHERE p.id = :id AND p.deleted_at IS NULL"
                ).columns(**_PAYMENT_TYPES)
            )
            self._collection_of_session = DriverStatement(text(_COLLECTION_OF_SESSION))
        events_at = bindparam("events_at", type_=UTCDateTime())
        self._store_totals_with_events = self._totals_statement(None, (), True)
        self._create_collection_with_events = DriverStatement(
            text(_CREATE_COLLECTION_WITH_EVENTS)
            .bindparams(
                events_at,
                bindparam("now", type_=UTCDateTime()),
                bindparam("amount", type_=Amount()),
                bindparam("metadata", type_=t.payment_collection.c.metadata.type),
            )
            .columns(*t.payment_collection.c)
        )
        self._collection = DriverStatement(
            text(_COLLECTION.format(**parts)).bindparams(*facts_binds).columns(amount=Amount())
        )

    async def lock_payment(self, conn: AsyncConnection, payment_id: str) -> LockedPayment:
        """The payment, locked, with its live capture and refund amounts and its disputes."""
        row = await self._payment.first(conn, {"id": payment_id})
        if row is not None:
            movements = {name: row.pop(name) for name in ("captured", "refunded", "disputes")}
        elif self._locks and (row := await self._lock_payment.first(conn, {"id": payment_id})) is not None:
            # A holder of the lock committed after the statement's snapshot: read again, after the lock.
            found = await self._movements.first(conn, {"id": payment_id})
            assert found is not None  # a SELECT of subqueries returns one row
            movements = found
        else:
            raise NotFoundError(f"Payment with id: {payment_id} was not found")
        return LockedPayment(
            row=row,
            captures=_amounts(_parse(movements["captured"])),
            refunds=_amounts(_parse(movements["refunded"])),
            disputes=DisputeFacts.of(
                (status, Decimal(str(amount))) for status, amount in _parse(movements["disputes"])
            ),
        )

    async def book_movement(
        self, conn: AsyncConnection, table: Table, row: Mapping[str, Any], *, status: PaymentStatus
    ) -> str:
        """Writes a capture or refund row and the payment's status after it, which the caller derived
        from the facts it read under the payment's lock (`LockedPayment.status_with`); returns the
        row's new id. On PostgreSQL one statement writes both."""
        now = utc_now()
        values = self._repository(_MOVEMENT_ENTITIES[table.name]).with_defaults(row, now)
        status_params = {"_payment_id": values["payment_id"], "_status": status.value}
        if not self._locks:
            await conn.execute(insert(table), values)
            await conn.execute(_STORE_PAYMENT_STATUS, status_params)
            return str(values["id"])
        # The row's parameters are renamed: an UPDATE would take a parameter named like one of its
        # table's columns (`id`, `amount`) as a value to SET.
        names = tuple(sorted(values))
        key = (table.name, names)
        statement = self._book.get(key)
        if statement is None:
            booked = insert(table).values({name: bindparam(f"_row_{name}") for name in names}).cte("booked")
            statement = self._book[key] = DriverStatement(_STORE_PAYMENT_STATUS.add_cte(booked))
        await statement.execute(conn, {**{f"_row_{k}": v for k, v in values.items()}, **status_params})
        return str(values["id"])

    async def refresh_status(self, conn: AsyncConnection, payment_id: str, *, locked: bool = True) -> None:
        """Stores the payment's status after a write that changed its facts (`payment_status`)."""
        await self._statuses.refresh(conn, payment_id, locked=locked)

    async def lock_collection(
        self, conn: AsyncConnection, collection_id: str, *, write: SessionWrite | None = None
    ) -> CollectionFacts:
        """The collection, locked, with what its status derives from; `write`: see `SessionWrite`."""
        facts = await self._locked_facts(conn, "collection", collection_id, write)
        if facts is None:
            raise NotFoundError(f"PaymentCollection with id: {collection_id} was not found")
        return facts

    async def lock_collection_of_session(
        self, conn: AsyncConnection, session_id: str, *, write: SessionWrite | None = None
    ) -> CollectionFacts:
        """The collection of a live session, locked, with what its status derives from (the session's
        row need not be read first to know which collection to lock); `write`: see `SessionWrite`."""
        facts = await self._locked_facts(conn, "session", session_id, write)
        if facts is None or facts.session(session_id) is None:
            raise NotFoundError(f"PaymentSession with id: {session_id} was not found")
        return facts

    async def _locked_facts(
        self, conn: AsyncConnection, by: str, key: str, write: SessionWrite | None
    ) -> CollectionFacts | None:
        """The live collection (`by` "collection": its id; "session": a live session's id), locked,
        with its facts; None when there is none."""
        if not self._locks:
            collection_id = (
                key if by == "collection" else await self._collection_of_session.scalar(conn, {"id": key})
            )
            return None if collection_id is None else await self.collection_facts(conn, collection_id)
        params = self._facts_params(key, None)
        if write is None:
            found = await self._collection_locked[by].first(conn, params)
        else:
            params.update({f"_{name}": value for name, value in write.params.items()}, _pk=write.session_id)
            found = await self._collection_locked[f"{by}+{write.kind}"].first(conn, params)
            if found is not None:
                session = _take_prefixed(found, _WRITTEN)
                write.sent = True
                write.row = session if session["id"] is not None else None
        if found is not None:
            return _collection_facts(found)
        # A holder of the lock committed after the statement's snapshot (or there is no such
        # collection): the lock, then the facts read after it.
        collection_id = await self._lock_collection_only[by].scalar(conn, {"id": key})
        return None if collection_id is None else await self.collection_facts(conn, collection_id)

    async def written_session(self, conn: AsyncConnection, write: SessionWrite) -> Row | None:
        """The session row `write` wrote with the collection's lock, or writes it now if the lock's
        statement did not send it; None (an authorization) when the session has a live payment
        already. A claim of a session that is gone raises `NotFoundError`."""
        if not write.sent:
            p = write.params
            if write.kind == "claim":
                write.row = await self.claim_session(conn, write.session_id, p["until"], p["by"])
            else:
                write.row = await self.authorize_session(conn, write.session_id, p["data"], p["now"])
            write.sent = True
        if write.row is None and write.kind == "claim":
            raise NotFoundError(f"PaymentSession with id: {write.session_id} was not found")
        return write.row

    @staticmethod
    def _facts_params(key: str, provider_id: str | None) -> dict[str, Any]:
        now = utc_now()
        return {"id": key, "provider": provider_id, "now": now, "alive_since": now - STALE_AFTER}

    async def collection_facts(
        self, conn: AsyncConnection, collection_id: str, provider_id: str | None = None
    ) -> CollectionFacts | None:
        """The live collection with its live sessions (which are being authorized) and payments; None
        when there is none. Without the lock (see `lock_collection`), a snapshot to check early."""
        found = await self._collection.first(conn, self._facts_params(collection_id, provider_id))
        return None if found is None else _collection_facts(found)

    async def store_collection_totals(
        self,
        conn: AsyncConnection,
        collection_id: str,
        totals: CollectionTotals,
        *,
        new_row: NewRow | None = None,
    ) -> Row | None:
        """Stores the status and totals derived for the collection (stamping `completed_at` when it
        completed); None when it is gone. On PostgreSQL the events buffered so far are written by the
        same statement; on SQLite they wait for the commit (`Database.write`).

        `new_row`: a row the transaction adds to the collection, written first (by the same statement
        on PostgreSQL); its constraint violations raise what `Repository.insert` raises."""
        now = utc_now()
        if new_row is not None:
            repository = self._repository(new_row.entity)
            new_row.values = repository.with_defaults(new_row.values, now)
            if not self._locks:
                [new_row.row] = await repository.insert(conn, [new_row.values])
                new_row = None
        events = outbox.buffered_events_params(conn) if self._locks else None
        if events is None and new_row is None:
            values: dict[str, Any] = {
                "status": totals.status.value,
                "authorized_amount": totals.authorized_amount,
                "captured_amount": totals.captured_amount,
                "refunded_amount": totals.refunded_amount,
                "updated_at": now,
            }
            if totals.completed:
                values["completed_at"] = now
            return await _UPDATE_COLLECTION.first(conn, {"_pk": collection_id, **values})
        params: dict[str, Any] = {
            **(events or {}),
            "id": collection_id,
            "now": now,
            "completed": totals.completed,
            "status": totals.status.value,
            "authorized_amount": totals.authorized_amount,
            "captured_amount": totals.captured_amount,
            "refunded_amount": totals.refunded_amount,
        }
        if new_row is None:
            return await self._store_totals_with_events.first(conn, params)
        names = tuple(sorted(new_row.values))
        statement = self._totals_statement(new_row.entity.table, names, events is not None)
        params.update({f"{_NEW}{name}": new_row.values[name] for name in names})
        try:
            found = await statement.first(conn, params)
        except IntegrityError as exc:
            raise self._repository(new_row.entity).integrity_error(exc, [new_row.values]) from exc
        if found is None:
            return None
        new_row.row = _take_prefixed(found, _NEW)
        return found

    def _totals_statement(self, table: Table | None, names: tuple[str, ...], events: bool) -> DriverStatement:
        """`_STORE_TOTALS` with the buffered events (`events`) and, unless `table` is None, the INSERT
        of a new row of `table` with the columns `names`; built once per shape."""
        key = (None if table is None else table.name, names, events)
        statement = self._totals_statements.get(key)
        if statement is None:
            items = [outbox.BUFFERED_EVENTS] if events else []
            binds: list[BindParameter[Any]] = [
                bindparam("now", type_=UTCDateTime()),
                *(
                    bindparam(name, type_=Amount())
                    for name in ("authorized_amount", "captured_amount", "refunded_amount")
                ),
            ]
            if events:
                binds.append(bindparam("events_at", type_=UTCDateTime()))
            returning = ""
            returned: list[Any] = []
            if table is not None:
                items.append(
                    f"new_row AS (INSERT INTO {table.name} ({', '.join(names)}) "
                    f"VALUES ({', '.join(f':{_NEW}{name}' for name in names)}) RETURNING *)"
                )
                binds += [bindparam(f"{_NEW}{name}", type_=table.c[name].type) for name in names]
                columns, returned = _prefixed(table, "new_row", _NEW)
                returning = ", " + columns
            sql = _STORE_TOTALS.format(
                with_="WITH " + ",\n".join(items) + "\n" if items else "",
                from_="" if table is None else "FROM new_row\n",
                returning=returning,
            )
            statement = self._totals_statements[key] = DriverStatement(
                text(sql).bindparams(*binds).columns(*t.payment_collection.c, *returned)
            )
        return statement

    def _repository(self, entity: Entity) -> Repository:
        found = self._repositories.get(entity.name)
        if found is None:
            found = self._repositories[entity.name] = Repository(entity, self._dialect)
        return found

    async def create_collection(self, conn: AsyncConnection, values: Mapping[str, Any]) -> Row:
        """Writes a new collection (`values` has its id); on PostgreSQL with the events buffered so far,
        in one statement (on SQLite they wait for the commit)."""
        now = utc_now()
        row = {
            "status": PaymentCollectionStatus.NOT_PAID.value,
            "metadata": None,
            **values,
            "created_at": now,
            "updated_at": now,
        }
        events = outbox.buffered_events_params(conn) if self._locks else None
        if events is None:
            found = await _CREATE_COLLECTION.first(conn, row)
        else:
            found = await self._create_collection_with_events.first(conn, {**row, **events, "now": now})
        assert found is not None  # an INSERT ... RETURNING returns its row
        return found

    async def collection_and_provider(
        self, conn: AsyncConnection, collection_id: str, provider_id: str
    ) -> Row | None:
        """The live collection's `currency_code` and whether the provider is enabled (`provider_enabled`)."""
        return await _COLLECTION_AND_PROVIDER.first(conn, {"id": collection_id, "provider": provider_id})

    async def session_and_payment(
        self, conn: AsyncConnection, session_id: str
    ) -> tuple[Row, str | None] | None:
        """The live session and the id of its live payment, if it has one."""
        session = await _SESSION_AND_PAYMENT.first(conn, {"id": session_id})
        if session is None:
            return None
        payment_id = session.pop("live_payment_id")
        return session, None if payment_id is None else str(payment_id)

    async def sessions_of_collection(
        self, conn: AsyncConnection, collection_id: str
    ) -> list[tuple[str, str]] | None:
        """The live collection's live sessions as (id, status), oldest first; None when there is no
        such collection."""
        rows = await _SESSIONS_OF_COLLECTION.rows(conn, {"id": collection_id})
        if not rows or not rows[0]["live"]:
            return None
        return [(row["id"], row["status"]) for row in rows if row["id"] is not None]

    async def authorize_session(
        self, conn: AsyncConnection, session_id: str, data: dict[str, Any], now: datetime
    ) -> Row | None:
        """Marks the session authorized (taking its row lock) and returns it; None when it has a live
        payment already or is gone."""
        return await _AUTHORIZE_SESSION.first(conn, {"_pk": session_id, "_data": data, "_now": now})

    async def claim_session(
        self, conn: AsyncConnection, session_id: str, until: datetime, by: str | None
    ) -> Row:
        """Marks the session as being authorized by process `by` (None: no process named) until
        `until`; the caller holds the collection's lock and found the session live. Returns its row."""
        row = await _CLAIM_SESSION.first(conn, {"_pk": session_id, "_until": until, "_by": by})
        if row is None:
            raise NotFoundError(f"PaymentSession with id: {session_id} was not found")
        return row

    async def update_uncaptured_payment(
        self, conn: AsyncConnection, payment_id: str, values: Mapping[str, Any]
    ) -> Row | None:
        """Writes `values` (and `updated_at`) to the payment unless it is fully captured already;
        the row written, or None."""
        return await _UPDATE_UNCAPTURED_PAYMENT.first(
            conn, {"updated_at": utc_now(), **values, "_pk": payment_id}
        )

    async def movements(self, conn: AsyncConnection, payment_id: str) -> tuple[list[Row], list[Row]]:
        """The payment's live capture rows and refund rows, oldest first, in one statement."""
        return _split_movements(await _LIVE_MOVEMENTS_STATEMENT.rows(conn, {"payment_id": payment_id}))

    async def refresh_status_with_movements(
        self, conn: AsyncConnection, payment_id: str
    ) -> tuple[list[Row], list[Row]]:
        """`refresh_status` (the transaction holds the payment's lock), then `movements`: one statement
        on PostgreSQL."""
        if not self._locks:
            await self.refresh_status(conn, payment_id)
            return await self.movements(conn, payment_id)
        return _split_movements(await self._refresh_with_movements.rows(conn, {"payment_id": payment_id}))
