"""Refund reasons CRUD (reference 9.3, refund-reason.spec.ts)."""

from __future__ import annotations

import httpx
import pytest

from e2e.support import ADMIN, STORE, json_of

SEEDED = {
    ("Shipping Issue", "shipping_issue"),
    ("Customer Care Adjustment", "customer_care_adjustment"),
    ("Pricing Error", "pricing_error"),
}


@pytest.fixture
async def two_reasons(client: httpx.AsyncClient) -> list[dict[str, str]]:
    created = []
    for label, code in (("reason 1 - too big", "too_big"), ("reason 2 - too small", "too_small")):
        response = await client.post(
            "/admin/refund-reasons", json={"label": label, "code": code}, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        created.append(json_of(response)["refund_reason"])
    return created


async def test_should_list_refund_reasons_and_query_count(
    client: httpx.AsyncClient, two_reasons: list[dict[str, str]]
) -> None:
    response = await client.get("/admin/refund-reasons", headers=ADMIN)

    body = json_of(response)
    assert body["count"] == 5
    assert (body["offset"], body["limit"]) == (0, 15)
    assert {(r["label"], r["code"]) for r in body["refund_reasons"]} == SEEDED | {
        ("reason 1 - too big", "too_big"),
        ("reason 2 - too small", "too_small"),
    }


async def test_should_list_refund_reasons_with_specific_query(
    client: httpx.AsyncClient, two_reasons: list[dict[str, str]]
) -> None:
    response = await client.get("/admin/refund-reasons?q=1", headers=ADMIN)

    body = json_of(response)
    assert body["count"] == 1
    assert body["refund_reasons"][0]["label"] == "reason 1 - too big"


async def test_q_matches_literally(client: httpx.AsyncClient, two_reasons: list[dict[str, str]]) -> None:
    for q in ("\\", "%", "_big"):
        response = await client.get("/admin/refund-reasons", params={"q": q}, headers=ADMIN)
        assert response.status_code == 200, q
    underscore = json_of(await client.get("/admin/refund-reasons", params={"q": "o_b"}, headers=ADMIN))
    assert [r["code"] for r in underscore["refund_reasons"]] == ["too_big"]


async def test_should_create_a_refund_reason(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/admin/refund-reasons",
        json={"label": "reason test", "code": "reason_test", "description": "test description"},
        headers=ADMIN,
    )

    assert response.status_code == 200
    reason = json_of(response)["refund_reason"]
    assert reason["id"].startswith("refr_")
    assert (reason["label"], reason["code"], reason["description"]) == (
        "reason test",
        "reason_test",
        "test description",
    )


async def test_create_names_what_is_missing(client: httpx.AsyncClient) -> None:
    for body, field in (
        ({"code": "x"}, "label"),
        ({"label": "x"}, "code"),
        ({"label": "", "code": "x"}, "label"),
    ):
        response = await client.post("/admin/refund-reasons", json=body, headers=ADMIN)
        assert response.status_code == 400
        assert field in json_of(response)["message"]


async def test_should_correctly_update_refund_reason(
    client: httpx.AsyncClient, two_reasons: list[dict[str, str]]
) -> None:
    reason = two_reasons[0]

    response = await client.post(
        f"/admin/refund-reasons/{reason['id']}",
        json={"label": "reason test", "code": "reason_test", "description": "test description"},
        headers=ADMIN,
    )

    updated = json_of(response)["refund_reason"]
    assert (updated["id"], updated["label"], updated["code"], updated["description"]) == (
        reason["id"],
        "reason test",
        "reason_test",
        "test description",
    )
    cleared = json_of(
        await client.post(f"/admin/refund-reasons/{reason['id']}", json={"description": None}, headers=ADMIN)
    )["refund_reason"]
    assert cleared["description"] is None and cleared["label"] == "reason test"
    null_label = await client.post(
        f"/admin/refund-reasons/{reason['id']}", json={"label": None}, headers=ADMIN
    )
    assert null_label.status_code == 400


async def test_should_fetch_a_refund_reason(
    client: httpx.AsyncClient, two_reasons: list[dict[str, str]]
) -> None:
    response = await client.get(f"/admin/refund-reasons/{two_reasons[1]['id']}", headers=ADMIN)

    assert json_of(response)["refund_reason"]["id"] == two_reasons[1]["id"]
    assert (await client.get("/admin/refund-reasons/refr_missing", headers=ADMIN)).status_code == 404


async def test_should_remove_refund_reasons(
    client: httpx.AsyncClient, two_reasons: list[dict[str, str]]
) -> None:
    reason = two_reasons[0]

    response = await client.delete(f"/admin/refund-reasons/{reason['id']}", headers=ADMIN)

    assert json_of(response) == {"id": reason["id"], "object": "refund_reason", "deleted": True}
    after = await client.get(f"/admin/refund-reasons/{reason['id']}", headers=ADMIN)
    assert after.status_code == 404
    assert json_of(after)["type"] == "not_found"
    assert (await client.delete(f"/admin/refund-reasons/{reason['id']}", headers=ADMIN)).status_code == 404
    assert json_of(await client.get("/admin/refund-reasons", headers=ADMIN))["count"] == 4


async def test_refund_reasons_need_the_secret_key(
    client: httpx.AsyncClient, two_reasons: list[dict[str, str]]
) -> None:
    reason_path = f"/admin/refund-reasons/{two_reasons[0]['id']}"
    for method, path in [
        ("GET", "/admin/refund-reasons"),
        ("POST", "/admin/refund-reasons"),
        ("GET", reason_path),
        ("POST", reason_path),
        ("DELETE", reason_path),
    ]:
        assert (await client.request(method, path, headers=STORE)).status_code == 401, (method, path)
