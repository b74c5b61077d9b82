"""The Stripe provider passes the conformance kit, with Stripe answered by the in-memory fake."""

from __future__ import annotations

import pytest
from fake_stripe import FakeStripe

from conformance.stripe_drivers import FakeStripeDriver
from paymod.testing import ProviderConformance


@pytest.fixture
def driver(fake: FakeStripe) -> FakeStripeDriver:
    return FakeStripeDriver(fake)


class TestStripeOnTheFake(ProviderConformance):
    pass
