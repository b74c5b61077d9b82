"""`paymod demo`: a whole payment flow through the HTTP API, against a server on a free loopback port."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import uvicorn

from paymod import bootstrap
from paymod.config import ProviderSettings, Settings
from paymod.exact_json import dumps
from paymod.http import create_app
from paymod.services.access import ApiKeyType, api_key_store

TESTING_PROVIDER = ProviderSettings(resolve="paymod.providers.testing", id="default")
REGION = "reg_demo"
STARTUP_TIMEOUT_SECONDS = 30.0


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _summary(body: dict[str, Any]) -> str:
    parts = []
    collection = body.get("payment_collection")
    if collection:
        amounts = [
            f"{name} {collection[f'{name}_amount']}"
            for name in ("authorized", "captured", "refunded")
            if collection.get(f"{name}_amount") is not None
        ]
        parts.append(" ".join([f"collection {collection['status']}", *amounts]))
    payment = body.get("payment")
    if payment:
        captured = sum(c["amount"] for c in payment.get("captures") or [])
        refunded = sum(r["amount"] for r in payment.get("refunds") or [])
        parts.append(f"payment captured {captured} refunded {refunded}")
    if body.get("action_required"):
        parts.append("action required")
    if "message" in body:
        parts.append(f"{body['type']}: {body['message']}")
    return "; ".join(parts)


async def run_demo(settings: Settings, echo: Callable[[str], object]) -> None:
    providers = list(settings.providers)
    if not any(p.resolve == TESTING_PROVIDER.resolve and p.id == TESTING_PROVIDER.id for p in providers):
        providers.append(TESTING_PROVIDER)
    settings = settings.model_copy(update={"providers": providers})

    await bootstrap.migrate(settings)
    async with bootstrap.database(settings) as database:
        keys = api_key_store(database)
        secret = await keys.create(ApiKeyType.SECRET, "paymod demo")
        publishable = await keys.create(ApiKeyType.PUBLISHABLE, "paymod demo")
    echo(f"database: {settings.database_url}")
    echo(f"API keys: {secret.api_key.redacted} (secret), {publishable.api_key.redacted} (publishable)")

    sock = _free_socket()
    host, port = sock.getsockname()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, migrate=False), log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
            while not server.started:
                if serving.done():
                    serving.result()
                    raise RuntimeError("the demo server stopped while starting")
                await asyncio.sleep(0.05)
        base_url = f"http://{host}:{port}"
        echo(f"server:   {base_url} (docs at {base_url}/docs)\n")
        admin = {"Authorization": f"Bearer {secret.token}"}
        store = {"x-publishable-api-key": publishable.token}
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

            async def call(
                method: str, path: str, headers: dict[str, str], body: Any = None, key: str = ""
            ) -> Any:
                extra = {"Idempotency-Key": key} if key else {}
                response = await client.request(
                    method,
                    path,
                    headers={**headers, **extra, "Content-Type": "application/json"},
                    content=dumps(body) if body is not None else None,
                )
                replayed = " (replayed)" if response.headers.get("idempotent-replayed") == "true" else ""
                data = response.json()
                echo(f"{method:<4} {path} -> {response.status_code}{replayed}  {_summary(data)}")
                return data

            await call(
                "POST", f"/admin/regions/{REGION}/payment-providers", admin, {"add": ["pp_testing_default"]}
            )
            providers_page = await call("GET", f"/store/payment-providers?region_id={REGION}", store)
            names = ", ".join(p["id"] for p in providers_page["payment_providers"])
            echo(f"     providers in {REGION}: {names}")
            created = await call(
                "POST", "/admin/payment-collections", admin, {"amount": "50.00", "currency_code": "usd"}
            )
            collection = created["payment_collection"]["id"]
            sessions = f"/store/payment-collections/{collection}/payment-sessions"
            authorize = f"/store/payment-collections/{collection}/authorize"
            await call(
                "POST",
                sessions,
                store,
                {"provider_id": "pp_testing_default", "data": {"scenario": "decline"}},
            )
            await call("POST", authorize, store, {}, key=str(uuid.uuid4()))
            echo("     the card was declined: the shopper tries another one")
            await call("POST", sessions, store, {"provider_id": "pp_testing_default"})
            checkout = str(uuid.uuid4())
            authorized = await call("POST", authorize, store, {}, key=checkout)
            await call("POST", authorize, store, {}, key=checkout)
            payment = authorized["payment"]["id"]
            await call(
                "POST", f"/admin/payments/{payment}/capture", admin, {"amount": 30}, key=str(uuid.uuid4())
            )
            await call("POST", f"/admin/payments/{payment}/capture", admin, {}, key=str(uuid.uuid4()))
            reasons = await call("GET", "/admin/refund-reasons?q=pricing", admin)
            reason = reasons["refund_reasons"][0]
            await call(
                "POST",
                f"/admin/payments/{payment}/refund",
                admin,
                {"amount": "12.50", "refund_reason_id": reason["id"], "note": "wrong price"},
                key=str(uuid.uuid4()),
            )
            await call("GET", f"/admin/payment-collections/{collection}", admin)
        echo("\ndone")
    finally:
        server.should_exit = True
        await serving
        async with bootstrap.database(settings) as database:
            keys = api_key_store(database)
            await keys.revoke(secret.api_key.id)
            await keys.revoke(publishable.api_key.id)
