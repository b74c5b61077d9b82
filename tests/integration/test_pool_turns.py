"""Callers get the pool's connections first come, first served. SQLAlchemy's pool lets a caller that
arrives as a connection comes back take it (or open a new one in place of one just closed) while an
earlier caller waits: under load, such a waiter could wait out the pool's timeout (with 200 requests
in flight, see benchmarks.latency)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, text

from paymod.persistence.database import Database

NEWCOMERS = 20


async def test_a_waiting_caller_is_not_passed_by_callers_that_come_later(database_url: str) -> None:
    database = Database(database_url, pool_size=1)
    taken: list[str] = []
    release = asyncio.Event()
    newcomers: list[asyncio.Task[None]] = []

    async def use(name: str, until: asyncio.Event | None = None) -> None:
        async with database.single() as conn:
            taken.append(name)
            await conn.execute(text("SELECT 1"))
            if until is not None:
                await until.wait()

    def arrive(*args: Any) -> None:
        # A new caller each time a connection comes back, as when many requests are in flight.
        if release.is_set() and len(newcomers) < NEWCOMERS:
            newcomers.append(asyncio.get_running_loop().create_task(use(f"newcomer-{len(newcomers)}")))

    event.listen(database.engine.sync_engine.pool, "checkin", arrive)
    try:
        holders = [asyncio.create_task(use(f"holder-{n}", release)) for n in range(database.capacity)]
        waiting = asyncio.create_task(use("waiting"))
        for _ in range(3000):  # until the holders have every connection and it waits
            if len(taken) == database.capacity and database.waiting():
                break
            await asyncio.sleep(0.01)
        assert sorted(taken) == sorted(f"holder-{n}" for n in range(database.capacity))
        release.set()
        await asyncio.gather(*holders, waiting)
        for _ in range(3000):
            if len(newcomers) == NEWCOMERS and all(t.done() for t in newcomers):
                break
            await asyncio.sleep(0.01)
    finally:
        await database.close()
    # It has the first connection that came back (without the turns, 12 to 19 newcomers passed it).
    assert taken.index("waiting") == database.capacity, taken[: database.capacity + 3]
    assert len(taken) == database.capacity + 1 + NEWCOMERS


async def test_a_caller_holding_a_connection_does_not_queue_behind_itself(database_url: str) -> None:
    database = Database(database_url, pool_size=1)
    try:
        async with database.single() as outer:
            await outer.execute(text("SELECT 1"))
            # Nested, as a helper called inside a transaction may do: it goes straight to the pool.
            async with database.single() as inner:
                assert (await inner.execute(text("SELECT 2"))).scalar_one() == 2
    finally:
        await database.close()
