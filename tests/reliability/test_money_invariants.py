"""Random capture / refund / cancel sequences through the real PaymentModule, on SQLite and PostgreSQL.

After every step, DESIGN.md's money invariants hold for the payment:

- the payment holds its session's amount at the currency's precision (a 200.124 USD session pays
  200.12), and captures and refunds finer than the currency are refused;
- Σcaptures ≤ the payment amount and Σrefunds ≤ Σcaptures, exactly;
- nothing is captured after a cancel;

and the stored collection (status and amounts) equals `derive_collection` recomputed from the
collection's sessions, payments, captures and refunds as the module lists them. A small model of the
payment also predicts which sequential operations succeed and what they book.

Each example creates its own collection, session and payment, so examples on the shared
function-scoped `module` fixture do not interfere.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st

from paymod import PaymentModule
from paymod.domain.errors import InvalidDataError, NotAllowedError, PaymodError
from paymod.domain.money import minor_unit, round_amount
from paymod.domain.rules import (
    CAPTURE_EXCEEDS,
    CAPTURE_NOT_POSITIVE,
    REFUND_EXCEEDS,
    REFUND_NOT_POSITIVE,
    PaymentFacts,
    SessionFacts,
    derive_collection,
)
from paymod.services.dto import PaymentDTO

D = Decimal
ZERO = D(0)
PROVIDER = "pp_testing_default"
CURRENCIES = ("usd", "jpy", "kwd")

# Values no amount parser may accept (each must fail with invalid_data and change nothing).
GARBAGE: tuple[object, ...] = (
    "abc",
    "NaN",
    "Infinity",
    "-inf",
    "",
    True,
    "1e15",
    10**16,
    [1],
    {"value": "x"},
)


# -- scenarios ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    kind: str  # capture, refund, cancel; garbage_ and nonpositive_ capture or refund
    amount: Decimal | None = None
    wire: object = None  # the value sent as `amount` (str, Decimal, int, float or Medusa's raw shape)


@dataclass(frozen=True)
class Scenario:
    currency: str
    payment_amount: Decimal
    collection_amount: Decimal
    steps: tuple[tuple[Op, ...], ...]  # one op, or a burst of ops run concurrently


@st.composite
def wire_forms(draw: st.DrawFn, amount: Decimal) -> object:
    """The same amount in one of the shapes a client may send."""
    forms: list[object] = [str(amount), amount, {"value": str(amount), "precision": 20}]
    if amount == amount.to_integral_value():
        forms.append(int(amount))
    if len(amount.as_tuple().digits) <= 15:
        forms.append(float(amount))  # its shortest repr is the same decimal
    return draw(st.sampled_from(forms))


@st.composite
def scenarios(draw: st.DrawFn, *, bursts: bool) -> Scenario:
    currency = draw(st.sampled_from(CURRENCIES), label="currency")
    unit = minor_unit(currency)
    units = draw(st.integers(1, 50_000), label="payment units")
    # now and then one digit more than the currency has (tax-inclusive prices produce such amounts)
    tenth = draw(st.sampled_from([0, 0, 0, 4, 5, 6]), label="sub-unit digit")
    payment_amount = units * unit + tenth * unit / 10
    extra = draw(st.sampled_from([0, 0, 0, max(1, units // 2)]), label="collection extra units")
    collection_amount = payment_amount + extra * unit

    def grid(max_units: int) -> st.SearchStrategy[Decimal]:
        return st.integers(1, max(1, max_units)).map(lambda k: k * unit)

    capture_amounts = st.one_of(grid(units // 3), grid(units + 2))
    refund_amounts = st.one_of(
        capture_amounts,
        st.tuples(grid(units + 1), st.integers(1, 9)).map(lambda t: t[0] + t[1] * unit / 10),
    )

    @st.composite
    def valid_op(draw_op: st.DrawFn) -> Op:
        kind = draw_op(st.sampled_from(["capture", "capture", "refund", "refund", "cancel"]))
        if kind == "cancel":
            return Op("cancel")
        amounts = capture_amounts if kind == "capture" else refund_amounts
        amount = draw_op(st.none() | amounts)
        return Op(kind, amount, None if amount is None else draw_op(wire_forms(amount)))

    invalid_op = st.one_of(
        st.builds(
            Op, st.sampled_from(["garbage_capture", "garbage_refund"]), st.none(), st.sampled_from(GARBAGE)
        ),
        # zero and negative amounts fail the guards with Medusa's messages
        st.builds(
            Op,
            st.sampled_from(["nonpositive_capture", "nonpositive_refund"]),
            st.just(ZERO),
            st.sampled_from([0, "0", str(-unit), -unit]),
        ),
    )
    single = st.one_of(valid_op(), valid_op(), invalid_op).map(lambda op: (op,))
    # a burst: two to four operations sent at once
    step = st.one_of(single, st.lists(valid_op(), min_size=2, max_size=4).map(tuple)) if bursts else single
    steps = draw(st.lists(step, min_size=1, max_size=6), label="steps")
    return Scenario(currency, payment_amount, collection_amount, tuple(steps))


# -- the model ------------------------------------------------------------------------------------------
@dataclass
class Model:
    """What the payment should look like, from the operations alone."""

    currency: str
    amount: Decimal
    captured: Decimal = ZERO
    refunded: Decimal = ZERO
    fully_captured: bool = False
    canceled: bool = False
    captured_at_cancel: Decimal | None = None
    history: list[str] = field(default_factory=list)

    @property
    def unit(self) -> Decimal:
        return minor_unit(self.currency)

    @property
    def rounded(self) -> Decimal:
        return round_amount(self.amount, self.currency)

    def expect(self, op: Op) -> tuple[type[PaymodError] | None, str | None, Decimal]:
        """(error class or None, error message or None, amount booked) for one sequential op."""
        if op.kind in ("garbage_capture", "garbage_refund"):
            return InvalidDataError, None, ZERO
        if op.kind in ("capture", "nonpositive_capture"):
            if self.canceled:
                return InvalidDataError, None, ZERO
            if self.fully_captured:
                return None, None, ZERO  # an idempotent no-op
            if op.kind == "nonpositive_capture":
                return InvalidDataError, CAPTURE_NOT_POSITIVE, ZERO
            if op.amount is None:
                return None, None, self.rounded - self.captured
            if op.amount != round_amount(op.amount, self.currency):
                return InvalidDataError, None, ZERO
            if op.amount > self.rounded - self.captured:
                return InvalidDataError, CAPTURE_EXCEEDS, ZERO
            return None, None, op.amount
        if op.kind == "nonpositive_refund":
            return InvalidDataError, REFUND_NOT_POSITIVE, ZERO
        if op.kind == "refund":
            remaining = self.captured - self.refunded
            if op.amount is None:
                return (None, None, remaining) if remaining > 0 else (InvalidDataError, REFUND_EXCEEDS, ZERO)
            if op.amount != round_amount(op.amount, self.currency):
                return InvalidDataError, None, ZERO
            if op.amount > remaining:
                return InvalidDataError, REFUND_EXCEEDS, ZERO
            return None, None, op.amount
        assert op.kind == "cancel"
        if self.canceled:
            return None, None, ZERO
        if self.fully_captured:
            return NotAllowedError, "Cannot cancel a payment: {id} that has been captured.", ZERO
        return None, None, ZERO

    def apply(self, op: Op, booked: Decimal) -> None:
        if op.kind == "capture" and booked:
            self.captured += booked
            self.fully_captured = self.captured >= self.rounded
        elif op.kind == "refund" and booked:
            self.refunded += booked
        elif op.kind == "cancel" and not self.canceled:
            self.canceled = True
            self.captured_at_cancel = self.captured


# -- helpers --------------------------------------------------------------------------------------------
async def call(module: PaymentModule, payment_id: str, op: Op) -> PaymentDTO:
    if op.kind == "cancel":
        return await module.cancel_payment(payment_id)
    data: dict[str, Any] = {"payment_id": payment_id}
    if op.amount is not None or op.wire is not None:
        data["amount"] = op.wire
    if op.kind.endswith("capture"):
        return await module.capture_payment(data)
    return await module.refund_payment(data)


async def payment_state(module: PaymentModule, payment_id: str) -> tuple[PaymentDTO, Decimal, Decimal]:
    payment = await module.retrieve_payment(payment_id, {"relations": ["captures", "refunds"]})
    captured = sum((c.amount for c in payment.captures or []), ZERO)
    refunded = sum((r.amount for r in payment.refunds or []), ZERO)
    return payment, captured, refunded


async def check_collection(module: PaymentModule, collection_id: str) -> None:
    """The stored status and amounts equal derive_collection over what the module lists."""
    collection = await module.retrieve_payment_collection(collection_id)
    sessions = await module.list_payment_sessions({"payment_collection_id": collection_id})
    payments = await module.list_payments(
        {"payment_collection_id": collection_id}, {"relations": ["captures", "refunds"]}
    )
    canceled_sessions = {p.payment_session_id for p in payments if p.canceled_at is not None}
    expected = derive_collection(
        amount=collection.amount,
        currency_code=collection.currency_code,
        sessions=[
            SessionFacts(
                status=s.status,
                amount=s.amount,
                currency_code=s.currency_code,
                payment_canceled=s.id in canceled_sessions,
            )
            for s in sessions
        ],
        payments=[
            PaymentFacts(
                currency_code=p.currency_code,
                canceled=p.canceled_at is not None,
                captures=[c.amount for c in p.captures or []],
                refunds=[r.amount for r in p.refunds or []],
            )
            for p in payments
        ],
    )
    assert collection.status == expected.status.value
    assert collection.authorized_amount == expected.authorized_amount
    assert collection.captured_amount == expected.captured_amount
    assert collection.refunded_amount == expected.refunded_amount
    if expected.completed:
        assert collection.completed_at is not None


async def check_invariants(module: PaymentModule, model: Model, payment_id: str, collection_id: str) -> None:
    payment, captured, refunded = await payment_state(module, payment_id)
    currency = model.currency
    where = " -> ".join(model.history)
    # amounts in the currency's precision; Σcaptures ≤ amount; Σrefunds ≤ Σcaptures
    for amount in (
        payment.amount,
        *(c.amount for c in payment.captures or []),
        *(r.amount for r in payment.refunds or []),
    ):
        assert amount == round_amount(amount, currency), where
    assert captured <= payment.amount, where
    assert refunded <= captured, where
    # nothing captured after cancel
    if model.captured_at_cancel is not None:
        assert payment.canceled_at is not None, where
        assert captured == model.captured_at_cancel, where
    # a payment is never both canceled and fully captured
    assert not (payment.canceled_at is not None and payment.captured_at is not None), where
    await check_collection(module, collection_id)


async def run_scenario(module: PaymentModule, scenario: Scenario) -> None:
    currency = scenario.currency
    collection = await module.create_payment_collections(
        {"currency_code": currency, "amount": scenario.collection_amount}
    )
    session = await module.create_payment_session(
        collection.id,
        {"provider_id": PROVIDER, "amount": scenario.payment_amount, "currency_code": currency, "data": {}},
    )
    payment = await module.authorize_payment_session(session.id)
    assert payment is not None
    assert payment.amount == round_amount(scenario.payment_amount, currency)
    model = Model(currency=currency, amount=scenario.payment_amount)
    model.history.append(f"{currency} {scenario.payment_amount} (collection {scenario.collection_amount})")
    await check_invariants(module, model, payment.id, collection.id)

    for step in scenario.steps:
        if len(step) == 1:
            op = step[0]
            model.history.append(f"{op.kind}({op.wire!r})")
            error, message, booked = model.expect(op)
            before = await payment_state(module, payment.id)
            try:
                await call(module, payment.id, op)
            except PaymodError as exc:
                assert error is not None, f"{op} failed: {exc!r} after {model.history}"
                assert isinstance(exc, error), f"{op}: {exc!r}"
                if message is not None:
                    assert exc.message == message.replace("{id}", payment.id), f"{op}: {exc!r}"
                after = await payment_state(module, payment.id)
                assert after[1:] == before[1:], f"{op} failed but changed the payment"
            else:
                assert error is None, f"{op} succeeded; expected {error.__name__}: {message}"
                model.apply(op, booked)
                stored, captured, refunded = await payment_state(module, payment.id)
                assert captured == model.captured, model.history
                assert refunded == model.refunded, model.history
                assert (stored.captured_at is not None) == model.fully_captured, model.history
                assert (stored.canceled_at is not None) == model.canceled, model.history
        else:
            model.history.append("burst[" + ", ".join(f"{op.kind}({op.wire!r})" for op in step) + "]")
            results = await asyncio.gather(
                *(call(module, payment.id, op) for op in step), return_exceptions=True
            )
            for op, result in zip(step, results, strict=True):
                if isinstance(result, BaseException):
                    # only the guards may refuse; never a lock error or a crash
                    assert isinstance(result, InvalidDataError | NotAllowedError), f"{op}: {result!r}"
            # resynchronize the model with what was booked
            stored, captured, refunded = await payment_state(module, payment.id)
            assert captured >= model.captured and refunded >= model.refunded, model.history
            if model.canceled:
                assert captured == model.captured, f"captured after cancel: {model.history}"
            model.captured, model.refunded = captured, refunded
            model.fully_captured = stored.captured_at is not None
            if stored.canceled_at is not None and not model.canceled:
                model.canceled = True
                model.captured_at_cancel = captured
        await check_invariants(module, model, payment.id, collection.id)


BOUNDED = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@BOUNDED
@given(scenario=scenarios(bursts=False))
async def test_money_invariants_hold_after_every_sequential_step(
    module: PaymentModule, scenario: Scenario
) -> None:
    """One request at a time: the model predicts each outcome exactly."""
    note(repr(scenario))
    await run_scenario(module, scenario)


@settings(
    BOUNDED,
    # interleavings are not reproducible, so shrinking would rerun examples that may not fail again
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(scenario=scenarios(bursts=True))
@example(
    scenario=Scenario(
        "usd",
        D(100),
        D(100),
        ((Op("capture", D(40), "40"),), (Op("capture"), Op("cancel")), (Op("capture"), Op("refund"))),
    )
)
async def test_money_invariants_hold_under_concurrent_bursts(
    module: PaymentModule, scenario: Scenario
) -> None:
    """Some steps send two to four captures, refunds and cancels at once: the invariants still hold."""
    note(repr(scenario))
    await run_scenario(module, scenario)
