"""A state machine over one payment collection, driven by hypothesis, on SQLite and PostgreSQL.

Each step is drawn from what the collection holds at that moment: sessions created (split, or
replacing the others as the store does) and deleted, authorized (with providers that authorize,
capture on authorization, ask for 3-D Secure or decline), payments captured, refunded and canceled,
the collection marked as paid or its amount and currency changed; and now and then several of these
at once. A step may be refused (a guard, a race lost), never fail otherwise; after every step the
collection-level invariants hold on the rows in the database (`collection_checks`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from paymod import PaymentModule
from paymod.domain.errors import (
    ConflictError,
    InvalidDataError,
    NotAllowedError,
    NotFoundError,
    PaymentAuthorizationError,
)
from paymod.persistence.database import Database
from paymod.workflows.payment_collection import (
    create_payment_sessions,
    mark_payment_collection_as_paid,
)
from reliability.collection_checks import check

D = Decimal
PROVIDER = "pp_testing_default"
# Refusals a step may meet: a guard, a race lost (conflict), a row another step removed.
REFUSALS = (InvalidDataError, NotAllowedError, ConflictError, NotFoundError, PaymentAuthorizationError)
SCENARIOS = ("authorized", "authorized", "captured", "requires_more", "decline")

Step = Callable[[], Awaitable[Any]]


async def state(module: PaymentModule, collection_id: str) -> tuple[Decimal, list[str], list[str]]:
    collection = await module.retrieve_payment_collection(collection_id)
    sessions = await module.list_payment_sessions({"payment_collection_id": collection_id})
    payments = await module.list_payments({"payment_collection_id": collection_id})
    return collection.amount, [s.id for s in sessions], [p.id for p in payments]


KINDS = (
    "session", "replace", "mark_as_paid", "amount", "authorize", "authorize", "delete_session",
    "capture", "capture", "refund", "refund", "cancel",
)  # fmt: skip


def draw_step(
    data: st.DataObject, module: PaymentModule, collection_id: str, held: tuple[Decimal, list[str], list[str]]
) -> tuple[str, Step]:
    """One operation on the collection as it is now, described for the failure report.

    Hypothesis replays and mutates earlier examples, so what is drawn (how many values, of which
    kind) must never depend on the collection's state: every step draws the same values in the same
    order, and the state only decides which of them are used (a kind that needs a session or a
    payment the collection lacks becomes a new session; sessions and payments are picked by an index
    taken modulo how many there are)."""
    amount, sessions, payments = held
    cents = st.integers(1, 2000).map(lambda n: D(n) / 100)
    kind = data.draw(st.sampled_from(KINDS), label="kind")
    pick = data.draw(st.integers(0, 1000), label="which")
    scenario = data.draw(st.sampled_from(SCENARIOS), label="scenario")
    share_kind = data.draw(st.integers(0, 3), label="session amount kind")
    share = [amount, amount / 2, amount / 4, data.draw(cents, label="session cents")][share_kind]
    new_kind = data.draw(st.integers(0, 3), label="new amount kind")
    new = [amount * 2, amount / 2, amount + D("0.001"), data.draw(cents, label="new cents")][new_kind]
    currency = data.draw(st.sampled_from(["usd", "usd", "usd", "eur"]), label="currency")
    value_kind = data.draw(st.integers(0, 2), label="money amount kind")
    value = [None, data.draw(cents, label="money cents"), D("0.005")][value_kind]
    if (kind in ("authorize", "delete_session") and not sessions) or (
        kind in ("capture", "refund", "cancel") and not payments
    ):
        kind = "session"
    if kind == "replace":
        return f"replace({scenario})", lambda: create_payment_sessions(
            module, collection_id, provider_id=PROVIDER, data={"scenario": scenario}
        )
    if kind == "session":
        return f"session({share}, {scenario})", lambda: module.create_payment_session(
            collection_id,
            {
                "provider_id": PROVIDER,
                "amount": share,
                "currency_code": "usd",
                "data": {"scenario": scenario},
            },
        )
    if kind == "mark_as_paid":
        return "mark_as_paid", lambda: mark_payment_collection_as_paid(module, collection_id)
    if kind == "amount":
        return f"amount({new}, {currency})", lambda: module.update_payment_collections(
            collection_id, {"amount": new, "currency_code": currency}
        )
    if kind in ("authorize", "delete_session"):
        session = sessions[pick % len(sessions)]
        if kind == "authorize":
            return f"authorize({session})", lambda: module.authorize_payment_session(session)
        return f"delete_session({session})", lambda: module.delete_payment_session(session)
    payment = payments[pick % len(payments)]
    if kind == "cancel":
        return f"cancel({payment})", lambda: module.cancel_payment(payment)
    body: dict[str, Any] = (
        {"payment_id": payment} if value is None else {"payment_id": payment, "amount": value}
    )
    if kind == "capture":
        return f"capture({payment}, {value})", lambda: module.capture_payment(body)
    return f"refund({payment}, {value})", lambda: module.refund_payment(body)


@settings(
    max_examples=30,
    deadline=None,
    # an interleaving cannot be replayed: a stored example would not fail the same way again
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # interleavings are not reproducible: shrinking would rerun steps that may not fail again
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(data=st.data())
async def test_collection_invariants_hold_after_every_step(
    module: PaymentModule, database_url: str, data: st.DataObject
) -> None:
    amount = data.draw(st.sampled_from([D(10), D("10.005"), D("99.99")]), label="collection amount")
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": amount})
    database = Database(database_url, pool_size=1)
    history: list[str] = []
    try:
        for _ in range(data.draw(st.integers(3, 12), label="steps")):
            held = await state(module, collection.id)
            burst = data.draw(st.integers(1, 3), label="at once")
            drawn = [draw_step(data, module, collection.id, held) for _ in range(burst)]
            history.append(" | ".join(name for name, _ in drawn))
            note(history[-1])
            results = await asyncio.gather(*(step() for _, step in drawn), return_exceptions=True)
            for (name, _), result in zip(drawn, results, strict=True):
                if isinstance(result, BaseException):
                    assert isinstance(result, REFUSALS), f"{name}: {result!r} after {history}"
            problems = await check(database_url, collection.id, database=database)
            assert not problems, f"after {history}: {problems}"
    finally:
        await database.close()
