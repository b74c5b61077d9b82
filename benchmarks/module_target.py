"""Target (a): the flow through paymod's Python API, `PaymentModule`, in this process."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from benchmarks.common import (
    FlowResult,
    Probe,
    Recorder,
    database_name,
    peak_rss_mb,
    run_phase,
    sample_sql,
    self_cpu_ms,
    stop_requested,
)
from benchmarks.counting import SqlCounter
from paymod import PaymentModule

SESSION = {"provider_id": "pp_system_default", "amount": 5000, "currency_code": "usd", "data": {}}


def module_flow(module: PaymentModule) -> Any:
    async def flow(rec: Recorder) -> FlowResult:
        collection = await rec.op(
            "create_payment_collections",
            module.create_payment_collections({"currency_code": "usd", "amount": 5000}),
        )
        session = await rec.op(
            "create_payment_session", module.create_payment_session(collection.id, SESSION)
        )
        payment = await rec.op("authorize_payment_session", module.authorize_payment_session(session.id, {}))
        assert payment is not None, "the system provider authorizes at once"
        await rec.op("capture_payment", module.capture_payment({"payment_id": payment.id, "amount": 5000}))
        await rec.op("refund_payment", module.refund_payment({"payment_id": payment.id, "amount": 2000}))
        return FlowResult(collection.id, payment.id)

    return flow


async def check_module_flow(module: PaymentModule, result: FlowResult) -> dict[str, Any]:
    """Medusa's correctness check: the collection's totals, its session, payment, capture and refund."""
    col = await module.retrieve_payment_collection(
        result.collection_id, {"relations": ["payment_sessions", "payments.captures", "payments.refunds"]}
    )
    sessions = col.payment_sessions or []
    payments = col.payments or []
    ok = (
        col.amount == Decimal(5000)
        and col.authorized_amount == Decimal(5000)
        and col.captured_amount == Decimal(5000)
        and col.refunded_amount == Decimal(2000)
        and col.status == "completed"
        and len(sessions) == 1
        and sessions[0].status == "authorized"
        and len(payments) == 1
        and len(payments[0].captures or []) == 1
        and len(payments[0].refunds or []) == 1
        and (payments[0].refunds or [])[0].amount == Decimal(2000)
    )
    return {"ok": ok, "final_collection_status": str(col.status)}


async def run_module(
    url: str,
    *,
    n: int,
    warmup: int,
    conc_n: int,
    conc_warmup: int,
    concurrency: int,
    pool_size: int,
    phases: tuple[str, ...],
    announce: Any,
) -> dict[str, Any]:
    counter = SqlCounter().install()
    module = await PaymentModule.connect(url, pool_size=pool_size)
    try:
        flow = module_flow(module)
        check = await check_module_flow(module, await flow(Recorder()))
        result: dict[str, Any] = {
            "check": check,
            "sql_counted": "in process (SQLAlchemy events)",
            "pool": {"pool_size": pool_size, "max_overflow": pool_size * 2},
            **await sample_sql(flow, counter.snapshot),
        }
        probe = Probe(
            process_cpu_ms=lambda: {"python": self_cpu_ms()},
            counters=counter.snapshot,
            database=database_name(url),
        )
        if "sequential" in phases:
            announce("phase-start sequential")
            result["sequential"] = await run_phase(flow, n, warmup, 1, probe)
        if "concurrent" in phases and not stop_requested():
            announce("phase-start concurrent")
            result["concurrent"] = await run_phase(flow, conc_n, conc_warmup, concurrency, probe)
        result["peak_rss_mb"] = peak_rss_mb()
        result["rss_of"] = "the bench process (module + harness), ru_maxrss"
        return result
    finally:
        await module.close()
