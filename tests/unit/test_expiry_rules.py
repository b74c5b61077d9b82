"""The pure decisions of authorization expiry and of the janitor's backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from paymod.domain.errors import NotAllowedError
from paymod.domain.expiry import (
    ExpiryStep,
    OpenAuthorization,
    authorization_lapsed,
    check_capturable,
    expiry_step,
    next_provider_check,
    sync_window,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def facts(expires_in: timedelta | None, **changes: object) -> OpenAuthorization:
    values: dict[str, object] = {
        "expires_at": None if expires_in is None else NOW + expires_in,
        "notified_at": None,
        "expired_at": None,
        "canceled": False,
        "fully_captured": False,
    }
    values.update(changes)
    return OpenAuthorization(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("authorization", "step"),
    [
        (facts(None), ExpiryStep.NOTHING),  # it never lapses
        (facts(3 * DAY), ExpiryStep.NOTHING),  # not within the warning yet
        (facts(DAY), ExpiryStep.WARN),  # exactly the warning away
        (facts(timedelta(hours=2)), ExpiryStep.WARN),
        (facts(timedelta(hours=2), notified_at=NOW), ExpiryStep.NOTHING),  # warned once only
        (facts(timedelta(0)), ExpiryStep.EXPIRE),  # the deadline itself
        (facts(-timedelta(seconds=1), notified_at=NOW), ExpiryStep.EXPIRE),
        (facts(-DAY, expired_at=NOW), ExpiryStep.NOTHING),  # expired once only
        (facts(-DAY, canceled=True), ExpiryStep.NOTHING),
        (facts(-DAY, fully_captured=True), ExpiryStep.NOTHING),
        (facts(timedelta(hours=2), fully_captured=True), ExpiryStep.NOTHING),
    ],
)
def test_what_the_expiry_job_does(authorization: OpenAuthorization, step: ExpiryStep) -> None:
    assert expiry_step(authorization, NOW, DAY) == step


def test_a_warning_of_zero_never_warns_but_still_expires() -> None:
    assert expiry_step(facts(timedelta(seconds=1)), NOW, timedelta(0)) == ExpiryStep.NOTHING
    assert expiry_step(facts(-timedelta(seconds=1)), NOW, timedelta(0)) == ExpiryStep.EXPIRE


def test_an_authorization_lapses_at_its_deadline_or_once_marked_expired() -> None:
    assert not authorization_lapsed(None, None, NOW)
    assert not authorization_lapsed(NOW + timedelta(seconds=1), None, NOW)
    assert authorization_lapsed(NOW, None, NOW)
    assert authorization_lapsed(None, NOW - DAY, NOW)
    assert authorization_lapsed(NOW + DAY, NOW, NOW)


def test_a_lapsed_authorization_is_not_capturable() -> None:
    check_capturable("pay_1", NOW + DAY, None, NOW)
    with pytest.raises(NotAllowedError, match="pay_1 expired on 2026-12-01T11:00:00") as refused:
        check_capturable("pay_1", NOW - timedelta(hours=1), None, NOW)
    assert (refused.value.type, refused.value.code) == ("not_allowed", "authorization_expired")


def test_the_janitor_backs_off_doubling_up_to_a_cap() -> None:
    first = timedelta(minutes=1)
    waits = [next_provider_check(n, NOW, first=first) - NOW for n in range(1, 12)]
    assert waits[:4] == [first, 2 * first, 4 * first, 8 * first]
    assert waits == sorted(waits)
    assert waits[-1] == timedelta(hours=6)
    assert next_provider_check(10_000, NOW, first=first) - NOW == timedelta(hours=6)


def test_the_janitor_asks_about_sessions_between_its_two_ages() -> None:
    oldest, youngest = sync_window(NOW, after=timedelta(minutes=15), max_age=7 * DAY)
    assert (oldest, youngest) == (NOW - 7 * DAY, NOW - timedelta(minutes=15))
