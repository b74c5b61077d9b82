"""The step runner on an in-memory store: compensation order, retries, resume, idempotency."""

from __future__ import annotations

from typing import Any

import pytest

from paymod.domain.errors import ConflictError, InvalidDataError, ProviderError, RetryableProviderError
from paymod.durable.engine import (
    IdempotencyError,
    MemoryRunStore,
    Runner,
    Step,
    StepContext,
    Workflow,
    fingerprint,
)


class Recorder:
    """Steps whose actions and compensations write to one log; failures scripted per step."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.fail: dict[str, BaseException] = {}
        self.compensation_failures: dict[str, int] = {}

    def step(self, name: str, *, local: bool = False, compensate: bool = True) -> Step:
        async def invoke(ctx: StepContext) -> Any:
            self.log.append(f"do {name}")
            if name in self.fail:
                raise self.fail.pop(name)
            return {"step": name, "seen": sorted(ctx.outputs), "key": ctx.key(name)}

        async def undo(ctx: StepContext, output: Any) -> None:
            self.log.append(f"undo {name}")
            if self.compensation_failures.get(name, 0) > 0:
                self.compensation_failures[name] -= 1
                raise RuntimeError(f"undo {name} failed")

        return Step(name, invoke, undo if compensate else None, local=local)


def flow(recorder: Recorder) -> Workflow:
    return Workflow(
        "three-steps",
        [recorder.step("a", local=True), recorder.step("b"), recorder.step("c", local=True)],
    )


async def test_steps_run_in_order_and_the_last_output_is_the_result() -> None:
    recorder = Recorder()
    result = await Runner(MemoryRunStore()).run(flow(recorder), {"x": 1}, key="k")
    assert recorder.log == ["do a", "do b", "do c"]
    assert result["step"] == "c" and result["seen"] == ["a", "b"]


async def test_a_failing_step_compensates_completed_steps_in_reverse() -> None:
    recorder = Recorder()
    recorder.fail["c"] = ProviderError("refused")
    with pytest.raises(ProviderError, match="refused"):
        await Runner(MemoryRunStore()).run(flow(recorder), {}, key="k")
    assert recorder.log == ["do a", "do b", "do c", "undo b", "undo a"]


async def test_a_failing_compensation_is_retried_then_recorded() -> None:
    recorder = Recorder()
    recorder.fail["c"] = ProviderError("refused")
    recorder.compensation_failures["b"] = 2
    store = MemoryRunStore()
    with pytest.raises(ProviderError):
        await Runner(store).run(flow(recorder), {}, key="k")
    assert recorder.log.count("undo b") == 3
    assert recorder.log[-1] == "undo a"
    recorder.compensation_failures["a"] = 5
    recorder.fail["c"] = ProviderError("refused")
    with pytest.raises(ProviderError):
        await Runner(store).run(flow(recorder), {}, key="k2")
    assert any(writes.get("a", {}).get("status") == "compensation_failed" for _, writes in store.commits)


async def test_the_same_key_replays_the_result_without_running_again() -> None:
    recorder = Recorder()
    runner = Runner(MemoryRunStore())
    first = await runner.run(flow(recorder), {"x": 1}, key="k")
    again = await runner.run(flow(recorder), {"x": 1}, key="k")
    assert first == again
    assert recorder.log == ["do a", "do b", "do c"]


async def test_the_same_key_replays_a_failure() -> None:
    recorder = Recorder()
    recorder.fail["a"] = InvalidDataError("bad amount")
    runner = Runner(MemoryRunStore())
    for _ in range(2):
        with pytest.raises(InvalidDataError, match="bad amount"):
            await runner.run(flow(recorder), {}, key="k")
    assert recorder.log == ["do a"]


async def test_the_same_key_with_other_input_is_refused() -> None:
    runner = Runner(MemoryRunStore())
    await runner.run(flow(Recorder()), {"amount": "10"}, key="k")
    with pytest.raises(IdempotencyError) as info:
        await runner.run(flow(Recorder()), {"amount": "11"}, key="k")
    assert info.value.type == "idempotency_error"


async def test_a_run_in_progress_is_a_conflict_for_a_second_caller() -> None:
    store = MemoryRunStore()
    run, created = await store.start("three-steps", "k", {}, fingerprint({}))
    assert created
    with pytest.raises(ConflictError):
        await Runner(store).run(Workflow("three-steps", [Recorder().step("a")]), {}, key="k")
    assert run.status == "running"


@pytest.mark.parametrize("interrupted_at", ["a", "b", "c"])
async def test_an_unknown_outcome_suspends_and_a_retry_resumes_from_the_recovery_point(
    interrupted_at: str,
) -> None:
    """A RetryableProviderError compensates nothing; the same key resumes at the interrupted step."""
    recorder = Recorder()
    recorder.fail[interrupted_at] = RetryableProviderError("timeout")
    runner = Runner(MemoryRunStore())
    with pytest.raises(RetryableProviderError):
        await runner.run(flow(recorder), {}, key="k")
    assert not any(entry.startswith("undo") for entry in recorder.log)
    result = await runner.run(flow(recorder), {}, key="k")
    # Each step that had completed ran exactly once; the interrupted one ran twice (same key).
    assert [recorder.log.count(f"do {s}") for s in ["a", "b", "c"]] == [
        2 if s == interrupted_at else 1 for s in ["a", "b", "c"]
    ]
    assert result["step"] == "c"


async def test_remote_steps_get_keys_stable_for_the_run() -> None:
    recorder = Recorder()
    recorder.fail["b"] = RetryableProviderError("timeout")
    runner = Runner(MemoryRunStore())
    with pytest.raises(RetryableProviderError):
        await runner.run(flow(recorder), {}, key="k")
    result = await runner.run(flow(recorder), {}, key="k")
    store_run = next(iter(runner.store.runs.values()))  # type: ignore[attr-defined]
    assert result["key"] == f"{store_run.id}:c"
    assert store_run.steps["b"]["output"]["key"] == f"{store_run.id}:b"


async def test_abandon_compensates_what_was_done_and_fails_the_run() -> None:
    recorder = Recorder()
    recorder.fail["b"] = RetryableProviderError("timeout")
    store = MemoryRunStore()
    runner = Runner(store)
    with pytest.raises(RetryableProviderError):
        await runner.run(flow(recorder), {}, key="k")
    run, _ = await store.start("three-steps", "k", {}, store.fingerprints["wfr_1"])
    await runner.abandon(flow(recorder), run, "gave up")
    assert recorder.log[-1] == "undo a"
    assert run.status == "failed"


def test_step_names_must_be_unique() -> None:
    recorder = Recorder()
    with pytest.raises(ValueError, match="duplicate"):
        Workflow("dup", [recorder.step("a"), recorder.step("a")])


async def test_a_provider_calls_journal_entry_commits_with_the_local_step_before_it() -> None:
    store = MemoryRunStore()
    await Runner(store).run(flow(Recorder()), {}, key="k")
    # Two commits for local → remote → local: the booking with the call's `started` entry, then the
    # call's outcome with the last step (and the run's end).
    assert [sorted(writes) for _, writes in store.commits] == [["a", "b"], ["b", "c"]]
    first, second = store.commits[0][1], store.commits[1][1]
    assert first["b"] == {"status": "started", "key": f"{store.commits[0][0]}:b"}
    assert first["a"]["status"] == second["b"]["status"] == second["c"]["status"] == "done"


async def test_a_run_without_a_key_gets_a_new_one_each_time() -> None:
    recorder = Recorder()
    store = MemoryRunStore()
    runner = Runner(store)
    await runner.run(flow(recorder), {}, key=None)
    await runner.run(flow(recorder), {}, key=None)
    assert recorder.log == ["do a", "do b", "do c"] * 2
    assert len(store.runs) == 2 and all(key.startswith("auto:") for _, key in store.runs)


async def test_a_remote_step_knows_when_it_repeats_a_call_whose_outcome_is_unknown() -> None:
    seen: list[bool] = []
    outcomes: list[BaseException | None] = [RetryableProviderError("timed out"), None]

    async def local(ctx: StepContext) -> str:
        return "booked"

    async def remote(ctx: StepContext) -> str:
        seen.append(ctx.resumed)
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return "done"

    workflow = Workflow("resume", [Step("book", local, local=True), Step("call", remote)])
    runner = Runner(MemoryRunStore())
    with pytest.raises(RetryableProviderError):
        await runner.run(workflow, {}, key="k")
    assert await runner.run(workflow, {}, key="k") == "done"
    # The first call was journaled by its own execution; the second repeats it after an unknown outcome.
    assert seen == [False, True]
