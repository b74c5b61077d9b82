"""SQL counted from SQLAlchemy's events, in this process or in a server process.

Every engine of the process is counted (listeners on the `Engine` and `Pool` classes):
`statements` (data statements sent through a cursor; BEGIN/COMMIT text that SQLite's set-up sends
itself is left out), `begins`, `commits`, `rollbacks` (transaction control, one round trip each) and
`connects` (new database connections). A server process shares its counts through a small
memory-mapped file that the bench reads between requests.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from paymod.persistence.database import AUTOCOMMIT_OPTION

FIELDS = ("statements", "begins", "commits", "rollbacks", "connects")
_FORMAT = f"<{len(FIELDS)}q"
_SIZE = struct.calcsize(_FORMAT)
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
ENV = "PAYMOD_BENCH_COUNTERS"
SQL_LOG_ENV = "PAYMOD_BENCH_SQL_LOG"


class SqlCounter:
    """Counts SQL; with `shared_path`, mirrors the counts into that file for another process."""

    def __init__(self, shared_path: str | Path | None = None, sql_log: str | Path | None = None) -> None:
        self.values = dict.fromkeys(FIELDS, 0)
        self._map: mmap.mmap | None = None
        self._log = open(sql_log, "a", buffering=1) if sql_log else None  # noqa: SIM115
        if shared_path is not None:
            with open(shared_path, "wb") as file:
                file.write(b"\0" * _SIZE)
            fd = os.open(shared_path, os.O_RDWR)
            try:
                self._map = mmap.mmap(fd, _SIZE)
            finally:
                os.close(fd)

    def _bump(self, name: str) -> None:
        self.values[name] += 1
        if self._map is not None:
            struct.pack_into(_FORMAT, self._map, 0, *(self.values[f] for f in FIELDS))

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        head = statement.lstrip()[:9].upper()
        if not head.startswith(_CONTROL):
            self._bump("statements")
            if self._log is not None:
                self._log.write(" ".join(statement.split())[:300] + "\n")

    def _control(self, name: str) -> Any:
        def listener(*args: Any) -> None:
            conn = args[0] if args else None
            if (
                name != "connects"
                and conn is not None
                and conn.get_execution_options().get(AUTOCOMMIT_OPTION)
            ):
                return  # no transaction is sent for a single autocommit statement
            self._bump(name)
            if self._log is not None:
                self._log.write(f"-- {name[:-1].upper()}\n")

        return listener

    def install(self) -> SqlCounter:
        event.listen(Engine, "before_cursor_execute", self._statement)
        event.listen(Engine, "begin", self._control("begins"))
        event.listen(Engine, "commit", self._control("commits"))
        event.listen(Engine, "rollback", self._control("rollbacks"))
        event.listen(Pool, "connect", self._control("connects"))
        return self

    def snapshot(self) -> dict[str, int]:
        return dict(self.values)

    def mark(self, text: str) -> None:
        """Writes a marker line to the SQL log (which operation the next statements belong to)."""
        if self._log is not None:
            self._log.write(f"## {text}\n")


def read_shared(path: str | Path) -> dict[str, int]:
    """The counts a server process mirrors into `path`."""
    with open(path, "rb") as file:
        data = file.read(_SIZE)
    if len(data) < _SIZE:
        return dict.fromkeys(FIELDS, 0)
    return dict(zip(FIELDS, struct.unpack(_FORMAT, data), strict=True))
