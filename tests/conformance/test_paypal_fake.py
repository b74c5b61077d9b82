"""The PayPal provider passes the conformance kit, with PayPal answered by the fake PayPal."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_paypal import start_fake_paypal

from conformance.paypal_drivers import FakePayPalDriver
from paymod.testing import ProviderConformance


@pytest.fixture
async def driver() -> AsyncIterator[FakePayPalDriver]:
    with start_fake_paypal() as fake:
        driver = FakePayPalDriver(fake)
        yield driver
        await driver.close()


class TestPayPalOnTheFake(ProviderConformance):
    pass
