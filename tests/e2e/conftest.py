"""End-to-end fixtures: the ASGI app over the `module` fixture (SQLite and PostgreSQL), called with httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from e2e.support import ADMIN_KEY, PUBLISHABLE_KEY, TESTING_PROVIDER, Api
from paymod import PaymentModule
from paymod.config import ProviderSettings, Settings
from paymod.http import create_app


@pytest.fixture
def settings() -> Settings:
    return Settings(
        config=None,
        admin_api_key=ADMIN_KEY,
        publishable_api_key=PUBLISHABLE_KEY,
        providers=[ProviderSettings(**TESTING_PROVIDER)],
    )


@pytest.fixture
def app(module: PaymentModule, settings: Settings) -> FastAPI:
    return create_app(settings, module=module)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://paymod.test") as c:
        yield c


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)
