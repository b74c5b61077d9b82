"""A provider call holds no database connection (and so no transaction and no row lock): a slow
provider does not eat the connection pool. Every provider call of the money paths (session creation
and replacement, authorize, capture, refund, cancel, session deletion) looks, while it runs, at the
pool connections its own task has checked out, and at what another request can do meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from paymod import PaymentModule
from paymod.providers.base import (
    AuthorizePaymentOutput,
    CapturePaymentInput,
    InitiatePaymentInput,
    InitiatePaymentOutput,
    ProviderInput,
    ProviderOutput,
    RefundPaymentInput,
)
from paymod.providers.testing import TestingPaymentProvider


class Holdings:
    """Which asyncio task has which pool connection checked out."""

    def __init__(self, module: PaymentModule) -> None:
        self.owners: dict[int, asyncio.Task[Any] | None] = {}
        pool = module.database.engine.sync_engine.pool
        event.listen(pool, "checkout", self._checkout)
        event.listen(pool, "checkin", self._checkin)

    def _checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        self.owners[id(record)] = asyncio.current_task()

    def _checkin(self, dbapi_connection: Any, record: Any) -> None:
        self.owners.pop(id(record), None)

    def held_by_current_task(self) -> int:
        task = asyncio.current_task()
        return sum(1 for owner in self.owners.values() if owner is task)


class ProbingProvider(TestingPaymentProvider):
    """The testing provider, which notes during each call what the calling task holds, and runs another
    request of the module to its end meanwhile."""

    identifier = "probing"

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.seen: list[tuple[str, int]] = []
        self.holdings: Holdings | None = None
        self.module: PaymentModule | None = None

    async def _probe(self, method: str) -> None:
        assert self.holdings is not None and self.module is not None
        self.seen.append((method, self.holdings.held_by_current_task()))
        # Another request completes while this call is in flight (with a pool of one connection,
        # it would wait forever for the connection a call held).
        await self.module.list_payment_collections({}, {"take": 1})

    async def initiate_payment(self, input: InitiatePaymentInput) -> InitiatePaymentOutput:
        await self._probe("initiate_payment")
        return await super().initiate_payment(input)

    async def authorize_payment(self, input: ProviderInput) -> AuthorizePaymentOutput:
        await self._probe("authorize_payment")
        return await super().authorize_payment(input)

    async def capture_payment(self, input: CapturePaymentInput) -> ProviderOutput:
        await self._probe("capture_payment")
        return await super().capture_payment(input)

    async def refund_payment(self, input: RefundPaymentInput) -> ProviderOutput:
        await self._probe("refund_payment")
        return await super().refund_payment(input)

    async def cancel_payment(self, input: ProviderInput) -> ProviderOutput:
        await self._probe("cancel_payment")
        return await super().cancel_payment(input)

    async def delete_payment(self, input: ProviderInput) -> ProviderOutput:
        await self._probe("delete_payment")
        return await super().delete_payment(input)


@pytest.fixture
async def probed(database_url: str) -> AsyncIterator[tuple[PaymentModule, ProbingProvider]]:
    config = {"resolve": ProbingProvider, "id": "default", "options": {"latency": 0.01}}
    async with await PaymentModule.connect(
        database_url, providers=[config], migrate=False, pool_size=1
    ) as module:
        provider = module.provider("pp_probing_default")
        assert isinstance(provider, ProbingProvider)
        provider.holdings = Holdings(module)
        provider.module = module
        yield module, provider


SESSION = {"provider_id": "pp_probing_default", "amount": 100, "currency_code": "usd"}


async def test_no_provider_call_of_the_money_paths_holds_a_database_connection(
    probed: tuple[PaymentModule, ProbingProvider],
) -> None:
    module, provider = probed
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 100})
    first = await module.create_payment_session(collection.id, SESSION, replace=True)
    # The store's checkout replaces the first session (and drops it at the provider).
    session = await module.create_payment_session(collection.id, SESSION, replace=True)
    payment = await module.authorize_payment_session(session.id)
    assert payment is not None
    await module.capture_payment({"payment_id": payment.id, "amount": 60})
    await module.refund_payment({"payment_id": payment.id, "amount": 20})
    await module.cancel_payment(payment.id)
    other = await module.create_payment_collections({"currency_code": "usd", "amount": 100})
    dropped = await module.create_payment_session(other.id, SESSION)
    await module.delete_payment_session(dropped.id)
    assert first.id != session.id
    assert sorted(set(provider.seen)) == [
        ("authorize_payment", 0),
        ("cancel_payment", 0),
        ("capture_payment", 0),
        ("delete_payment", 0),
        ("initiate_payment", 0),
        ("refund_payment", 0),
    ]
    assert len(provider.seen) == 9


async def test_the_testing_providers_latency_is_bounded(database_url: str) -> None:
    for latency in (-1, 11, "1", True):
        with pytest.raises(Exception, match="latency must be a number of seconds from 0 to 10"):
            await PaymentModule.connect(
                database_url,
                providers=[{"resolve": "paymod.providers.testing", "options": {"latency": latency}}],
                migrate=False,
            )
