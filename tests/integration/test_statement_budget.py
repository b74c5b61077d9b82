"""The payment flow's SQL budget: how many statements each operation of the benchmark flow sends,
BEGIN and COMMIT included (what `python -m benchmarks.flow` reports as SQL per flow).

Each statement is a round trip, and on the money path most of the module's CPU goes to sending them,
so a change that adds one to these operations fails here and has to say why in this budget. Only
statements sent by the task running the flow are counted (not the process's heartbeat)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import event

from paymod import PaymentModule
from paymod.persistence.database import AUTOCOMMIT_OPTION

BUDGET = {
    "postgresql": {
        "create_payment_collections": 1,
        "create_payment_session": 5,
        "authorize_payment_session": 7,
        "capture_payment": 12,
        "refund_payment": 11,
    },
    "sqlite": {
        "create_payment_collections": 4,
        "create_payment_session": 7,
        "authorize_payment_session": 12,
        "capture_payment": 15,
        "refund_payment": 13,
    },
}


class TaskStatements:
    """Counts the statements (transaction control included) sent by one asyncio task."""

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.count = 0

    def _mine(self) -> bool:
        try:
            return asyncio.current_task() is self.task
        except RuntimeError:
            return False

    def statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # SQLite's BEGIN IMMEDIATE is sent through a cursor: it is counted by `begin` below.
        if self._mine() and not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            self.count += 1

    def control(self, conn: Any, *args: Any) -> None:
        if self._mine() and not conn.get_execution_options().get(AUTOCOMMIT_OPTION):
            self.count += 1


@contextmanager
def counting(module: PaymentModule) -> Iterator[TaskStatements]:
    task = asyncio.current_task()
    assert task is not None
    counter = TaskStatements(task)
    engine = module.database.engine.sync_engine
    listeners = [("before_cursor_execute", counter.statement)] + [
        (name, counter.control) for name in ("begin", "commit", "rollback")
    ]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield counter
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)


async def test_the_flow_stays_within_its_statement_budget(module: PaymentModule) -> None:
    budget = BUDGET[module.database.dialect]
    sent: dict[str, int] = {}

    async def measured(operation: str, call: Any) -> Any:
        with counting(module) as counter:
            result = await call
        sent[operation] = counter.count
        return result

    # Once untimed: the first flow of a process also reads what it caches (providers, statements).
    for _ in range(2):
        collection = await measured(
            "create_payment_collections",
            module.create_payment_collections({"currency_code": "usd", "amount": 5000}),
        )
        session = await measured(
            "create_payment_session",
            module.create_payment_session(
                collection.id, {"provider_id": "pp_system_default", "amount": 5000, "currency_code": "usd"}
            ),
        )
        payment = await measured("authorize_payment_session", module.authorize_payment_session(session.id))
        assert payment is not None
        await measured("capture_payment", module.capture_payment({"payment_id": payment.id, "amount": 5000}))
        await measured("refund_payment", module.refund_payment({"payment_id": payment.id, "amount": 2000}))

    done = await module.retrieve_payment_collection(collection.id)
    assert done.status == "completed"
    assert (done.captured_amount, done.refunded_amount) == (Decimal(5000), Decimal(2000))
    over = {op: (sent[op], limit) for op, limit in budget.items() if sent[op] > limit}
    assert not over, f"statements sent (budget): {over}"
    assert sent == budget, f"fewer statements than the budget: lower it to {sent}"
