"""Two modules on one database (as two servers would be) and a provider webhook reported to one of
them: what the provider-side races (an external refund, a void) share."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from paymod import PaymentModule
from paymod.providers.testing import SIGNATURE_HEADER, sign
from paymod.services.dto import PaymentDTO, PaymentSessionDTO
from paymod.webhooks.inbox import receive_webhook
from paymod.webhooks.worker import Worker

T = TypeVar("T")

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


async def authorized_payment(
    module: PaymentModule, *, data: dict[str, Any] | None = None
) -> tuple[PaymentSessionDTO, PaymentDTO]:
    """A collection of 100 usd with an authorized testing-provider session, and its payment."""
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 100})
    session_input: dict[str, Any] = {
        "provider_id": "pp_testing_default",
        "amount": 100,
        "currency_code": "usd",
    }
    if data is not None:
        session_input["data"] = data
    session = await module.create_payment_session(collection.id, session_input)
    payment = await module.authorize_payment_session(session.id)
    assert payment is not None
    return session, payment


async def race_the_worker(hooks: PaymentModule, request: Awaitable[T]) -> T | BaseException:
    """Runs one pass of `hooks`' worker (the reported webhook) at the same time as `request`."""
    worker = Worker(hooks)
    try:
        result, _ = await asyncio.gather(request, worker.run_once(), return_exceptions=True)
    finally:
        await worker.close()
    return result
