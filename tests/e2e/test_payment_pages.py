"""`GET /admin/payments` by pages: offsets (Medusa's, with `count`), `after` cursors (keyset pages, the
same at any depth), and the `status` and `provider_id` filters, newest first."""

from __future__ import annotations

from typing import Any

import httpx

from e2e.support import ADMIN, SYSTEM, Api, json_of


async def listed(client: httpx.AsyncClient, query: str) -> dict[str, Any]:
    response = await client.get(f"/admin/payments?{query}", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = json_of(response)
    return body


async def walk(client: httpx.AsyncClient, query: str) -> list[str]:
    """The ids of every page, following `next_cursor` from the first page (which counts)."""
    page = await listed(client, query)
    ids = [p["id"] for p in page["payments"]]
    while page["next_cursor"] is not None:
        page = await listed(client, f"{query}&after={page['next_cursor']}")
        assert page["count"] is None
        ids += [p["id"] for p in page["payments"]]
    return ids


async def test_cursor_pages_list_every_payment_once_newest_first(api: Api, client: httpx.AsyncClient) -> None:
    made = [(await api.payment("10"))["id"] for _ in range(5)]
    newest_first = list(reversed(made))
    first = await listed(client, "order=-created_at&limit=2")
    assert first["count"] == 5 and first["next_cursor"] is not None
    assert [p["id"] for p in first["payments"]] == newest_first[:2]
    # A payment made while the client pages does not shift the pages after its cursor.
    await api.payment("10")
    second = await listed(client, f"order=-created_at&limit=2&after={first['next_cursor']}")
    assert [p["id"] for p in second["payments"]] == newest_first[2:4]
    assert second["count"] is None and second["offset"] == 0 and second["limit"] == 2
    # Each page has the default relations, as an offset page does.
    assert second["payments"][0]["captures"] == [] and second["payments"][0]["refunds"] == []
    last = await listed(client, f"order=-created_at&limit=2&after={second['next_cursor']}")
    assert [p["id"] for p in last["payments"]] == newest_first[4:]
    assert last["next_cursor"] is None
    everything = [p["id"] for p in (await listed(client, "order=-created_at&limit=100"))["payments"]]
    assert await walk(client, "order=-created_at&limit=2") == everything
    assert await walk(client, "limit=4") == list(reversed(everything))  # oldest first by default
    assert await walk(client, "order=-created_at&limit=3&count=false") == everything
    uncounted = await listed(client, "order=-created_at&limit=3&count=false")
    assert uncounted["count"] is None and len(uncounted["payments"]) == 3


async def test_payments_are_listed_by_status_and_by_provider(api: Api, client: httpx.AsyncClient) -> None:
    captured = []
    for n in range(4):
        payment = await api.payment("10")
        if n % 2:
            assert (await api.capture(payment["id"])).status_code == 200
            captured.insert(0, payment["id"])
    collection = await api.collection("10")
    await api.session(collection["id"], provider_id=SYSTEM)
    by_system = [json_of(await api.authorize(collection["id"]))["payment"]["id"]]
    page = await listed(client, "status=captured&order=-created_at")
    assert [p["id"] for p in page["payments"]] == captured and page["count"] == 2
    assert await walk(client, "status=captured&order=-created_at&limit=1") == captured
    assert await walk(client, "status=captured&status=authorized&limit=2&count=false") != []
    assert await walk(client, f"provider_id={SYSTEM}&order=-created_at&limit=1") == by_system
    assert (await listed(client, "status=refunded"))["payments"] == []


async def test_a_cursor_is_refused_when_it_cannot_be_followed(api: Api, client: httpx.AsyncClient) -> None:
    await api.payment("10")
    await api.payment("10")
    cursor = (await listed(client, "limit=1"))["next_cursor"]
    assert cursor is not None
    for query in (
        "after=nonsense",
        "after=W10",  # base64 of "[]"
        f"after={cursor}&offset=1",
        f"after={cursor}&order=-captured_at",
        "status=unknown",
    ):
        response = await client.get(f"/admin/payments?{query}", headers=ADMIN)
        assert response.status_code == 400, (query, response.text)
        assert json_of(response)["type"] == "invalid_data", query
    # Other orders page by offset, without a cursor.
    assert (await listed(client, "order=-captured_at&limit=1"))["next_cursor"] is None
