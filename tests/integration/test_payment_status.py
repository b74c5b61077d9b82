"""The stored `payment.status` equals the status derived from the payment's facts after any sequence of
authorize, capture, refund and cancel, including the paths that undo a booking (the provider refuses a
capture, refund or cancel), a capture on authorization, and a provider closing the authorization after
a partial capture. On SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import select

from paymod import PaymentModule
from paymod.domain.errors import PaymodError
from paymod.domain.rules import payment_status
from paymod.domain.statuses import PaymentStatus
from paymod.persistence import tables as t
from paymod.persistence.dashboard_queries import PaymentFilters, list_payments

ZERO = Decimal(0)
PROVIDER = "pp_testing_default"
# The testing provider's behaviour for the whole payment (its session data's `scenario`).
SCENARIOS = ("authorized", "captured", "single_capture", "capture_error", "refund_error", "cancel_error")
OPERATIONS = st.lists(
    st.tuples(st.sampled_from(("capture", "refund", "cancel")), st.none() | st.integers(1, 120)),
    max_size=6,
)


async def stored_and_derived(module: PaymentModule, payment_id: str) -> tuple[str, PaymentStatus]:
    async with module.database.read() as conn:
        stored = (
            await conn.execute(select(t.payment.c.status).where(t.payment.c.id == payment_id))
        ).scalar_one()
    payment = await module.retrieve_payment(payment_id, {"relations": ["captures", "refunds"]})
    derived = payment_status(
        canceled=payment.canceled_at is not None,
        fully_captured=payment.captured_at is not None,
        captured=sum((c.amount for c in payment.captures or []), ZERO),
        refunded=sum((r.amount for r in payment.refunds or []), ZERO),
    )
    return stored, derived


async def run(module: PaymentModule, scenario: str, operations: list[tuple[str, int | None]]) -> None:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 100})
    session = await module.create_payment_session(
        collection.id,
        {"provider_id": PROVIDER, "amount": 100, "currency_code": "usd", "data": {"scenario": scenario}},
    )
    payment = await module.authorize_payment_session(session.id)
    assert payment is not None
    stored, derived = await stored_and_derived(module, payment.id)
    assert stored == derived.value, "after authorization"
    for kind, amount in operations:
        data: dict[str, object] = {"payment_id": payment.id}
        if amount is not None:
            data["amount"] = Decimal(amount) / 2
        try:
            if kind == "cancel":
                await module.cancel_payment(payment.id)
            elif kind == "capture":
                await module.capture_payment(data)
            else:
                await module.refund_payment(data)
        except PaymodError:
            pass  # refused by a guard or by the provider: the status must still be right
        stored, derived = await stored_and_derived(module, payment.id)
        assert stored == derived.value, f"after {kind} {amount}"
    # The dashboard's filter finds the payment under its status and under no other.
    for status in PaymentStatus:
        page = await list_payments(module.database, PaymentFilters(status=status))
        assert (payment.id in {r.id for r in page.rows}) == (status.value == stored), status


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=st.sampled_from(SCENARIOS), operations=OPERATIONS)
async def test_stored_status_is_the_derived_one(
    module: PaymentModule, scenario: str, operations: list[tuple[str, int | None]]
) -> None:
    note(f"{scenario}: {operations}")
    await run(module, scenario, operations)


async def test_every_status_is_reached_and_stored(module: PaymentModule) -> None:
    """A fixed walk through all six statuses, so none is left to chance."""
    seen: set[str] = set()
    for scenario, operations in (
        ("authorized", []),
        ("authorized", [("capture", 40)]),
        ("authorized", [("capture", None)]),
        ("authorized", [("capture", None), ("refund", 40)]),
        ("authorized", [("capture", None), ("refund", None)]),
        ("authorized", [("cancel", None)]),
        ("single_capture", [("capture", 40)]),
        ("capture_error", [("capture", 40)]),
    ):
        await run(module, scenario, operations)
    async with module.database.read() as conn:
        seen = set((await conn.execute(select(t.payment.c.status))).scalars())
    assert seen == {s.value for s in PaymentStatus}
