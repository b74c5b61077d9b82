"""How long failures wait: provider events and subscribers (`backoff`), and an endpoint's deliveries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from paymod.webhooks.deliveries import (
    BREAKER_THRESHOLD,
    DELIVERY_WINDOW,
    ENDPOINT_DISABLED,
    Outcome,
    lane_record,
)
from paymod.webhooks.outbox import backoff

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    waits = [backoff(n, base=2.0, cap=30.0).total_seconds() for n in range(7)]

    assert waits == [2.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_backoff_defaults_to_one_second_capped_at_an_hour() -> None:
    assert backoff(1) == timedelta(seconds=1)
    assert backoff(40) == timedelta(hours=1)


def endpoint(**changes: Any) -> dict[str, Any]:
    return {
        "id": "we_1",
        "url": "http://hook.invalid",
        "failing_since": None,
        "consecutive_failures": 0,
    } | changes


def delivery(id: str, *, attempts: int = 0, age: timedelta = timedelta(0)) -> dict[str, Any]:
    return {"id": id, "attempts": attempts, "created_at": NOW - age}


def test_delivered_ones_are_grouped_by_answer_and_a_healthy_endpoint_is_left_alone() -> None:
    rows = [delivery("whdl_1"), delivery("whdl_2"), delivery("whdl_3")]
    outcomes = {
        "whdl_1": Outcome(200, None, NOW),
        "whdl_2": Outcome(204, None, NOW),
        "whdl_3": Outcome(200, None, NOW),
    }

    record = lane_record(endpoint(), rows, outcomes, now=NOW, retry_base=5.0, disable_after=timedelta(days=3))

    assert record.delivered == {200: ["whdl_1", "whdl_3"], 204: ["whdl_2"]}
    assert (record.failed, record.endpoint, record.disabled, record.events) == ([], None, False, [])


def test_a_success_clears_a_failing_endpoints_health() -> None:
    record = lane_record(
        endpoint(failing_since=NOW - timedelta(minutes=5), consecutive_failures=4),
        [delivery("whdl_1")],
        {"whdl_1": Outcome(200, None, NOW)},
        now=NOW,
        retry_base=5.0,
        disable_after=timedelta(days=3),
    )

    assert record.endpoint == {
        "failing_since": None,
        "consecutive_failures": 0,
        "retry_at": None,
        "updated_at": NOW,
    }


def test_a_failed_delivery_is_retried_with_backoff_and_one_unsent_stays_as_it_is() -> None:
    rows = [delivery("whdl_1", attempts=2), delivery("whdl_2")]

    record = lane_record(
        endpoint(),
        rows,
        {"whdl_1": Outcome(500, "HTTP 500", NOW)},
        now=NOW,
        retry_base=5.0,
        disable_after=timedelta(days=3),
    )

    assert record.failed == [
        (
            "whdl_1",
            {
                "attempts": 3,
                "response_status": 500,
                "last_error": "HTTP 500",
                "locked_until": None,
                "available_at": NOW + timedelta(seconds=20),
            },
        )
    ]
    assert record.endpoint == {"failing_since": NOW, "consecutive_failures": 1, "updated_at": NOW}


def test_a_delivery_failing_past_the_window_is_given_up() -> None:
    record = lane_record(
        endpoint(),
        [delivery("whdl_1", age=DELIVERY_WINDOW)],
        {"whdl_1": Outcome(None, "ConnectError: refused", NOW)},
        now=NOW,
        retry_base=5.0,
        disable_after=timedelta(days=3),
    )

    assert record.failed[0][1]["status"] == "failed"
    assert "available_at" not in record.failed[0][1]


def test_enough_failures_in_a_row_rest_the_endpoint_as_long_as_it_has_been_failing() -> None:
    since = NOW - timedelta(seconds=40)

    record = lane_record(
        endpoint(failing_since=since, consecutive_failures=BREAKER_THRESHOLD - 1),
        [delivery("whdl_1")],
        {"whdl_1": Outcome(503, "HTTP 503", NOW)},
        now=NOW,
        retry_base=5.0,
        disable_after=timedelta(days=3),
    )

    assert record.endpoint is not None
    assert record.endpoint["consecutive_failures"] == BREAKER_THRESHOLD
    assert record.endpoint["retry_at"] == NOW + timedelta(seconds=40)
    assert not record.disabled


def test_an_endpoint_failing_longer_than_disable_after_is_disabled_with_an_event() -> None:
    since = NOW - timedelta(days=3)

    record = lane_record(
        endpoint(failing_since=since, consecutive_failures=7),
        [delivery("whdl_1")],
        {"whdl_1": Outcome(500, "HTTP 500", NOW)},
        now=NOW,
        retry_base=5.0,
        disable_after=timedelta(days=3),
    )

    reason = f"failing since {since.isoformat()} (8 deliveries in a row)"
    assert record.disabled
    assert record.endpoint is not None
    assert (record.endpoint["enabled"], record.endpoint["disabled_reason"], record.endpoint["retry_at"]) == (
        False,
        reason,
        None,
    )
    assert record.events == [
        (ENDPOINT_DISABLED, {"id": "we_1", "url": "http://hook.invalid", "reason": reason})
    ]
