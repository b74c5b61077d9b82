"""`PAYMOD_DATABASE_POOL_SIZE` sizes each process's connection pool (docs/deployment.md, sizing)."""

from __future__ import annotations

import pytest

from paymod import bootstrap
from paymod.config import Settings, load_settings


def test_the_pool_size_comes_from_the_environment_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMOD_DATABASE_POOL_SIZE", "4")
    assert load_settings().database_pool_size == 4
    monkeypatch.setenv("PAYMOD_DATABASE_POOL_SIZE", "0")
    with pytest.raises(Exception, match="database_pool_size"):
        load_settings()


async def test_the_server_and_the_cli_open_pools_of_the_configured_size(database_url: str) -> None:
    settings = Settings(database_url=database_url, database_pool_size=3)
    module = await bootstrap.connect(settings, process_kind="library")
    try:
        assert module.database.engine.pool.size() == 3
    finally:
        await module.close()
    async with bootstrap.operator_module(settings) as operator:
        assert operator.database.engine.pool.size() == 3
