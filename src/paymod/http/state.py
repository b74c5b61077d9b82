"""What the routes share, held on `app.state.paymod`: the parts `paymod.bootstrap` wires (settings,
the module, the access stores, the in-process worker)."""

from __future__ import annotations

from fastapi import Request

from paymod.bootstrap import Components as AppState
from paymod.services.payment_module import PaymentModule


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.paymod
    return state


# Dependencies are `async def`: FastAPI runs a plain `def` dependency in a worker thread.
async def app_state(request: Request) -> AppState:
    return state_of(request)


async def module(request: Request) -> PaymentModule:
    return state_of(request).module


__all__ = ["AppState", "app_state", "module", "state_of"]
