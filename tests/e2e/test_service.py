"""What every route shares: API keys, error bodies, limits, JSON numbers, OpenAPI, health."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from e2e.support import ADMIN, json_of
from paymod import PaymentModule
from paymod.config import Settings
from paymod.http import create_app
from paymod.http.errors import UnhandledErrors
from paymod.persistence.api_keys import ApiKeyStore, ApiKeyType
from paymod.persistence.database import Database
from paymod.providers.registry import load_providers
from paymod.services.payment_module import ModuleOptions

UNAUTHORIZED = {"type": "unauthorized", "code": "unauthorized", "message": "Unauthorized"}


async def test_stored_api_keys_authenticate_until_revoked(
    client: httpx.AsyncClient, module: PaymentModule
) -> None:
    keys = ApiKeyStore(module.database)
    secret = await keys.create(ApiKeyType.SECRET, "ops")
    publishable = await keys.create(ApiKeyType.PUBLISHABLE, "shop")
    as_admin = {"Authorization": f"Bearer {secret.token}"}
    as_store = {"x-publishable-api-key": publishable.token}

    assert secret.token.startswith("sk_") and publishable.token.startswith("pk_")
    assert secret.token not in secret.api_key.redacted
    assert (await client.get("/admin/payments", headers=as_admin)).status_code == 200
    assert (await client.get("/store/payment-providers?region_id=r", headers=as_store)).status_code == 200
    # A key only opens its own side.
    assert (
        await client.get("/admin/payments", headers={"Authorization": f"Bearer {publishable.token}"})
    ).status_code == 401
    assert (
        await client.get(
            "/store/payment-providers?region_id=r", headers={"x-publishable-api-key": secret.token}
        )
    ).status_code == 401

    await keys.revoke(secret.api_key.id)

    refused = await client.get("/admin/payments", headers=as_admin)
    assert refused.status_code == 401 and json_of(refused) == UNAUTHORIZED


async def test_without_env_keys_only_stored_keys_work(module: PaymentModule) -> None:
    app = create_app(Settings(config=None, admin_api_key=None, publishable_api_key=None), module=module)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
        assert (await client.get("/admin/payments", headers=ADMIN)).status_code == 401
        assert (await client.get("/admin/payments", headers={"Authorization": "Bearer "})).status_code == 401


async def test_a_body_over_1_mib_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"amount": 1, "currency_code": "usd", "metadata": {"x": "' + b"a" * (1024 * 1024) + b'"}}'

    response = await client.post(
        "/admin/payment-collections", content=big, headers={**ADMIN, "content-type": "application/json"}
    )

    assert response.status_code == 413
    assert json_of(response)["code"] == "payload_too_large"


async def test_bad_json_is_400_never_500(client: httpx.AsyncClient) -> None:
    bodies = [
        b"{",
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe",
        b'{"amount": NaN, "currency_code": "usd"}',
        b'{"amount": 1, "currency_code": "usd", "metadata": {"a": "\\u0000"}}',
        b'{"amount": 1, "currency_code": "usd", "metadata": {"a": "\\ud800"}}',
        b'{"amount": 1, "currency_code": "usd", "metadata": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}",
        b'{"amount": 1, "currency_code": "usd", "metadata": {"a": 1e999}}',
        b'{"amount": 0.000000000000000000001, "currency_code": "usd"}',
        b'{"amount": ' + b"9" * 5000 + b', "currency_code": "usd"}',
    ]
    for body in bodies:
        response = await client.post(
            "/admin/payment-collections", content=body, headers={**ADMIN, "content-type": "application/json"}
        )
        assert response.status_code == 400, (body[:60], response.text)
        assert json_of(response)["type"] == "invalid_data"
    text = await client.post(
        "/admin/payment-collections", content=b"amount=1", headers={**ADMIN, "content-type": "text/plain"}
    )
    assert text.status_code == 400


async def test_unsafe_text_in_paths_and_queries_is_400(client: httpx.AsyncClient) -> None:
    for path in ("/admin/payments/pay_%00x", "/admin/payments?id=a%00b", "/admin/refund-reasons?q=%00"):
        response = await client.get(path, headers=ADMIN)
        assert response.status_code == 400, path


async def test_unknown_routes_and_methods_answer_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/admin/nothing-here", headers=ADMIN)
    wrong_method = await client.put("/admin/payments", headers=ADMIN)

    assert missing.status_code == 404 and json_of(missing)["code"] == "route_not_found"
    assert wrong_method.status_code == 405 and json_of(wrong_method)["code"] == "method_not_allowed"


async def test_amounts_are_json_numbers_that_round_trip_exactly(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/admin/payment-collections",
        content=b'{"amount": 12345678901234.56789012345, "currency_code": "usd"}',
        headers={**ADMIN, "content-type": "application/json"},
    )

    assert b'"amount":12345678901234.56789012345' in response.content
    assert json_of(response)["payment_collection"]["raw_amount"]["value"] == "12345678901234.56789012345"


async def test_health_says_the_process_is_alive(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    assert json_of(response) == {"status": "ok"}


@pytest.mark.parametrize(
    "unreachable", ["sqlite:////nonexistent/directory/paymod.db", "postgresql://postgres@127.0.0.1:1/paymod"]
)
async def test_readiness_is_503_when_the_database_is_unreachable(unreachable: str) -> None:
    module = PaymentModule(Database(unreachable), load_providers([]), ModuleOptions())
    app = create_app(Settings(config=None), module=module)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
            alive = await client.get("/health")
            response = await client.get("/health/ready")
    finally:
        await module.close()

    assert alive.status_code == 200  # liveness does not depend on the database
    assert response.status_code == 503
    database = json_of(response)["checks"]["database"]
    assert database == {"status": "failing", "message": "the database is unreachable"}


async def test_openapi_describes_every_route(client: httpx.AsyncClient, app: FastAPI) -> None:
    schema = json_of(await client.get("/openapi.json"))
    docs = await client.get("/docs")

    operations = {
        (method.upper(), path): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    expected = {
        ("POST", "/admin/payment-collections"),
        ("GET", "/admin/payment-collections"),
        ("GET", "/admin/payment-collections/{id}"),
        ("POST", "/admin/payment-collections/{id}"),
        ("DELETE", "/admin/payment-collections/{id}"),
        ("POST", "/admin/payment-collections/{id}/payment-sessions"),
        ("POST", "/admin/payment-collections/{id}/mark-as-paid"),
        ("GET", "/admin/payments"),
        ("GET", "/admin/payments/{id}"),
        ("POST", "/admin/payments/{id}/capture"),
        ("POST", "/admin/payments/{id}/refund"),
        ("POST", "/admin/payments/{id}/cancel"),
        ("GET", "/admin/payments/payment-providers"),
        ("GET", "/admin/refund-reasons"),
        ("POST", "/admin/refund-reasons"),
        ("GET", "/admin/refund-reasons/{id}"),
        ("POST", "/admin/refund-reasons/{id}"),
        ("DELETE", "/admin/refund-reasons/{id}"),
        ("GET", "/admin/regions/{id}/payment-providers"),
        ("POST", "/admin/regions/{id}/payment-providers"),
        ("GET", "/admin/account-holders"),
        ("POST", "/admin/account-holders"),
        ("GET", "/admin/account-holders/{id}"),
        ("POST", "/admin/account-holders/{id}"),
        ("DELETE", "/admin/account-holders/{id}"),
        ("GET", "/admin/account-holders/{id}/payment-methods"),
        ("POST", "/admin/account-holders/{id}/payment-methods"),
        ("DELETE", "/admin/account-holders/{id}/payment-methods/{method_id}"),
        ("GET", "/admin/webhook-events"),
        ("POST", "/admin/webhook-events/{id}/replay"),
        ("GET", "/admin/webhook-endpoints"),
        ("POST", "/admin/webhook-endpoints"),
        ("DELETE", "/admin/webhook-endpoints/{id}"),
        ("GET", "/store/payment-providers"),
        ("GET", "/store/payment-collections/{id}"),
        ("POST", "/store/payment-collections/{id}/payment-sessions"),
        ("POST", "/store/payment-collections/{id}/authorize"),
        ("GET", "/store/account-holders/{id}/payment-methods"),
        ("POST", "/store/account-holders/{id}/payment-methods"),
        ("DELETE", "/store/account-holders/{id}/payment-methods/{method_id}"),
        ("POST", "/admin/account-holders/{id}/ephemeral-keys"),
        ("GET", "/admin/disputes"),
        ("GET", "/admin/disputes/{id}"),
        ("POST", "/admin/disputes/{id}/evidence"),
        ("POST", "/admin/disputes/{id}/accept"),
        ("POST", "/hooks/payment/{provider}"),
        ("GET", "/health"),
        ("GET", "/health/ready"),
    }
    assert set(operations) == expected
    assert docs.status_code == 200
    for (method, path), operation in operations.items():
        assert "422" not in operation["responses"], (method, path)
        if path.startswith(("/admin", "/store")):
            assert "401" in operation["responses"], (method, path)
            assert operation["security"], (method, path)
        if method == "POST":
            assert any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])), path
    authorize = operations[("POST", "/store/payment-collections/{id}/authorize")]
    assert "402" in authorize["responses"]
    collection = schema["components"]["schemas"]["PaymentCollection"]
    assert collection["properties"]["amount"]["anyOf"][0] == {"type": "number"}
    schemes = schema["components"]["securitySchemes"]
    assert schemes["secret_api_key"]["scheme"] == "bearer"
    assert schemes["publishable_api_key"]["name"] == "x-publishable-api-key"


async def test_an_unexpected_exception_is_medusas_500_body_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    app = UnhandledErrors(broken)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
        response = await client.get("/anything")

    assert response.status_code == 500
    assert json_of(response) == {
        "type": "unknown_error",
        "code": "unknown_error",
        "message": "An unknown error occurred.",
    }
    assert "boom" in caplog.text
