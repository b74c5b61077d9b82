"""Whether this process can serve: its database answers, its schema is the code's, its providers are
there. `GET /health/ready` answers 200 with these checks, or 503 with the ones that fail.

The answer names no secret and no address (the route needs no key): a failing check says what is
wrong in words an operator acts on, and the details go to the log.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from paymod.persistence.database import Database

log = logging.getLogger("paymod.health")

OK = "ok"
FAILING = "failing"


@dataclass
class Readiness:
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(check["status"] == OK for check in self.checks.values())

    def document(self) -> dict[str, Any]:
        return {"status": "ready" if self.ready else "unavailable", "checks": self.checks}


@functools.cache
def migration_heads() -> tuple[str, ...]:
    """The revisions `paymod migrate` brings a database to (read once: the scripts ship with the code).
    Alembic is imported here, on the first readiness check, not when a server starts."""
    from alembic.script import ScriptDirectory

    from paymod.persistence.migrate import alembic_config

    return tuple(sorted(ScriptDirectory.from_config(alembic_config()).get_heads()))


async def _database_revisions(database: Database) -> tuple[str, ...] | None:
    """The database's Alembic revisions; None when it was never migrated."""
    async with database.read() as conn:
        has_table = await conn.run_sync(lambda sync: sync.dialect.has_table(sync, "alembic_version"))
        if not has_table:
            return None
        rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
        return tuple(sorted(str(row[0]) for row in rows))


async def check_readiness(
    database: Database, provider_ids: Iterable[str], region_providers: dict[str, list[str]]
) -> Readiness:
    """The database answers and is at the migrations' head; every provider a region names is loaded."""
    readiness = Readiness()
    try:
        revisions = await _database_revisions(database)
    except Exception as exc:  # whatever the driver raises, the answer is the same: not ready
        log.warning("readiness: the database is unreachable: %s", exc, exc_info=True)
        readiness.checks["database"] = {"status": FAILING, "message": "the database is unreachable"}
        readiness.checks["migrations"] = {"status": FAILING, "message": "the database is unreachable"}
    else:
        readiness.checks["database"] = {"status": OK}
        heads = migration_heads()
        migrations: dict[str, Any] = {
            "status": OK if revisions == heads else FAILING,
            "database": list(revisions or ()),
            "head": list(heads),
        }
        if revisions is None:
            migrations["message"] = "the database was never migrated: run `paymod migrate`"
        elif revisions != heads:
            migrations["message"] = (
                "the database's schema is not this version's: run `paymod migrate` "
                "(or this process is older than the database)"
            )
        readiness.checks["migrations"] = migrations
    loaded = list(provider_ids)
    missing = [
        f"{provider} (region {region})"
        for region, names in sorted(region_providers.items())
        for provider in names
        if provider not in loaded
    ]
    providers: dict[str, Any] = {"status": OK if not missing else FAILING, "ids": loaded}
    if missing:
        providers["message"] = "regions name providers that are not configured: " + ", ".join(missing)
    readiness.checks["providers"] = providers
    return readiness


__all__ = ["Readiness", "check_readiness", "migration_heads"]
