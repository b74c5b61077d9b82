"""Payment rules: the capture and refund guards, cancel, and the collection status derivation (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from paymod.domain.errors import InvalidDataError, NotAllowedError
from paymod.domain.money import currency_precision, minor_unit, round_amount
from paymod.domain.rules import (
    CAPTURE_EXCEEDS,
    CAPTURE_NOT_POSITIVE,
    REFUND_EXCEEDS,
    REFUND_NOT_POSITIVE,
    CapturePlan,
    PaymentFacts,
    SessionFacts,
    check_cancel,
    derive_collection,
    plan_capture,
    plan_refund,
)
from paymod.domain.statuses import PaymentCollectionStatus, PaymentSessionStatus

D = Decimal
S = PaymentCollectionStatus


def capture(
    amount: str | Decimal,
    captured: Sequence[str | Decimal] = (),
    requested: str | Decimal | None = None,
    *,
    currency: str = "usd",
    canceled: bool = False,
    fully: bool = False,
) -> CapturePlan | None:
    return plan_capture(
        payment_id="pay_1",
        payment_amount=D(amount),
        currency_code=currency,
        captured=[D(c) for c in captured],
        requested=None if requested is None else D(requested),
        canceled=canceled,
        already_fully_captured=fully,
    )


def refund(
    captured: Sequence[str | Decimal],
    refunded: Sequence[str | Decimal] = (),
    requested: str | Decimal | None = None,
    *,
    currency: str = "usd",
) -> Decimal:
    return plan_refund(
        currency_code=currency,
        captured=[D(c) for c in captured],
        refunded=[D(r) for r in refunded],
        requested=None if requested is None else D(requested),
    )


# -- messages -------------------------------------------------------------------------------------------
def test_messages_are_medusas_typos_included() -> None:
    assert CAPTURE_EXCEEDS == (
        "You cannot capture more than the authorized amount substracted by what is already captured."
    )
    assert REFUND_EXCEEDS == "You cannot refund more than what is captured on the payment."
    assert CAPTURE_NOT_POSITIVE == "Capture amount must be greater than 0."
    assert REFUND_NOT_POSITIVE == "Refund amount must be greater than 0."


# -- plan_capture ---------------------------------------------------------------------------------------
def test_capture_of_a_canceled_payment_fails_first() -> None:
    # canceled is checked before "already fully captured" and before the amount
    for requested, fully in ((None, False), (None, True), ("-1", False), ("1000", False), ("10", True)):
        with pytest.raises(InvalidDataError, match=r"^The payment: pay_1 has been canceled\.$") as info:
            capture("100", [], requested, canceled=True, fully=fully)
        assert info.value.type == "invalid_data"


@pytest.mark.parametrize("requested", [None, "10", "100", "1000", "0", "-5"])
def test_capture_of_a_fully_captured_payment_is_a_no_op(requested: str | None) -> None:
    assert capture("100", ["100"], requested, fully=True) is None


def test_capture_without_amount_takes_what_remains() -> None:
    assert capture("100") == CapturePlan(amount=D(100), fully_captured=True)
    assert capture("100", ["30"]) == CapturePlan(amount=D(70), fully_captured=True)
    assert capture("100", ["30", "20.5"]) == CapturePlan(amount=D("49.5"), fully_captured=True)
    # unlike Medusa (which takes the whole payment amount and then fails the guard); a payment amount
    # with more digits than the currency counts at the currency's precision (87.96)
    assert capture("87.957975", ["50"]) == CapturePlan(amount=D("37.96"), fully_captured=True)


def test_capture_without_amount_when_nothing_remains_is_a_no_op() -> None:
    assert capture("100", ["100"]) is None
    assert capture("100", ["60", "40"]) is None


@pytest.mark.parametrize("requested", ["0", "-0.01", "-100", "0.00"])
def test_capture_amount_must_be_positive(requested: str) -> None:
    with pytest.raises(InvalidDataError) as info:
        capture("100", [], requested)
    assert info.value.message == CAPTURE_NOT_POSITIVE


def test_partial_capture() -> None:
    assert capture("100", [], "30") == CapturePlan(amount=D(30), fully_captured=False)
    assert capture("100", ["30"], "69.99") == CapturePlan(amount=D("69.99"), fully_captured=False)
    assert capture("100", ["30"], "70") == CapturePlan(amount=D(70), fully_captured=True)


@pytest.mark.parametrize(
    ("amount", "captured", "requested"),
    [
        ("100", [], "100.01"),
        ("100", ["30"], "70.01"),
        ("100", ["30", "40"], "31"),
        ("100", ["99.99"], "0.02"),
        ("500", ["30"] * 16, "30"),
    ],
)
def test_capture_more_than_what_remains_fails(amount: str, captured: list[str], requested: str) -> None:
    with pytest.raises(InvalidDataError) as info:
        capture(amount, captured, requested)
    assert info.value.message == CAPTURE_EXCEEDS
    assert info.value.type == "invalid_data"


def test_capture_guard_rounds_to_the_currency_precision() -> None:
    # reference 9.2: capturing 200.13 of a 200.129 USD payment completes it
    assert capture("200.129", [], "200.13") == CapturePlan(amount=D("200.13"), fully_captured=True)
    assert capture("200.129", ["100"], "100.13") == CapturePlan(amount=D("100.13"), fully_captured=True)
    with pytest.raises(InvalidDataError, match="substracted"):
        capture("200.129", [], "200.14")
    # a capture that rounds to what remains completes the payment
    assert capture("200.125", [], "200.13") == CapturePlan(amount=D("200.13"), fully_captured=True)
    assert capture("200.124", [], "200.12") == CapturePlan(amount=D("200.12"), fully_captured=True)
    assert capture("200.124", [], "200.11") == CapturePlan(amount=D("200.11"), fully_captured=False)


def test_capture_guard_rounds_jpy_to_units() -> None:
    # Medusa 2.21 does not round JPY: 1000 of a 1000.4 JPY payment would not complete it there
    assert capture("1000.4", [], "1000", currency="jpy") == CapturePlan(amount=D(1000), fully_captured=True)
    assert capture("1000.4", ["400"], "600", currency="JPY") == CapturePlan(
        amount=D(600), fully_captured=True
    )
    assert capture("1000.4", [], "999", currency="jpy") == CapturePlan(amount=D(999), fully_captured=False)
    with pytest.raises(InvalidDataError, match="substracted"):
        capture("1000.4", [], "1001", currency="jpy")
    with pytest.raises(InvalidDataError, match="substracted"):
        capture("1000", ["500"], "501", currency="jpy")


def test_capture_guard_uses_three_digits_for_kwd() -> None:
    assert capture("10.0004", [], "10") == CapturePlan(amount=D(10), fully_captured=True)  # usd: 10.00
    assert capture("10.0004", [], "10", currency="kwd") == CapturePlan(amount=D(10), fully_captured=True)
    assert capture("10.0006", [], "10", currency="kwd") == CapturePlan(amount=D(10), fully_captured=False)
    with pytest.raises(InvalidDataError, match="substracted"):
        capture("10", [], "10.001", currency="kwd")


def test_sub_unit_captures_cannot_exceed_the_rounded_payment_amount() -> None:
    """DESIGN.md: Σcaptures ≤ amount (rounded), for every payment at every moment.

    Medusa's rounding let 0.994 + 0.014 pass on 1.00 USD; here neither is a USD amount, and the
    captures' exact sum is compared, so 0.994 + 0.01 (1.004) cannot be booked either.
    """
    for requested in ("0.994", "0.014", "0.995"):
        with pytest.raises(InvalidDataError) as info:
            capture("1.00", [], requested)
        assert info.value.code == "invalid_amount"
    # a sub-unit capture booked before amounts were held to the currency still counts exactly
    with pytest.raises(InvalidDataError, match="substracted"):
        capture("1.00", ["0.994"], "0.01")


@pytest.mark.parametrize(
    ("currency", "requested", "digits"),
    [("jpy", "1000.4", "0 decimal places"), ("usd", "0.994", "2 decimal places"), ("kwd", "1.0001", "3")],
)
def test_captures_finer_than_the_currency_are_refused_naming_it(
    currency: str, requested: str, digits: str
) -> None:
    with pytest.raises(InvalidDataError) as info:
        capture("2000", [], requested, currency=currency)
    assert info.value.type == "invalid_data"
    assert info.value.code == "invalid_amount"
    assert currency.upper() in info.value.message and digits in info.value.message


def test_five_sub_unit_jpy_captures_reach_nobody() -> None:
    """Five JPY 0.4 captures used to be booked (and sent to the provider unrounded)."""
    for _ in range(5):
        with pytest.raises(InvalidDataError, match="JPY"):
            capture("1000", [], "0.4", currency="jpy")


# -- plan_refund ----------------------------------------------------------------------------------------
def test_refund_within_what_is_captured() -> None:
    assert refund(["100"], [], "40") == D(40)
    assert refund(["100"], ["40"], "60") == D(60)
    assert refund(["60", "40"], ["10", "20"], "70") == D(70)


def test_refund_without_amount_takes_what_remains_refundable() -> None:
    assert refund(["100"]) == D(100)
    assert refund(["100"], ["40"]) == D(60)
    assert refund(["60", "40"], ["10", "20.5"]) == D("69.5")
    # captures booked with more digits than the currency count at its precision
    assert refund(["87.957975"]) == D("87.96")


def test_refund_without_amount_when_nothing_is_refundable_fails() -> None:
    for captured, refunded in (([], []), (["100"], ["100"]), (["100"], ["60", "40.01"])):
        with pytest.raises(InvalidDataError) as info:
            refund(captured, refunded)
        assert info.value.message == REFUND_EXCEEDS


@pytest.mark.parametrize("requested", ["0", "-1", "-0.01", "0.000"])
def test_refund_amount_must_be_positive(requested: str) -> None:
    with pytest.raises(InvalidDataError) as info:
        refund(["100"], [], requested)
    assert info.value.message == REFUND_NOT_POSITIVE


def test_refunds_compare_with_the_captures_at_the_currency_precision() -> None:
    # reference 2.3 / 9.2-38: 87.96 refunds a (legacy, sub-cent) 87.957975 USD capture; 87.97 is too much
    assert refund(["87.957975"], [], "87.96") == D("87.96")
    with pytest.raises(InvalidDataError, match="refund more than"):
        refund(["87.957975"], [], "87.97")
    with pytest.raises(InvalidDataError) as info:
        refund(["87.957975"], [], "87.957975")  # not a USD amount
    assert info.value.code == "invalid_amount"


@pytest.mark.parametrize(
    ("currency", "ok", "too_much"),
    [
        ("usd", "100", "100.01"),
        ("jpy", "100", "101"),
        ("kwd", "100", "100.001"),
        ("xyz", "100", "100.01"),
    ],
)
def test_a_refund_never_exceeds_what_was_captured(currency: str, ok: str, too_much: str) -> None:
    """The one-minor-unit tolerance of Medusa is gone: captures are in the currency's precision."""
    assert refund(["100"], [], ok, currency=currency) == D(ok)
    with pytest.raises(InvalidDataError, match="refund more than"):
        refund(["100"], [], too_much, currency=currency)


