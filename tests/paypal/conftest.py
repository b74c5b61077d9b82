"""Fixtures of the PayPal provider's tests: the fake PayPal on a loopback port, the provider, modules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from fake_paypal import FakePayPal, start_fake_paypal
from paypal_settings import paypal_config, paypal_options

from paymod import PaymentModule
from paymod.providers.paypal import PayPalProvider


@pytest.fixture
def fake() -> Iterator[FakePayPal]:
    with start_fake_paypal() as fake:
        yield fake


@pytest.fixture
async def provider(fake: FakePayPal) -> AsyncIterator[PayPalProvider]:
    provider = PayPalProvider(paypal_options(fake.url))
    yield provider
    await provider.close()


@pytest.fixture
async def paypal_module(database_url: str, fake: FakePayPal) -> AsyncIterator[PaymentModule]:
    """The module on SQLite or PostgreSQL with PayPal answered by the fake."""
    async with await PaymentModule.connect(
        database_url, providers=[paypal_config(fake.url)], options={"webhook_delay": 0}, migrate=False
    ) as module:
        yield module
