"""Durable flows: named steps with compensations, recorded so an interrupted run resumes.

The pattern Stripe describes for its own API (atomic phases, recovery points, idempotency keys):

- A run is keyed (`name`, `idempotency_key`). Starting a run that exists returns its stored result,
  re-raises its stored error, or resumes it from its last recovery point; the same key with other
  input is an error; a run another caller is executing right now is a conflict.
- A *local* step runs inside a write transaction that also records its output: the step's effect and
  its recovery point commit together, or neither does.
- A *remote* step (a provider call) gets an idempotency key that is stable for the run, and a journal
  entry is committed before it is called. Its outcome is recorded with the next local step (or the
  run's end). A crash in between re-runs the call with the same key, which the provider replays.
- Steps hand each other typed values (frozen dataclasses, `Decimal`); `codec` turns them into JSON at
  the store's boundary and back, in one place.
- A step that fails compensates the completed steps in reverse order (each compensation recorded and
  retried); a `RetryableProviderError` (outcome unknown) compensates nothing: the run stays resumable,
  and the reconciler or a retry with the same key finishes it.

The engine imports nothing from the service layer; flows are plain data (`Workflow`, `Step`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain.errors import ConflictError, PaymodError, RetryableProviderError
from paymod.domain.errors import IdempotencyError as IdempotencyError
from paymod.domain.statuses import RunStatus, StepStatus
from paymod.durable import codec
from paymod.observability.metrics import money_flow

log = logging.getLogger("paymod.workflows")

FAULT_ENV = "PAYMOD_FAULT"
COMPENSATION_ATTEMPTS = 3


@dataclass
class StepContext:
    """What a step sees: the run's input and the earlier steps' outputs, typed as declared."""

    run_id: str
    input: Any
    outputs: dict[str, Any]
    conn: AsyncConnection | None = None
    #: What steps hand to the caller of this execution and nothing else (not journaled): rows the
    #: caller would otherwise read again. Empty when a stored result is replayed.
    scratch: dict[str, Any] = field(default_factory=dict)
    #: A remote step repeats a call an earlier execution journaled as started and never recorded:
    #: its outcome is unknown (the provider may have acted on it).
    resumed: bool = False

    def key(self, step: str) -> str:
        """An idempotency key for a remote call, stable across resumes of this run."""
        return f"{self.run_id}:{step}"


Action = Callable[[StepContext], Awaitable[Any]]
Compensation = Callable[[StepContext, Any], Awaitable[None]]


@dataclass(frozen=True)
class Step:
    """An action and its undo; `local`: it runs in a write transaction that records its output.

    `output`: the type of what `invoke` returns, to read it back from the journal (None: stored as is).
    """

    name: str
    invoke: Action
    compensate: Compensation | None = None
    local: bool = False
    output: Any = None


@dataclass(frozen=True)
class Workflow:
    """Named steps; `input`: the type of the run's input (None: stored as is); the result is the last
    step's output unless `result` derives it from all outputs."""

    name: str
    steps: Sequence[Step]
    result: Callable[[dict[str, Any]], Any] | None = None
    input: Any = None

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if len(names) != len(set(names)):
            raise ValueError(f"workflow {self.name} has duplicate step names")


@dataclass
class Run:
    """A run as stored: `input`, the journal's outputs and `result` in their JSON form (see `codec`)."""

    id: str
    name: str
    idempotency_key: str
    status: RunStatus
    input: Any
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    result: Any = None
    error: dict[str, Any] | None = None

    def done(self, step: str) -> bool:
        return self.steps.get(step, {}).get("status") == StepStatus.DONE

    def outputs(self) -> dict[str, Any]:
        """The stored outputs of the steps done."""
        return {name: s.get("output") for name, s in self.steps.items() if s.get("status") == StepStatus.DONE}


class RunStore(Protocol):
    """Where runs live: the database in production, memory in unit tests."""

    async def start(
        self, name: str, key: str, input: Any, fingerprint: str, *, fresh: bool = False
    ) -> tuple[Run, bool]:
        """The run for (name, key), claimed for this caller; True when it was created now.

        `fresh`: the key was minted for this call and cannot exist yet (no lookup needed)."""

    def local_step(self, run: Run, writes: dict[str, dict[str, Any]]) -> AbstractAsyncContextManager[Any]:
        """A write transaction that records `writes` (step entries) when it commits."""

    async def record(self, run: Run, writes: dict[str, dict[str, Any]]) -> None:
        """Commits step entries on their own (journal before a remote call, compensations)."""

    async def finish(self, run: Run, writes: dict[str, dict[str, Any]], conn: Any = None) -> None:
        """Records the final status, result or error (in `conn`'s transaction when given)."""

    async def release(self, run: Run) -> None:
        """Gives up the claim without finishing (the run stays resumable)."""


def fingerprint(input: Any) -> str:
    """The fingerprint of a run's input (typed or stored form)."""
    return codec.fingerprint(codec.dump(input))


