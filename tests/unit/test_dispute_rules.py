"""Dispute rules: which statuses are final, which reports are late, what disputes do to refunds."""

from __future__ import annotations

from decimal import Decimal

import pytest

from paymod.domain.disputes import check_no_open_dispute, is_regression
from paymod.domain.errors import InvalidDataError, NotAllowedError
from paymod.domain.rules import LOST_DISPUTES, REFUND_EXCEEDS, plan_refund
from paymod.domain.statuses import DisputeStatus as S


def test_won_lost_and_a_closed_inquiry_are_final() -> None:
    assert {s for s in S if s.is_final} == {S.WON, S.LOST, S.WARNING_CLOSED}


@pytest.mark.parametrize(
    "current, reported, late",
    [
        (S.LOST, S.NEEDS_RESPONSE, True),
        (S.WON, S.UNDER_REVIEW, True),
        (S.WARNING_CLOSED, S.WARNING_NEEDS_RESPONSE, True),
        (S.NEEDS_RESPONSE, S.UNDER_REVIEW, False),
        (S.UNDER_REVIEW, S.LOST, False),
        (S.WARNING_UNDER_REVIEW, S.NEEDS_RESPONSE, False),  # an inquiry that became a chargeback
        (S.WON, S.WON, False),
    ],
)
def test_only_a_report_reopening_a_closed_dispute_is_late(current: S, reported: S, late: bool) -> None:
    assert is_regression(current, reported) is late


def test_an_open_dispute_stops_refunds_a_closed_one_does_not() -> None:
    with pytest.raises(NotAllowedError, match="pay_1 has an open dispute"):
        check_no_open_dispute("pay_1", [S.WON, S.WARNING_UNDER_REVIEW])
    check_no_open_dispute("pay_1", [S.WON, S.LOST, S.WARNING_CLOSED])
    check_no_open_dispute("pay_1", [])


def test_a_lost_dispute_is_no_longer_refundable() -> None:
    captured, refunded, lost = [Decimal("100.00")], [Decimal("20.00")], [Decimal("30.00")]

    def plan(requested: Decimal | None) -> Decimal:
        return plan_refund(
            currency_code="usd", captured=captured, refunded=refunded, requested=requested, lost=lost
        )

    assert plan(None) == Decimal("50.00")
    assert plan(Decimal("50")) == Decimal("50")
    with pytest.raises(InvalidDataError) as refused:
        plan(Decimal("50.01"))
    assert refused.value.message == f"{REFUND_EXCEEDS} {LOST_DISPUTES}"
    # Without lost disputes the message stays Medusa's.
    with pytest.raises(InvalidDataError) as plain:
        plan_refund(currency_code="usd", captured=captured, refunded=refunded, requested=Decimal(81))
    assert plain.value.message == REFUND_EXCEEDS
