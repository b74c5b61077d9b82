"""Races above the payment, through the HTTP API of two real `paymod serve` processes on one database.

Each test repeats its race over fresh collections and, after every round, checks the rows in the
database (`collection_checks`): a storefront double click, concurrent mark-as-paid, an amount change
or a session replacement racing the checkout's authorization, a deletion racing it. Requests
alternate between the two servers, so the guards must hold across processes (PostgreSQL row locks;
SQLite's write lock), not only inside one.

What a request that loses a race gets is part of the contract (docs/concepts.md): 409 `conflict`
(retrying is safe), or the refusal the state now calls for (400 `not_allowed`); never a 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.support import ADMIN, STORE, TESTING, json_of, running_server
from reliability.collection_checks import check

ROUNDS = 8
LOSER_STATUSES = {400, 404, 409}


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two `paymod serve` processes (no worker) on the test's database."""
    with contextlib.ExitStack() as stack:
        urls = []
        for n in range(2):
            directory = tmp_path / f"server-{n}"
            directory.mkdir()
            server = stack.enter_context(
                running_server(database_url, directory, serve_args=["--no-worker", "--no-migrate"])
            )
            urls.append(server.base_url)
        yield urls


class Cluster:
    """One HTTP client per server; `pick(n)` alternates between them."""

    def __init__(self, clients: list[httpx.AsyncClient]) -> None:
        self.clients = clients

    def pick(self, n: int) -> httpx.AsyncClient:
        return self.clients[n % len(self.clients)]

    async def collection(self, amount: str = "10.00", currency_code: str = "usd") -> str:
        response = await self.pick(0).post(
            "/admin/payment-collections",
            json={"amount": amount, "currency_code": currency_code},
            headers=ADMIN,
        )
        assert response.status_code == 200, response.text
        return str(json_of(response)["payment_collection"]["id"])

    async def session(self, n: int, collection_id: str, scenario: str = "authorized") -> httpx.Response:
        return await self.pick(n).post(
            f"/store/payment-collections/{collection_id}/payment-sessions",
            json={"provider_id": TESTING, "data": {"scenario": scenario}},
            headers=STORE,
        )

    async def authorize(self, n: int, collection_id: str, session_id: str | None = None) -> httpx.Response:
        body = {} if session_id is None else {"session_id": session_id}
        return await self.pick(n).post(
            f"/store/payment-collections/{collection_id}/authorize", json=body, headers=STORE
        )


@contextlib.asynccontextmanager
async def cluster(urls: list[str]) -> Any:
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60)) for url in urls
        ]
        yield Cluster(clients)


def no_server_errors(responses: list[httpx.Response]) -> None:
    for response in responses:
        assert response.status_code < 500, response.text
        if response.status_code != 200:
            assert response.status_code in LOSER_STATUSES, response.text
            assert {"type", "code", "message"} <= set(json_of(response)), response.text


async def rounds(
    database_url: str,
    race: Callable[[int], Awaitable[str]],
    *,
    single_session: bool = False,
) -> None:
    """Runs `race` ROUNDS times (each returns its collection id) and fails with every broken round."""
    broken: list[str] = []
    for n in range(ROUNDS):
        try:
            collection_id = await race(n)
        except AssertionError as exc:  # what the requests answered was already wrong
            broken.append(f"round {n}: {exc}")
            continue
        problems = await check(database_url, collection_id, single_session=single_session)
        if problems:
            broken.append(f"round {n} ({collection_id}): " + "; ".join(problems))
    assert not broken, f"{len(broken)}/{ROUNDS} rounds broke an invariant:\n" + "\n".join(broken)


def session_ids(responses: list[httpx.Response]) -> set[str]:
    ids: set[str] = set()
    for response in responses:
        if response.status_code == 200:
            ids.update(s["id"] for s in json_of(response)["payment_collection"]["payment_sessions"])
    return ids


async def test_a_storefront_double_click_leaves_one_session_and_charges_once(
    database_url: str, servers: list[str]
) -> None:
    async with cluster(servers) as api:

        async def race(n: int) -> str:
            collection_id = await api.collection()
            created = await asyncio.gather(*(api.session(k, collection_id, "captured") for k in range(4)))
            no_server_errors(list(created))
            assert any(r.status_code == 200 for r in created)
            # The shopper's page then completes the checkout with whichever session it was shown.
            authorized = await asyncio.gather(
                *(api.authorize(k, collection_id, s) for k, s in enumerate(sorted(session_ids(created))))
            )
            no_server_errors(list(authorized))
            return collection_id

        await rounds(database_url, race, single_session=True)


async def test_concurrent_mark_as_paid_books_the_amount_once(database_url: str, servers: list[str]) -> None:
    async with cluster(servers) as api:

        async def race(n: int) -> str:
            collection_id = await api.collection()
            marked = await asyncio.gather(
                *(
                    api.pick(k).post(
                        f"/admin/payment-collections/{collection_id}/mark-as-paid", headers=ADMIN
                    )
                    for k in range(10)
                )
            )
            no_server_errors(list(marked))
            assert sum(r.status_code == 200 for r in marked) >= 1
            document = json_of(
                await api.pick(0).get(f"/admin/payment-collections/{collection_id}", headers=ADMIN)
            )
            assert Decimal(str(document["payment_collection"]["captured_amount"])) == Decimal(10)
            return collection_id

        await rounds(database_url, race, single_session=True)


@pytest.mark.parametrize("new_amount", ["1000", "5"])
async def test_an_amount_change_racing_the_authorization_leaves_no_orphan(
    database_url: str, servers: list[str], new_amount: str
) -> None:
    async with cluster(servers) as api:

        async def race(n: int) -> str:
            collection_id = await api.collection()
            created = await api.session(0, collection_id)
            assert created.status_code == 200, created.text
            results = await asyncio.gather(
                api.authorize(n, collection_id),
                api.pick(n + 1).post(
                    f"/admin/payment-collections/{collection_id}", json={"amount": new_amount}, headers=ADMIN
                ),
            )
            no_server_errors(list(results))
            return collection_id

        await rounds(database_url, race)


async def test_a_session_replacement_racing_the_authorization_leaves_no_orphan(
    database_url: str, servers: list[str]
) -> None:
    async with cluster(servers) as api:

        async def race(n: int) -> str:
            collection_id = await api.collection()
            first = await api.session(0, collection_id, "captured")
            assert first.status_code == 200, first.text
            (session,) = session_ids([first])
            results = await asyncio.gather(
                api.authorize(n, collection_id, session), api.session(n + 1, collection_id, "captured")
            )
            no_server_errors(list(results))
            return collection_id

        await rounds(database_url, race, single_session=True)


async def test_a_deletion_racing_the_authorization_never_deletes_a_paid_collection(
    database_url: str, servers: list[str]
) -> None:
    async with cluster(servers) as api:

        async def race(n: int) -> str:
            collection_id = await api.collection()
            created = await api.session(0, collection_id, "captured")
            assert created.status_code == 200, created.text
            results = await asyncio.gather(
                api.authorize(n, collection_id),
                api.pick(n + 1).delete(f"/admin/payment-collections/{collection_id}", headers=ADMIN),
            )
            no_server_errors(list(results))
            # Both cannot win: a deleted collection has no payment (collection_checks says so).
            assert [r.status_code == 200 for r in results] != [True, True], [r.text for r in results]
            return collection_id

        await rounds(database_url, race)
