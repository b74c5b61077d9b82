"""Two modules on one database (as two servers would be) and a provider webhook reported to one of
them: what the provider-side races (an external refund, a void) share."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from paymod import PaymentModule
from paymod.providers.testing import SIGNATURE_HEADER, sign
from paymod.webhooks.inbox import receive_webhook

SECRET = "whsec_testing"
PROVIDERS = [{"resolve": "paymod.providers.testing", "id": "default", "options": {"webhook_secret": SECRET}}]
OPTIONS = {"webhook_delay": 0, "webhook_retries": 0}


@asynccontextmanager
async def two_modules(database_url: str) -> AsyncIterator[tuple[PaymentModule, PaymentModule]]:
    async with (
        await PaymentModule.connect(database_url, providers=PROVIDERS, options=OPTIONS, migrate=False) as one,
        await PaymentModule.connect(database_url, providers=PROVIDERS, options=OPTIONS, migrate=False) as two,
    ):
        yield one, two


async def report(module: PaymentModule, body: dict[str, Any]) -> None:
    """Stores a signed testing-provider webhook, as its route would, for the module's worker."""
    raw = json.dumps(body).encode()
    await receive_webhook(module, "testing_default", raw, {SIGNATURE_HEADER: sign(raw, SECRET)})