def test_refunds_are_counted_across_refunds() -> None:
    assert refund(["100"], ["50"], "50") == D("50")
    with pytest.raises(InvalidDataError, match="refund more than"):
        refund(["100"], ["50"], "50.01")
    with pytest.raises(InvalidDataError, match="refund more than"):
        refund([], [], "0.01")


@pytest.mark.parametrize(("currency", "requested"), [("usd", "0.001"), ("jpy", "0.5"), ("kwd", "0.0001")])
def test_refunds_finer_than_the_currency_are_refused(currency: str, requested: str) -> None:
    with pytest.raises(InvalidDataError) as info:
        refund(["100"], [], requested, currency=currency)
    assert info.value.code == "invalid_amount"
    assert currency.upper() in info.value.message


# -- check_cancel ---------------------------------------------------------------------------------------
def test_cancel_of_a_fully_captured_payment_is_not_allowed() -> None:
    with pytest.raises(NotAllowedError) as info:
        check_cancel(
            payment_id="pay_1",
            payment_amount=D("100"),
            currency_code="usd",
            captured=[],
            already_fully_captured=True,
        )
    assert info.value.message == "Cannot cancel a payment: pay_1 that has been captured."
    assert info.value.type == "not_allowed"


def test_cancel_is_refused_once_booked_captures_cover_the_payment() -> None:
    """A capture booked but not yet confirmed by the provider already blocks a cancel (no race)."""
    with pytest.raises(NotAllowedError):
        check_cancel(
            payment_id="pay_1",
            payment_amount=D("100.004"),
            currency_code="usd",
            captured=[D("60"), D("40")],
            already_fully_captured=False,
        )


