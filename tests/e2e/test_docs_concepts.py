"""docs/concepts.md's collection statuses, checked against what the HTTP API answers."""

from __future__ import annotations

import httpx

from e2e.support import ADMIN, Api, json_of
from paymod import PaymentModule


async def status_of(client: httpx.AsyncClient, collection_id: str) -> str:
    response = await client.get(f"/admin/payment-collections/{collection_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    status: str = json_of(response)["payment_collection"]["status"]
    return status


async def test_a_collection_awaits_payment_while_it_has_a_session_and_nothing_is_authorized(
    api: Api, client: httpx.AsyncClient, module: PaymentModule
) -> None:
    collection = await api.collection("30")
    assert collection["status"] == "not_paid"

    session = await api.session(collection["id"])
    assert await status_of(client, collection["id"]) == "awaiting"

    # A declined session still counts: the customer may try again.
    declined = await api.session(collection["id"], data={"scenario": "decline"})
    assert (await api.authorize(collection["id"])).status_code == 402
    assert await status_of(client, collection["id"]) == "awaiting"

    # The store's route replaced the first session: deleting the declined one leaves none.
    current = await module.retrieve_payment_collection(collection["id"], {"relations": ["payment_sessions"]})
    assert [s.id for s in current.payment_sessions or []] == [declined["id"]] != [session["id"]]
    await module.delete_payment_session(declined["id"])
    assert await status_of(client, collection["id"]) == "not_paid"
