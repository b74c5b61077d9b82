"""The ASGI app: `create_app(settings)`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from paymod import __version__, bootstrap
from paymod.config import Settings, load_settings
from paymod.http.dashboard import mount_dashboard
from paymod.http.errors import UnhandledErrors, install_error_handlers
from paymod.http.idempotency import IdempotencyKeys
from paymod.http.json import JSONResponse
from paymod.http.limits import BodyLimit
from paymod.http.routes import (
    account_holders,
    disputes,
    payment_collections,
    payments,
    refund_reasons,
    regions,
)
from paymod.http.routes.health import health
from paymod.http.routes.hooks import hooks
from paymod.http.routes.store import store
from paymod.http.routes.webhooks import admin_webhooks
from paymod.http.schemas import describe_request_strings
from paymod.http.state import AppState
from paymod.observability.requests import RequestObservation
from paymod.services.payment_module import PaymentModule
from paymod.webhooks.worker import stop_worker

log = logging.getLogger("paymod.http")

PRUNE_EVERY_SECONDS = 3600.0

DESCRIPTION = """\
paymod's payment API: Medusa's payment routes for a standalone payment module.

* **admin** routes need a secret API key: `Authorization: Bearer sk_...` (or `Basic base64(sk_...:)`,
  as Medusa's JS SDK sends it)
* **store** routes need a publishable API key: `x-publishable-api-key: pk_...`
* **hooks** need none: the provider's signature is verified before the event is acknowledged.

Every POST takes an `Idempotency-Key` (Stripe's rules). Amounts are exact JSON numbers (strings are
accepted on input). Errors are `{"type", "code", "message"}`.
"""


async def _prune_forever(state: AppState) -> None:
    while True:
        try:
            pruned = await state.idempotency.prune()
            if pruned:
                log.info("pruned %d idempotency keys older than 24 h", pruned)
            expired = await state.ephemeral_keys.prune()
            if expired:
                log.info("pruned %d expired ephemeral keys", expired)
        except Exception:
            log.warning("pruning idempotency and ephemeral keys failed", exc_info=True)
        await asyncio.sleep(PRUNE_EVERY_SECONDS)


def create_app(
    settings: Settings | None = None, *, module: PaymentModule | None = None, migrate: bool = True
) -> FastAPI:
    """The HTTP service. With `module` the app uses it (and leaves it open); otherwise it connects to
    `settings.database_url` when it starts, migrating first unless `migrate` is false.

    While the app runs (its lifespan), it also runs a worker in the process, unless
    `settings.worker.enabled` is false: stored webhooks are processed and events delivered without
    a second command."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = module is None
        if module is None:
            active = await bootstrap.connect(settings, process_kind="serve", migrate=migrate)
        else:
            active = module
            await bootstrap.link_regions(active, settings)
        try:
            worker = bootstrap.new_worker(settings, active) if settings.worker.enabled else None
            state = bootstrap.components(settings, active, worker)
            app.state.paymod = state
            pruner = asyncio.create_task(_prune_forever(state))
            stop = asyncio.Event()
            running = asyncio.create_task(worker.run(stop)) if worker is not None else None
            try:
                yield
            finally:
                if running is not None:
                    await stop_worker(running, stop, settings.worker.shutdown_grace)
                pruner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pruner
        finally:
            if owned:
                await active.close()

    app = FastAPI(
        title="paymod",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=JSONResponse,
        openapi_tags=[
            {"name": "admin", "description": "Secret API key"},
            {"name": "store", "description": "Publishable API key"},
            {"name": "hooks", "description": "Provider webhooks (signed by the provider)"},
            {"name": "health", "description": "No authentication"},
        ],
    )
    if module is not None:
        app.state.paymod = bootstrap.components(settings, module)
    install_error_handlers(app)
    app.add_middleware(UnhandledErrors)
    app.add_middleware(IdempotencyKeys)
    app.add_middleware(BodyLimit)
    # Outermost: every answer (413s and Idempotency-Key replays too) gets its request id and log line.
    app.add_middleware(RequestObservation)
    # Admin routes by topic, in the order the OpenAPI document lists them.
    for topic in (payment_collections, payments, refund_reasons, regions, account_holders, disputes):
        app.include_router(topic.admin)
    app.include_router(admin_webhooks)
    app.include_router(store)
    app.include_router(hooks)
    app.include_router(health)
    mount_dashboard(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            _drop_fastapi_validation_errors(schema)
            _parameters_are_never_null(schema)
            describe_request_strings(schema)
            _server_limits_apply_everywhere(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _server_limits_apply_everywhere(schema: dict[str, Any]) -> None:
    """Any request may meet the server's limits on its line and headers (`paymod.http.server`)."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    limits = {
        "408": "The request's line and headers did not arrive in time; the connection is closed",
        "431": "The request's line and headers are over the server's limit; the connection is closed",
    }
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                for status, description in limits.items():
                    operation["responses"].setdefault(status, {"description": description, "content": error})


def _parameters_are_never_null(schema: dict[str, Any]) -> None:
    """An optional query or header parameter is absent, never null (a URL cannot say null)."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                described = parameter.get("schema", {})
                branches = described.get("anyOf")
                if not branches:
                    continue
                kept = [b for b in branches if b.get("type") != "null"]
                if len(kept) == 1:
                    described.pop("anyOf")
                    described.update(kept[0])
                else:
                    described["anyOf"] = kept


def _drop_fastapi_validation_errors(schema: dict[str, Any]) -> None:
    """Validation errors are 400 `invalid_data` here, not FastAPI's 422."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