@pytest.mark.parametrize("captured", [[], ["30"], ["99.99"]])
def test_cancel_of_a_payment_not_fully_captured_is_allowed(captured: list[str]) -> None:
    assert (
        check_cancel(
            payment_id="pay_1",
            payment_amount=D("100"),
            currency_code="usd",
            captured=[D(c) for c in captured],
            already_fully_captured=False,
        )
        is None
    )


# -- derive_collection ----------------------------------------------------------------------------------
def session(
    status: str = PaymentSessionStatus.AUTHORIZED,
    amount: str = "100",
    currency: str = "usd",
    *,
    canceled: bool = False,
) -> SessionFacts:
    return SessionFacts(status=status, amount=D(amount), currency_code=currency, payment_canceled=canceled)


def payment(
    captures: Sequence[str] = (),
    refunds: Sequence[str] = (),
    currency: str = "usd",
    *,
    canceled: bool = False,
) -> PaymentFacts:
    return PaymentFacts(
        currency_code=currency,
        canceled=canceled,
        captures=[D(c) for c in captures],
        refunds=[D(r) for r in refunds],
    )


def derive(
    amount: str = "100",
    sessions: Sequence[SessionFacts] = (),
    payments: Sequence[PaymentFacts] = (),
    currency: str = "usd",
) -> tuple[PaymentCollectionStatus, Decimal, Decimal, Decimal, bool]:
    totals = derive_collection(amount=D(amount), currency_code=currency, sessions=sessions, payments=payments)
    return (
        totals.status,
        totals.authorized_amount,
        totals.captured_amount,
        totals.refunded_amount,
        totals.completed,
    )


