"""Retention: what paymod's own queues and journals keep, and for how long.

Finished rows are deleted once older than the retention (30 days by default, `[worker]
retention_days`): events dispatched or given up (`event_outbox`), deliveries delivered or given up
(`webhook_delivery`), provider events processed, ignored or failed (`webhook_event`), and workflow
runs that succeeded or failed (`workflow_run`). Rows still waiting or running are never deleted,
whatever their age. The worker prunes in batches of `BATCH` rows, each its own short transaction, so
pruning never holds a lock the API waits for; the payment records themselves (collections, sessions,
payments, captures, refunds) are never pruned.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select

from paymod.persistence.database import Database
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import event_outbox, webhook_delivery, webhook_event, workflow_run

DEFAULT_RETENTION = timedelta(days=30)
BATCH = 1000

# (table, its key, the statuses that are finished, the column that dates it)
_PRUNABLE: tuple[tuple[Any, Any, tuple[str, ...], Any], ...] = (
    (webhook_delivery, webhook_delivery.c.id, ("delivered", "failed"), webhook_delivery.c.created_at),
    (event_outbox, event_outbox.c.sequence, ("dispatched", "failed"), event_outbox.c.created_at),
    (webhook_event, webhook_event.c.id, ("processed", "ignored", "failed"), webhook_event.c.created_at),
    (workflow_run, workflow_run.c.id, ("succeeded", "failed"), workflow_run.c.completed_at),
)


async def prune(
    database: Database, *, retention: timedelta = DEFAULT_RETENTION, max_batches: int = 100
) -> Counter[str]:
    """Deletes finished rows older than `retention`, `BATCH` at a time; returns how many per table.

    `max_batches` bounds one call (the worker calls again on its next round)."""
    cutoff = utc_now() - retention
    pruned: Counter[str] = Counter()
    for table, key, finished, dated in _PRUNABLE:
        for _ in range(max_batches):
            oldest = select(key).where(table.c.status.in_(finished), dated < cutoff).limit(BATCH)
            async with database.write() as conn:
                keys = list((await conn.execute(oldest)).scalars())
                if keys:
                    await conn.execute(delete(table).where(key.in_(keys)))
            pruned[table.name] += len(keys)
            if len(keys) < BATCH:
                break
    return pruned


class RetentionStore:
    """Pruning of paymod's own finished rows over one database (the worker's housekeeping)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def prune(
        self, *, retention: timedelta = DEFAULT_RETENTION, max_batches: int = 100
    ) -> Counter[str]:
        """See `prune`."""
        return await prune(self._database, retention=retention, max_batches=max_batches)


__all__ = ["BATCH", "DEFAULT_RETENTION", "RetentionStore", "prune"]
