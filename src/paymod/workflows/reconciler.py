"""The reconciler (janitor): finishes or undoes flows left in an unknown state.

A run whose caller died leaves its row `running` (or `suspended` after an unknown provider
outcome) with an expired claim. For each such run older than a threshold:

- if its next step is a provider call that was never started (no journal entry), the provider was
  not asked: the run is compensated (the booked capture/refund/cancel is undone);
- otherwise the run is resumed: the provider call is made again with the run's own idempotency key,
  so the provider answers what it did the first time (or does it now), and the outcome is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from paymod.domain.errors import PaymodError
from paymod.persistence.repository import utc_now
from paymod.persistence.tables import workflow_run
from paymod.services.payment_module import PaymentModule
from paymod.workflows.engine import Run, Workflow
from paymod.workflows.store import DatabaseRunStore


@dataclass(frozen=True, slots=True)
class Reconciled:
    run_id: str
    name: str
    outcome: str  # completed | compensated | failed | busy
    detail: str = ""


def _next_step(workflow: Workflow, run: Run) -> Any:
    return next((s for s in workflow.steps if not run.done(s.name)), None)


async def reconcile(
    module: PaymentModule, *, older_than: timedelta = timedelta(seconds=60)
) -> list[Reconciled]:
    """Resolves stuck runs; returns what it did for each."""
    now = utc_now()
    stmt = select(workflow_run).where(
        workflow_run.c.status.in_(("running", "suspended")),
        (workflow_run.c.locked_until.is_(None)) | (workflow_run.c.locked_until < now),
        workflow_run.c.updated_at < now - older_than,
    )
    async with module.database.read() as conn:
        rows = [dict(r) for r in (await conn.execute(stmt.order_by(workflow_run.c.updated_at))).mappings()]
    store = module.runner.store
    assert isinstance(store, DatabaseRunStore)
    report = []
    for row in rows:
        workflow = module.flows.get(row["name"])
        if workflow is None:
            report.append(Reconciled(row["id"], row["name"], "failed", "no such flow in this process"))
            continue
        try:
            run = await store.claim(row, row["fingerprint"])
        except PaymodError as exc:
            report.append(Reconciled(row["id"], row["name"], "busy", exc.message))
            continue
        step = _next_step(workflow, run)
        try:
            if (
                step is not None
                and not step.local
                and run.steps.get(step.name, {}).get("status") != "started"
            ):
                await module.runner.abandon(
                    workflow, run, f"abandoned before {step.name}: the provider was not asked"
                )
                report.append(Reconciled(run.id, run.name, "compensated", f"before {step.name}"))
            else:
                await module.runner.resume(workflow, run)
                report.append(Reconciled(run.id, run.name, "completed"))
        except Exception as exc:  # reported, and the run stays for the next pass or an operator
            report.append(Reconciled(run.id, run.name, "failed", f"{type(exc).__name__}: {exc}"))
    return report
