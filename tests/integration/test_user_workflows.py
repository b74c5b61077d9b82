"""A user's own flow built from the step API (the example of docs/workflows.md)."""

from __future__ import annotations

import pytest

from paymod import PaymentModule, ProviderError
from paymod.durable.engine import Step, StepContext, Workflow


def create_payment_collection_flow(module: PaymentModule, *, provider_id: str) -> Workflow:
    async def create_collection(ctx: StepContext) -> str:
        collection = await module.create_payment_collections({"currency_code": "usd", "amount": 5000})
        return collection.id

    async def delete_collection(ctx: StepContext, collection_id: str | None) -> None:
        if collection_id:
            await module.delete_payment_collections([collection_id])

    async def open_checkout(ctx: StepContext) -> str:
        collection_id = ctx.outputs["create-payment-collection"]
        session = await module.create_payment_session(
            collection_id,
            {
                "provider_id": provider_id,
                "amount": 5000,
                "currency_code": "usd",
                "data": {"scenario": ctx.input.get("scenario", "authorized")},
            },
        )
        return session.id

    return Workflow(
        "create-payment-collection",
        [
            Step("create-payment-collection", create_collection, delete_collection),
            Step("open-checkout", open_checkout),
        ],
    )


async def test_a_failing_step_deletes_the_collection_the_first_step_created(module: PaymentModule) -> None:
    flow = create_payment_collection_flow(module, provider_id="pp_testing_default")
    with pytest.raises(ProviderError, match="Create session error"):
        await module.runner.run(flow, {"scenario": "initiate_error"}, key="cart_1")
    assert await module.list_payment_collections() == []
    with pytest.raises(ProviderError, match="Create session error"):
        await module.runner.run(flow, {"scenario": "initiate_error"}, key="cart_1")
    assert await module.list_payment_collections() == []


async def test_a_successful_flow_runs_once_per_key(module: PaymentModule) -> None:
    flow = create_payment_collection_flow(module, provider_id="pp_system_default")
    first = await module.runner.run(flow, {}, key="cart_2")
    again = await module.runner.run(flow, {}, key="cart_2")
    assert first == again
    [collection] = await module.list_payment_collections({}, {"relations": ["payment_sessions"]})
    assert [s.id for s in collection.payment_sessions or []] == [first]