def test_no_session_is_not_paid() -> None:
    assert derive("100") == (S.NOT_PAID, 0, 0, 0, False)


@pytest.mark.parametrize(
    "status",
    [
        PaymentSessionStatus.PENDING,
        PaymentSessionStatus.REQUIRES_MORE,
        PaymentSessionStatus.ERROR,
        PaymentSessionStatus.CANCELED,
        PaymentSessionStatus.PENDING_AUTHORIZATION,
    ],
)
def test_sessions_not_authorized_are_awaiting(status: str) -> None:
    assert derive("100", [session(status)]) == (S.AWAITING, 0, 0, 0, False)


def test_authorized_sessions_covering_the_amount_are_authorized() -> None:
    assert derive("100", [session(amount="100")], [payment()]) == (S.AUTHORIZED, 100, 0, 0, False)
    assert derive("100", [session(amount="60"), session(amount="40")]) == (S.AUTHORIZED, 100, 0, 0, False)
    assert derive("100", [session(amount="60"), session(PaymentSessionStatus.PENDING, "40")])[0] == (
        S.PARTIALLY_AUTHORIZED
    )
    # compared after rounding to the currency's precision
    assert derive("200.129", [session(amount="200.13")])[0] == S.AUTHORIZED
    assert derive("200.124", [session(amount="200.12")])[0] == S.AUTHORIZED
    assert derive("1000.4", [session(amount="1000", currency="jpy")], currency="jpy")[0] == S.AUTHORIZED


def test_authorized_less_than_the_amount_is_partially_authorized() -> None:
    assert derive("100", [session(amount="50")]) == (S.PARTIALLY_AUTHORIZED, 50, 0, 0, False)
    assert derive("200.129", [session(amount="200.12")])[0] == S.PARTIALLY_AUTHORIZED
    assert derive("1000.6", [session(amount="1000", currency="jpy")], currency="jpy")[0] == (
        S.PARTIALLY_AUTHORIZED
    )


def test_partial_captures_keep_the_authorized_status() -> None:
    assert derive("100", [session()], [payment(["30"])]) == (S.AUTHORIZED, 100, 30, 0, False)


