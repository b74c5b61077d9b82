"""The reconciler (janitor): finishes flows left in an unknown state.

A run whose caller died leaves its row `running` (or `suspended` after an unknown provider
outcome) with an expired claim. Each such run older than a threshold is resumed from its last
recovery point: a provider call is made again with the run's own idempotency key, so the provider
answers what it did the first time (or does it now, when the process died before asking), and the
outcome is recorded; a refusal then undoes the booking through the flow's compensations. This is the
"completer" of Stripe's idempotency pattern: an operation the caller asked for is finished, never
done twice. (A provider call's journal entry commits with the booking before it, so there is no
"booked but certainly not asked" state to undo instead.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from paymod.domain.errors import NotFoundError, PaymodError
from paymod.services.payment_module import PaymentModule


@dataclass(frozen=True, slots=True)
class Reconciled:
    run_id: str
    name: str
    outcome: str  # completed | failed (a refusal undid the booking, or an error) | busy
    detail: str = ""


async def reconcile(
    module: PaymentModule, *, older_than: timedelta = timedelta(seconds=60)
) -> list[Reconciled]:
    """Resolves stuck runs; returns what it did for each."""
    report = []
    for stale in await module.stale_runs(older_than=older_than):
        try:
            run = await module.claim_run(stale)
        except NotFoundError as exc:
            report.append(Reconciled(stale["id"], stale["name"], "failed", exc.message))
            continue
        except PaymodError as exc:
            report.append(Reconciled(stale["id"], stale["name"], "busy", exc.message))
            continue
        try:
            await module.resume_run(run)
            report.append(Reconciled(run.id, run.name, "completed"))
        except Exception as exc:  # reported, and the run stays for the next pass or an operator
            report.append(Reconciled(run.id, run.name, "failed", f"{type(exc).__name__}: {exc}"))
    return report
