"""Disputes through HTTP, on SQLite and PostgreSQL: a provider's `disputed` webhook posted to
`/hooks/payment/{provider}` is applied by the app's worker, then shown by `GET /admin/disputes`, on
the payment's document, and answered through `POST /admin/disputes/{id}/evidence` and `/accept`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from e2e.support import ADMIN, json_of
from e2e.test_webhooks_http import WAIT_SECONDS, Service, deliver, served, settled
from paymod.config import Settings

__all__ = ["served"]  # the fixture, imported for this module's tests


@pytest.fixture
async def disputed(served: Service) -> AsyncIterator[tuple[Service, dict[str, Any]]]:
    """A captured payment of 100 with a dispute of 25 reported by the testing provider."""
    payment = await served.api.payment("100")
    assert (await served.api.capture(payment["id"])).status_code == 200
    event = {
        "id": "evt_dispute_1",
        "action": "disputed",
        "session_id": payment["payment_session_id"],
        "dispute_id": "dp_http_1",
        "amount": "25",
        "status": "needs_response",
        "reason": "product_not_received",
        "evidence_due_by": "2026-12-24T12:00:00+00:00",
    }
    received = await deliver(served.client, event)
    await settled(served.module, received["id"])
    yield served, payment


async def test_a_reported_dispute_is_listed_and_shown_on_its_payment(
    disputed: tuple[Service, dict[str, Any]],
) -> None:
    served, payment = disputed
    client = served.client
    response = await client.get("/admin/disputes", params={"payment_id": payment["id"]}, headers=ADMIN)
    assert response.status_code == 200, response.text
    listed = json_of(response)
    assert (listed["count"], listed["offset"], listed["limit"]) == (1, 0, 20)
    [dispute] = listed["disputes"]
    assert dispute["id"].startswith("disp_")
    assert (dispute["amount"], dispute["currency_code"], dispute["status"]) == (25, "usd", "needs_response")
    assert dispute["provider_dispute_id"] == "dp_http_1"
    assert dispute["evidence_due_by"] == "2026-12-24T12:00:00+00:00"

    response = await client.get(f"/admin/disputes/{dispute['id']}", headers=ADMIN)
    assert json_of(response)["dispute"]["reason"] == "product_not_received"
    response = await client.get(f"/admin/payments/{payment['id']}", headers=ADMIN)
    assert [d["id"] for d in json_of(response)["payment"]["disputes"]] == [dispute["id"]]
    response = await client.get("/admin/disputes", params={"status": ["won", "lost"]}, headers=ADMIN)
    assert json_of(response)["count"] == 0
    response = await client.get("/admin/disputes", params={"status": "open"}, headers=ADMIN)
    assert response.status_code == 400
    response = await client.get("/admin/disputes/disp_unknown", headers=ADMIN)
    assert response.status_code == 404


async def test_a_refund_is_refused_while_open_and_the_dispute_answered(
    disputed: tuple[Service, dict[str, Any]],
) -> None:
    served, payment = disputed
    client = served.client
    refused = await served.api.refund(payment["id"], amount=10)
    assert refused.status_code == 400
    assert json_of(refused)["type"] == "not_allowed" and "open dispute" in json_of(refused)["message"]
    [dispute] = json_of(await client.get("/admin/disputes", headers=ADMIN))["disputes"]

    response = await client.post(
        f"/admin/disputes/{dispute['id']}/evidence",
        json={"evidence": {"customer_name": "Ada"}, "submit": True},
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text
    answered = json_of(response)["dispute"]
    assert answered["status"] == "under_review" and answered["evidence_submitted_at"] is not None
    response = await client.post(
        f"/admin/disputes/{dispute['id']}/evidence", json={"evidence": {}, "unknown": 1}, headers=ADMIN
    )
    assert response.status_code == 400

    response = await client.post(f"/admin/disputes/{dispute['id']}/accept", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert json_of(response)["dispute"]["status"] == "lost"
    response = await client.post(f"/admin/disputes/{dispute['id']}/accept", headers=ADMIN)
    assert (response.status_code, json_of(response)["type"]) == (400, "not_allowed")
    # Lost: 75 of the 100 stay refundable.
    assert (await served.api.refund(payment["id"], amount=76)).status_code == 400
    refunded = await served.api.refund(payment["id"])
    assert refunded.status_code == 200, refunded.text
    assert [r["amount"] for r in json_of(refunded)["payment"]["refunds"]] == [75]


async def test_the_routes_need_the_secret_key(served: Service, settings: Settings) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        response: httpx.Response = await served.client.get("/admin/disputes")
    assert response.status_code == 401