def test_captured_amount_reaching_the_amount_is_completed() -> None:
    assert derive("100", [session()], [payment(["100"])]) == (S.COMPLETED, 100, 100, 0, True)
    assert derive("100", [session()], [payment(["60", "40"])]) == (S.COMPLETED, 100, 100, 0, True)
    assert derive("200.129", [session(amount="200.129")], [payment(["200.13"])])[0] == S.COMPLETED
    jpy = derive(
        "1000.4", [session(amount="1000.4", currency="jpy")], [payment(["1000"], currency="jpy")], "jpy"
    )
    assert jpy[0] == S.COMPLETED


def test_captures_across_payments_add_up() -> None:
    sessions = [session(amount="60"), session(amount="40")]
    assert derive("100", sessions, [payment(["60"]), payment(["30"])]) == (S.AUTHORIZED, 100, 90, 0, False)
    assert derive("100", sessions, [payment(["60"]), payment(["40"])]) == (S.COMPLETED, 100, 100, 0, True)


def test_collection_of_amount_zero_is_completed() -> None:
    assert derive("0") == (S.COMPLETED, 0, 0, 0, True)
    assert derive("0", [session(PaymentSessionStatus.PENDING, "0")])[0] == S.COMPLETED


def test_completed_stays_completed_after_refunds() -> None:
    assert derive("100", [session()], [payment(["100"], ["30"])]) == (S.COMPLETED, 100, 100, 30, True)
    assert derive("100", [session()], [payment(["100"], ["100"])]) == (S.COMPLETED, 100, 100, 100, True)


def test_refunds_never_change_a_status() -> None:
    assert derive("100", [session()], [payment(["30"], ["30"])]) == (S.AUTHORIZED, 100, 30, 30, False)


def test_canceled_payment_without_captures_is_canceled() -> None:
    assert derive("100", [session(canceled=True)], [payment(canceled=True)]) == (S.CANCELED, 0, 0, 0, False)


def test_canceled_payment_after_partial_capture_is_partially_captured() -> None:
    assert derive("100", [session(canceled=True)], [payment(["40"], canceled=True)]) == (
        S.PARTIALLY_CAPTURED,
        0,
        40,
        0,
        False,
    )
    assert derive("100", [session(canceled=True)], [payment(["40"], ["40"], canceled=True)]) == (
        S.PARTIALLY_CAPTURED,
        0,
        40,
        40,
        False,
    )


def test_a_canceled_payment_next_to_an_authorized_one_counts_only_the_live_one() -> None:
    sessions = [session(amount="60", canceled=True), session(amount="40")]
    payments = [payment(canceled=True), payment()]
    assert derive("100", sessions, payments) == (S.PARTIALLY_AUTHORIZED, 40, 0, 0, False)
    sessions = [session(amount="100", canceled=True), session(amount="100")]
    assert derive("100", sessions, payments) == (S.AUTHORIZED, 100, 0, 0, False)


def test_amounts_in_other_currencies_are_ignored() -> None:
    sessions = [session(amount="100", currency="eur")]
    payments = [payment(["100"], ["50"], currency="eur")]
    assert derive("100", sessions, payments) == (S.AWAITING, 0, 0, 0, False)
    # a canceled payment in another currency does not cancel the collection either
    assert (
        derive("100", [session(currency="eur", canceled=True)], [payment(currency="eur", canceled=True)])[0]
        == S.AWAITING
    )
    # currency codes compare case-insensitively
    assert derive("100", [session(currency="USD")], [payment(["100"], currency="USD")])[0] == S.COMPLETED
    assert derive("100", [session(currency="usd")], [payment(["100"])], currency="USD")[0] == S.COMPLETED


# -- properties ---------------------------------------------------------------------------------------
PROPERTY_CURRENCIES = st.sampled_from(["usd", "jpy", "kwd", "eur", "bhd", "krw"])


@st.composite
def on_grid(draw: st.DrawFn, currency: str, max_units: int = 100_000) -> Decimal:
    """A positive amount with at most the currency's digits."""
    return D(draw(st.integers(1, max_units))) * minor_unit(currency)


@st.composite
def any_precision(draw: st.DrawFn, currency: str, max_units: int = 100_000) -> Decimal:
    """A positive amount with up to three digits more than the currency has."""
    scale = currency_precision(currency) + draw(st.integers(0, 3))
    return D(draw(st.integers(1, max_units))).scaleb(-scale)