def fault_point(point: str) -> None:
    """Test hook: exits the process hard when PAYMOD_FAULT names this point (crash tests)."""
    if os.environ.get(FAULT_ENV) == point:
        log.error("fault injected at %s: exiting", point)
        os._exit(137)


def error_record(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, PaymodError):
        return {"type": exc.type, "code": exc.code, "message": exc.message}
    return {"type": "unknown_error", "code": "unknown_error", "message": f"{type(exc).__name__}: {exc}"}


def _error_classes() -> dict[str, type[PaymodError]]:
    """The class for each error type: the tree's own (domain.errors) first, then the others'."""
    tree: list[type[PaymodError]] = []
    stack: list[type[PaymodError]] = [PaymodError]
    while stack:
        cls = stack.pop()
        tree.append(cls)
        stack.extend(cls.__subclasses__())
    classes: dict[str, type[PaymodError]] = {}
    for cls in sorted(tree, key=lambda c: c.__module__ != PaymodError.__module__):
        classes.setdefault(cls.type, cls)
    return classes


def rebuild_error(record: Mapping[str, Any]) -> PaymodError:
    cls = _error_classes().get(str(record.get("type")), PaymodError)
    return cls(str(record.get("message", "")), code=record.get("code"))


class Runner:
    """Runs workflows against a store."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    async def run(
        self,
        workflow: Workflow,
        input: Any,
        *,
        key: str | None,
        scratch: dict[str, Any] | None = None,
    ) -> Any:
        """Runs (or replays, or resumes) the run keyed `key`; `key=None` starts a new run under a key
        minted here. `scratch` receives what the steps leave for this caller (see StepContext)."""
        fresh = key is None
        stored = codec.dump(input)
        # Each call is one money flow in the metrics and the log (`capture-payment` is `capture`).
        with money_flow(workflow.name.removesuffix("-payment")) as flow:
            run, _ = await self.store.start(
                workflow.name,
                key or f"auto:{uuid.uuid4().hex}",
                stored,
                codec.fingerprint(stored),
                fresh=fresh,
            )
            if run.status == RunStatus.SUCCEEDED:
                flow.outcome = "replayed"
                return codec.load(self._result_type(workflow), run.result)
            if run.status == RunStatus.FAILED:
                flow.outcome = "replayed"
                raise rebuild_error(run.error or {})
            return await self._execute(workflow, run, scratch)

    async def resume(self, workflow: Workflow, run: Run) -> Any:
        return await self._execute(workflow, run)

    @staticmethod
    def _result_type(workflow: Workflow) -> Any:
        return None if workflow.result is not None else workflow.steps[-1].output

    @staticmethod
    def _outputs(workflow: Workflow, run: Run) -> dict[str, Any]:
        """The outputs of the steps done, typed as each step declares."""
        stored = run.outputs()
        return {s.name: codec.load(s.output, stored[s.name]) for s in workflow.steps if s.name in stored}

    @staticmethod
    def _done(output: Any) -> dict[str, Any]:
        return {"status": StepStatus.DONE, "output": codec.dump(output)}

    async def _execute(self, workflow: Workflow, run: Run, scratch: dict[str, Any] | None = None) -> Any:
        outputs = self._outputs(workflow, run)
        input = codec.load(workflow.input, run.input)
        result: Any = None
        pending: dict[str, dict[str, Any]] = {}  # remote outcomes, recorded with the next local step
        completed = [s for s in workflow.steps if run.done(s.name)]
        scratch = {} if scratch is None else scratch
        steps = list(workflow.steps)
        started_here: set[str] = set()  # remote steps this execution journaled as started
        try:
            for index, step in enumerate(steps):
                if run.done(step.name):
                    continue
                fault_point(f"before-{step.name}")
                context = StepContext(run.id, input, outputs, scratch=scratch)
                if step.local:
                    writes = dict(pending)
                    last = index == len(steps) - 1
                    following = None if last else steps[index + 1]
                    if following is not None and not following.local:
                        # The journal entry of the provider call that comes next commits with this step:
                        # one transaction less per flow. A crash between the two leaves the call
                        # `started`, so recovery resumes it with the run's key (the provider answers a
                        # call it never saw by doing it now) instead of undoing this step.
                        writes[following.name] = self._started(context, following)
                        started_here.add(following.name)
                    async with self.store.local_step(run, writes) as conn:
                        context.conn = conn
                        output = await step.invoke(context)
                        writes[step.name] = self._done(output)
                        if last:
                            # The run's end commits with its last step.
                            outputs[step.name] = output
                            result = self._result(workflow, outputs)
                            run.status, run.result = RunStatus.SUCCEEDED, codec.dump(result)
                    pending.clear()
                    if following is not None and following.name in writes:
                        run.steps[following.name] = writes[following.name]
                else:
                    earlier = run.steps.get(step.name, {}).get("status") == StepStatus.STARTED
                    context.resumed = earlier and step.name not in started_here
                    if pending or not earlier:
                        await self.store.record(run, {**pending, step.name: self._started(context, step)})
                    pending.clear()
                    output = await step.invoke(context)
                    pending[step.name] = self._done(output)
                outputs[step.name] = output
                run.steps[step.name] = self._done(output)
                completed.append(step)
                fault_point(f"after-{step.name}")
        except asyncio.CancelledError:
            # The caller went away mid-step: the outcome is unknown; the lease lets a retry resume.
            raise
        except (RetryableProviderError, ConflictError):
            # The outcome is unknown (or a lock was busy): keep the run resumable, undo nothing.
            run.status = RunStatus.SUSPENDED
            await self.store.record(run, pending)
            await self.store.release(run)
            raise
        except BaseException as exc:
            await self._compensate(run, input, completed, outputs)
            run.status, run.error = RunStatus.FAILED, error_record(exc)
            await self.store.finish(run, pending)
            raise
        if run.status != RunStatus.SUCCEEDED or pending:
            result = self._result(workflow, outputs)
            run.status, run.result = RunStatus.SUCCEEDED, codec.dump(result)
            await self.store.finish(run, pending)
        return result

    @staticmethod
    def _started(context: StepContext, step: Step) -> dict[str, Any]:
        return {"status": StepStatus.STARTED, "key": context.key(step.name)}

    @staticmethod
    def _result(workflow: Workflow, outputs: dict[str, Any]) -> Any:
        return workflow.result(outputs) if workflow.result else outputs.get(workflow.steps[-1].name)

    async def abandon(self, workflow: Workflow, run: Run, reason: str) -> None:
        """Undoes a claimed run's completed steps and marks it failed (the reconciler's way out)."""
        outputs = self._outputs(workflow, run)
        completed = [s for s in workflow.steps if run.done(s.name)]
        await self._compensate(run, codec.load(workflow.input, run.input), completed, outputs)
        run.status = RunStatus.FAILED
        run.error = {"type": "unexpected_state", "code": "abandoned", "message": reason}
        await self.store.finish(run, {})

    async def _compensate(self, run: Run, input: Any, completed: list[Step], outputs: dict[str, Any]) -> None:
        for step in reversed(completed):
            if step.compensate is None:
                continue
            for attempt in range(1, COMPENSATION_ATTEMPTS + 1):
                try:
                    await step.compensate(StepContext(run.id, input, outputs), outputs.get(step.name))
                except Exception:  # recorded and retried; the original error is what the caller sees
                    log.warning(
                        "compensation of %s/%s failed (attempt %s)",
                        run.name,
                        step.name,
                        attempt,
                        exc_info=True,
                    )
                    if attempt == COMPENSATION_ATTEMPTS:
                        await self.store.record(run, {step.name: {"status": StepStatus.COMPENSATION_FAILED}})
                        break
                    await asyncio.sleep(0.05 * attempt)
                else:
                    run.steps[step.name] = {"status": StepStatus.COMPENSATED}
                    await self.store.record(run, {step.name: {"status": StepStatus.COMPENSATED}})
                    break


class MemoryRunStore:
    """Runs kept in memory: for unit tests of flows and of the runner."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], Run] = {}
        self.fingerprints: dict[str, str] = {}
        self.claimed: set[str] = set()
        self.commits: list[tuple[str, dict[str, dict[str, Any]]]] = []

    async def start(
        self, name: str, key: str, input: Any, fingerprint: str, *, fresh: bool = False
    ) -> tuple[Run, bool]:
        existing = self.runs.get((name, key))
        if existing is not None:
            if self.fingerprints[existing.id] != fingerprint:
                raise IdempotencyError(
                    f"Keys for idempotent requests can only be reused with the same input: {key}"
                )
            if existing.id in self.claimed:
                raise ConflictError(f"The {name} run for key {key} is in progress.")
            if existing.status in (RunStatus.RUNNING, RunStatus.SUSPENDED):
                self.claimed.add(existing.id)
            return existing, False
        run = Run(
            id=f"wfr_{len(self.runs) + 1}",
            name=name,
            idempotency_key=key,
            status=RunStatus.RUNNING,
            input=input,
        )
        self.runs[(name, key)] = run
        self.fingerprints[run.id] = fingerprint
        self.claimed.add(run.id)
        return run, True

    def local_step(self, run: Run, writes: dict[str, dict[str, Any]]) -> AbstractAsyncContextManager[Any]:
        store = self

        class _Transaction:
            async def __aenter__(self) -> None:
                return None

            async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
                if exc_type is None:
                    store.commits.append((run.id, dict(writes)))
                    if run.status == RunStatus.SUCCEEDED:
                        store.claimed.discard(run.id)

        return _Transaction()

    async def record(self, run: Run, writes: dict[str, dict[str, Any]]) -> None:
        self.commits.append((run.id, dict(writes)))

    async def finish(self, run: Run, writes: dict[str, dict[str, Any]], conn: Any = None) -> None:
        self.commits.append((run.id, {**writes, "__status__": {"status": run.status}}))
        self.claimed.discard(run.id)

    async def release(self, run: Run) -> None:
        self.claimed.discard(run.id)
