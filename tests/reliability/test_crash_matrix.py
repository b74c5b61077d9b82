"""Crash safety: a real process killed at every fault point of every money flow, then a retry with
the same key (or the reconciler) ends in the right state, with nothing done twice at the provider.

The child process runs the operation with `PAYMOD_FAULT=<point>` and exits hard (`os._exit`) there;
the testing provider appends each call to a file, so calls made by the killed process are counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from paymod import PaymentModule
from paymod.workflows.reconciler import reconcile

CHILD = Path(__file__).with_name("crash_child.py")

STEPS = {
    "capture": ["book-capture", "provider-capture", "finish-capture"],
    "refund": ["book-refund", "provider-refund", "finish-refund"],
    "cancel": ["book-cancel", "provider-cancel", "finish-cancel"],
}
POINTS = [
    (op, f"{when}-{step}") for op, steps in STEPS.items() for step in steps for when in ("before", "after")
]
PROVIDER_METHOD = {"capture": "capture_payment", "refund": "refund_payment", "cancel": "cancel_payment"}


def provider_calls(calls_file: Path) -> Counter[tuple[str, str]]:
    if not calls_file.exists():
        return Counter()
    lines = calls_file.read_text().splitlines()
    return Counter((c["method"], c["key"]) for c in map(json.loads, lines))


def run_child(database_url: str, calls_file: Path, op: str, target: str, key: str, fault: str | None) -> int:
    env = {**os.environ, "PAYMOD_WORKFLOW_LEASE": "0"}
    env.pop("PAYMOD_FAULT", None)
    if fault:
        env["PAYMOD_FAULT"] = fault
    done = subprocess.run(
        [sys.executable, str(CHILD), database_url, str(calls_file), op, target, key],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode


async def authorized_payment(module: PaymentModule, *, captured: int = 0, scenario: str | None = None) -> str:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 100})
    data = {"scenario": scenario} if scenario else {}
    session = await module.create_payment_session(
        collection.id,
        {"provider_id": "pp_testing_default", "amount": 100, "currency_code": "usd", "data": data},
    )
    payment = await module.authorize_payment_session(session.id)
    assert payment is not None
    if captured:
        await module.capture_payment({"payment_id": payment.id, "amount": captured})
    return payment.id


@pytest.fixture
def calls_file(tmp_path: Path) -> Path:
    return tmp_path / "calls.jsonl"


@pytest.fixture
async def crash_module(database_url: str, calls_file: Path) -> PaymentModule:
    providers = [
        {"resolve": "paymod.providers.testing", "id": "default", "options": {"calls_file": str(calls_file)}}
    ]
    module = await PaymentModule.connect(database_url, providers=providers, migrate=False)
    yield module  # type: ignore[misc]
    await module.close()


def expected_state(op: str) -> tuple[list[Decimal], list[Decimal], bool]:
    """(captures, refunds, canceled) once the operation completed exactly once."""
    if op == "capture":
        return [Decimal(60)], [], False
    if op == "refund":
        return [Decimal(100)], [Decimal(25)], False
    return [], [], True


@pytest.mark.parametrize(("op", "fault"), POINTS, ids=[f"{op}:{fault}" for op, fault in POINTS])
async def test_a_crash_at_any_point_then_a_retry_with_the_same_key_completes_once(
    crash_module: PaymentModule, database_url: str, calls_file: Path, op: str, fault: str
) -> None:
    module = crash_module
    payment_id = await authorized_payment(module, captured=100 if op == "refund" else 0)
    before = provider_calls(calls_file)
    key = f"key-{op}-{fault}"

    code = run_child(database_url, calls_file, op, payment_id, key, fault)
    assert code == 137, "the fault point killed the child"
    code = run_child(database_url, calls_file, op, payment_id, key, None)
    assert code == 0, "the retry with the same key finished"

    payment = await module.retrieve_payment(payment_id, {"relations": ["captures", "refunds"]})
    captures, refunds, canceled = expected_state(op)
    assert [c.amount for c in payment.captures or []] == captures
    assert [r.amount for r in payment.refunds or []] == refunds
    assert (payment.canceled_at is not None) is canceled
    made = provider_calls(calls_file) - before
    method_calls = {k: n for (m, k), n in made.items() if m == PROVIDER_METHOD[op]}
    # One logical operation: one idempotency key at the provider, whatever the number of attempts.
    assert len(method_calls) == 1, made

    # A third call with the same key (here, in this process) replays: nothing new anywhere.
    if op == "capture":
        await module.capture_payment({"payment_id": payment_id, "amount": 60, "idempotency_key": key})
    elif op == "refund":
        await module.refund_payment({"payment_id": payment_id, "amount": 25, "idempotency_key": key})
    else:
        await module.cancel_payment(payment_id, idempotency_key=key)
    assert provider_calls(calls_file) - before == made
    again = await module.retrieve_payment(payment_id, {"relations": ["captures", "refunds"]})
    assert [c.amount for c in again.captures or []] == captures
    assert [r.amount for r in again.refunds or []] == refunds


async def test_a_crash_between_provider_authorization_and_its_record_is_repaired_by_authorizing_again(
    crash_module: PaymentModule, database_url: str, calls_file: Path
) -> None:
    """Authorization is keyed by its session: the retry asks the provider with the same key."""
    module = crash_module
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 100})
    session = await module.create_payment_session(
        collection.id,
        {"provider_id": "pp_testing_default", "amount": 100, "currency_code": "usd", "data": {}},
    )
    assert (
        run_child(database_url, calls_file, "authorize", session.id, "-", "after-provider-authorize") == 137
    )
    assert await module.list_payments({"payment_session_id": session.id}) == []
    assert run_child(database_url, calls_file, "authorize", session.id, "-", None) == 0
    assert len(await module.list_payments({"payment_session_id": session.id})) == 1
    keys = {k for (m, k) in provider_calls(calls_file) if m == "authorize_payment"}
    assert keys == {session.id}
    assert (await module.retrieve_payment_collection(collection.id)).status == "authorized"


async def test_the_reconciler_completes_a_capture_the_provider_made(
    crash_module: PaymentModule, database_url: str, calls_file: Path
) -> None:
    module = crash_module
    payment_id = await authorized_payment(module)
    assert run_child(database_url, calls_file, "capture", payment_id, "k1", "after-provider-capture") == 137
    report = await reconcile(module, older_than=timedelta(0))
    assert [r.outcome for r in report] == ["completed"]
    payment = await module.retrieve_payment(payment_id, {"relations": ["captures"]})
    assert [c.amount for c in payment.captures or []] == [Decimal(60)]
    collection = await module.retrieve_payment_collection(payment.payment_collection_id)
    assert collection.captured_amount == Decimal(60)
    assert len({k for (m, k) in provider_calls(calls_file) if m == "capture_payment"}) == 1
    assert await reconcile(module, older_than=timedelta(0)) == []


async def test_the_reconciler_finishes_a_capture_booked_just_before_its_provider_call(
    crash_module: PaymentModule, database_url: str, calls_file: Path
) -> None:
    """The provider call's journal entry commits with the booking: recovery asks the provider (with
    the run's key) and records the capture, as Stripe's completer would."""
    module = crash_module
    payment_id = await authorized_payment(module)
    assert run_child(database_url, calls_file, "capture", payment_id, "k2", "before-provider-capture") == 137
    booked = await module.retrieve_payment(payment_id, {"relations": ["captures"]})
    assert [c.amount for c in booked.captures or []] == [Decimal(60)]  # booked, provider not asked yet
    assert not any(m == "capture_payment" for (m, _k) in provider_calls(calls_file))
    report = await reconcile(module, older_than=timedelta(0))
    assert [r.outcome for r in report] == ["completed"]
    payment = await module.retrieve_payment(payment_id, {"relations": ["captures"]})
    assert [c.amount for c in payment.captures or []] == [Decimal(60)]
    assert len({k for (m, k) in provider_calls(calls_file) if m == "capture_payment"}) == 1
    collection = await module.retrieve_payment_collection(payment.payment_collection_id)
    assert collection.captured_amount == Decimal(60)
    # What remains can still be captured, and only that.
    await module.capture_payment({"payment_id": payment_id})
    rest = await module.retrieve_payment(payment_id, {"relations": ["captures"]})
    assert [c.amount for c in rest.captures or []] == [Decimal(60), Decimal(40)]


async def test_a_provider_refusal_on_recovery_undoes_the_booking(
    crash_module: PaymentModule, database_url: str, calls_file: Path
) -> None:
    module = crash_module
    payment_id = await authorized_payment(module, scenario="capture_error")
    assert run_child(database_url, calls_file, "capture", payment_id, "k4", "before-provider-capture") == 137
    report = await reconcile(module, older_than=timedelta(0))
    assert [r.outcome for r in report] == ["failed"]
    payment = await module.retrieve_payment(payment_id, {"relations": ["captures"]})
    assert payment.captures == []  # the refusal compensated the booking
    assert await reconcile(module, older_than=timedelta(0)) == []


async def test_a_resumed_capture_refused_because_the_provider_voided_cancels_the_payment(
    crash_module: PaymentModule, database_url: str, calls_file: Path
) -> None:
    """The process died before asking the provider; meanwhile the provider voided the authorization.
    The reconciler's capture is refused, unbooked, and the void the provider reports is booked."""
    module = crash_module
    payment_id = await authorized_payment(module, scenario="voided")
    assert run_child(database_url, calls_file, "capture", payment_id, "k5", "before-provider-capture") == 137
    [resumed] = await reconcile(module, older_than=timedelta(0))
    assert resumed.outcome == "failed" and "voided at the provider" in resumed.detail
    payment = await module.retrieve_payment(payment_id, {"relations": ["captures"]})
    assert payment.captures == [] and payment.canceled_at is not None
    assert await reconcile(module, older_than=timedelta(0)) == []


async def test_the_worker_runs_the_reconciler_and_paymod_reconcile_reports(
    crash_module: PaymentModule, database_url: str, calls_file: Path
) -> None:
    from paymod.webhooks.worker import Worker

    module = crash_module
    payment_id = await authorized_payment(module)
    assert run_child(database_url, calls_file, "capture", payment_id, "k3", "after-book-capture") == 137
    worker = Worker(module, reconcile_every=0.01)
    try:
        await asyncio.sleep(0.05)
        await worker.run_once()
    finally:
        await worker.close()
    assert worker.handled["reconciled"] == 1
    payment = await module.retrieve_payment(payment_id, {"relations": ["captures"]})
    assert [c.amount for c in payment.captures or []] == [Decimal(60)]  # resumed: the provider captured
    command = [sys.executable, "-m", "paymod.cli", "reconcile", "--older-than", "0", "--json"]
    done = await asyncio.to_thread(
        subprocess.run,
        [*command, "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
