"""The Stripe provider passes the conformance kit against localstripe."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conformance.stripe_drivers import LocalstripeDriver, RecordingClient
from paymod.providers.stripe.provider import FormHTTPXClient
from paymod.testing import ProviderConformance


@pytest.fixture
async def driver(localstripe: str) -> AsyncIterator[LocalstripeDriver]:
    client, merchant = RecordingClient(), FormHTTPXClient()
    yield LocalstripeDriver(localstripe, client, merchant)
    await client.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK
    await merchant.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK


class TestStripeOnLocalstripe(ProviderConformance):
    pass
