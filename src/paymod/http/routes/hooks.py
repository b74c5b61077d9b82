"""Provider webhooks: verified through the provider before they are acknowledged."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Depends, Request

from paymod.domain.errors import (
    ConflictError,
    InvalidDataError,
    PaymodError,
    ProviderError,
    RetryableProviderError,
)
from paymod.http import errors
from paymod.http import schemas as s
from paymod.http.idempotency import mark_executing
from paymod.http.json import JSONResponse, loads
from paymod.http.routes.common import ModuleDep, idempotency_key, router
from paymod.workflows.payment import process_payment

log = logging.getLogger("paymod.http")

hooks = router("/hooks", "hooks")


@hooks.post(
    "/payment/{provider}",
    response_model=s.WebhookReceived,
    responses=errors.error_responses((400, 404, 409, 413, 503)),
    dependencies=[Depends(idempotency_key)],
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
        }
    },
)
async def receive_payment_webhook(provider: str, request: Request, module: ModuleDep) -> JSONResponse:
    """A provider's event (`{identifier}_{id}` or `pp_...`); no API key: the signature is the auth.

    An event that fails verification gets 400; a verified `authorized` or `captured` event is applied
    to its session's payment before the 200.
    """
    raw = await request.body()
    data: Any
    try:
        data = loads(raw) if raw else {}
    except ValueError:
        data = {}
    try:
        event = await module.get_webhook_action_and_data(
            {
                "provider": provider,
                "payload": {
                    "data": data if isinstance(data, dict) else {},
                    "raw_data": raw,
                    "headers": dict(request.headers),
                },
            }
        )
    except RetryableProviderError:
        raise
    except ProviderError as exc:
        raise InvalidDataError(f"Webhook Error: {exc.message}", code=exc.code) from exc
    mark_executing(request.scope)
    if event.data is not None:
        try:
            await process_payment(
                module, action=event.action, session_id=event.data.session_id, amount=event.data.amount
            )
        except (RetryableProviderError, ConflictError):
            raise  # the provider delivers the event again later
        except PaymodError as exc:
            # Verified but not applicable (e.g. the payment was canceled): retrying will not help.
            log.warning(
                "webhook %s %s for %s not applied: %r", provider, event.action, event.data.session_id, exc
            )
    return JSONResponse({"received": True, "action": event.action})


__all__ = ["hooks"]
