"""What the routes share: settings, the module and the stores, held on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from paymod.config import Settings
from paymod.persistence.api_keys import ApiKeyStore
from paymod.persistence.ephemeral_keys import EphemeralKeyStore
from paymod.persistence.idempotency import IdempotencyStore
from paymod.services.payment_module import PaymentModule
from paymod.webhooks.worker import Worker


@dataclass(frozen=True)
class AppState:
    settings: Settings
    module: PaymentModule
    api_keys: ApiKeyStore
    idempotency: IdempotencyStore
    ephemeral_keys: EphemeralKeyStore
    #: The in-process worker, while the app runs one (`[worker] enabled`, `paymod serve --no-worker`).
    worker: Worker | None = None

    @classmethod
    def of(cls, settings: Settings, module: PaymentModule, worker: Worker | None = None) -> AppState:
        idempotency = IdempotencyStore(module.database, owner=lambda: module.process_id)
        return cls(
            settings,
            module,
            ApiKeyStore(module.database),
            idempotency,
            EphemeralKeyStore(module.database),
            worker,
        )


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.paymod
    return state


# Dependencies are `async def`: FastAPI runs a plain `def` dependency in a worker thread.
async def app_state(request: Request) -> AppState:
    return state_of(request)


async def module(request: Request) -> PaymentModule:
    return state_of(request).module
