"""Callers get the pool's connections first come, first served: a caller that runs transaction after
transaction does not keep a waiting caller out (it did, until the waiter hit the pool's timeout,
with 200 requests in flight; see benchmarks.latency)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from paymod.persistence.database import Database


async def test_a_waiting_caller_gets_a_connection_before_busy_callers_take_it_again(
    database_url: str,
) -> None:
    database = Database(database_url, pool_size=1)
    taken: list[str] = []
    all_busy = asyncio.Event()

    async def busy(name: str, rounds: int) -> None:
        for _ in range(rounds):
            # Back to back: the next transaction asks for a connection as soon as this one returned it.
            async with database.single() as conn:
                taken.append(name)
                if len(taken) == database.capacity:
                    all_busy.set()
                await all_busy.wait()
                await conn.execute(text("SELECT 1"))

    async def waiting() -> None:
        await all_busy.wait()
        async with database.single() as conn:
            taken.append("waiting")
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.gather(*(busy(f"busy-{n}", 20) for n in range(database.capacity)), waiting())
    finally:
        await database.close()
    # It had its turn as soon as the first connection came back, not after the busy callers' 20 rounds.
    assert taken.index("waiting") == database.capacity, taken[: database.capacity + 3]
    assert len(taken) == database.capacity * 20 + 1


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
