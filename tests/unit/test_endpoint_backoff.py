"""A failing endpoint rests as long as it has been failing, within its bounds."""

from datetime import timedelta

from paymod.webhooks.deliveries import ENDPOINT_BACKOFF_CAP, endpoint_backoff

DAY = timedelta(days=1)


def test_a_first_failed_batch_rests_the_endpoint_for_the_base_only() -> None:
    # however many deliveries the batch held: the rest depends on time, not on the batch's size
    assert endpoint_backoff(timedelta(0), base=1.0, until_disabled=DAY) == timedelta(seconds=1)


def test_the_rest_doubles_the_time_the_endpoint_has_been_failing() -> None:
    failing = timedelta(0)
    probes = []
    for _ in range(6):
        failing += endpoint_backoff(failing, base=1.0, until_disabled=DAY - failing)
        probes.append(failing.total_seconds())
    assert probes == [1, 2, 4, 8, 16, 32]


def test_the_rest_is_capped() -> None:
    rest = endpoint_backoff(timedelta(days=2), base=1.0, until_disabled=DAY * 5)
    assert rest == timedelta(seconds=ENDPOINT_BACKOFF_CAP)


def test_the_last_probe_lands_when_the_endpoint_is_due_to_be_disabled() -> None:
    rest = endpoint_backoff(timedelta(minutes=4), base=1.0, until_disabled=timedelta(minutes=1))
    assert rest == timedelta(minutes=1)
    # past that moment, the base: the next failure disables it
    assert endpoint_backoff(timedelta(minutes=6), base=1.0, until_disabled=-timedelta(minutes=1)) == (
        timedelta(seconds=1)
    )