def _run_captures(
    amount: Decimal, currency: str, requests: Sequence[Decimal | None]
) -> tuple[list[Decimal], bool]:
    captured: list[Decimal] = []
    fully = False
    for requested in requests:
        try:
            plan = plan_capture(
                payment_id="pay_1",
                payment_amount=amount,
                currency_code=currency,
                captured=captured,
                requested=requested,
                canceled=False,
                already_fully_captured=fully,
            )
        except InvalidDataError as exc:
            assert exc.message in (CAPTURE_EXCEEDS, CAPTURE_NOT_POSITIVE) or (
                exc.code == "invalid_amount"
                and requested is not None
                and requested != round_amount(requested, currency)
            ), exc.message
            continue
        if plan is None:
            assert fully or requested is None
            continue
        assert plan.amount > 0
        assert requested is None or plan.amount == requested
        assert plan.amount == round_amount(plan.amount, currency)
        captured.append(plan.amount)
        fully = plan.fully_captured
        assert fully == (sum(captured, D(0)) >= round_amount(amount, currency))
    return captured, fully


@st.composite
def capture_cases(draw: st.DrawFn, *, grid_requests: bool) -> tuple[str, Decimal, list[Decimal | None]]:
    """A currency, a payment amount (any precision) and capture requests (some without an amount)."""
    currency = draw(PROPERTY_CURRENCIES, label="currency")
    amount = draw(any_precision(currency), label="payment amount")
    requested = on_grid(currency, max_units=60_000) if grid_requests else any_precision(currency, 60_000)
    requests = draw(st.lists(st.none() | requested, min_size=1, max_size=8), label="requests")
    return currency, amount, requests


@given(case=capture_cases(grid_requests=True))
def test_planned_captures_on_the_currency_grid_never_exceed_the_rounded_amount(
    case: tuple[str, Decimal, list[Decimal | None]],
) -> None:
    currency, amount, requests = case
    captured, fully = _run_captures(amount, currency, requests)
    total = sum(captured, D(0))
    assert round_amount(total, currency) <= round_amount(amount, currency)
    if any(r is None for r in requests) and round_amount(amount, currency) > 0:
        # a capture without an amount takes what remains: the payment ends fully captured (an amount
        # that rounds to nothing in its currency has nothing to capture)
        assert fully
        assert round_amount(total, currency) == round_amount(amount, currency)


@given(case=capture_cases(grid_requests=False))
@example(case=("usd", D("1.00"), [D("0.994"), D("0.014")]))
@example(case=("usd", D("0.066"), [D("0.001"), D("0.074")]))
def test_planned_captures_of_any_precision_never_exceed_the_rounded_amount(
    case: tuple[str, Decimal, list[Decimal | None]],
) -> None:
    """DESIGN.md's invariant for amounts with more digits than the currency has (reference 9.2 uses such)."""
    currency, amount, requests = case
    captured, _ = _run_captures(amount, currency, requests)
    # exact: whatever the requests' precision, the booked sum never passes the amount by a fraction
    assert sum(captured, D(0)) <= round_amount(amount, currency)


@given(data=st.data(), currency=PROPERTY_CURRENCIES)
def test_planned_refunds_never_exceed_the_captures(data: st.DataObject, currency: str) -> None:
    captured = data.draw(st.lists(any_precision(currency), max_size=4), label="captures")
    requests = data.draw(
        st.lists(st.none() | any_precision(currency, max_units=200_000), min_size=1, max_size=8),
        label="requests",
    )
    captured_total = sum(captured, D(0))
    refunded: list[Decimal] = []
    for requested in requests:
        try:
            amount = plan_refund(
                currency_code=currency, captured=captured, refunded=refunded, requested=requested
            )
        except InvalidDataError as exc:
            remaining = round_amount(captured_total, currency) - sum(refunded, D(0))
            if exc.code == "invalid_amount":
                assert requested is not None and requested != round_amount(requested, currency)
                continue
            assert exc.message == REFUND_EXCEEDS
            # refused only when it would refund more than was captured (or nothing is refundable)
            if requested is None:
                assert remaining < minor_unit(currency)
            else:
                assert requested > remaining
            continue
        assert amount > 0
        assert amount == round_amount(amount, currency)
        assert requested is None or amount == requested
        refunded.append(amount)
        assert sum(refunded, D(0)) <= round_amount(captured_total, currency)
