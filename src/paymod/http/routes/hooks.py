"""Provider webhooks: verified through the provider before they are acknowledged, then stored.

The route only verifies and stores (`paymod.webhooks.inbox.receive_webhook`), so the provider gets
its answer quickly; a worker (in this process unless `[worker] enabled = false`, or `paymod worker`)
applies the event exactly once, under the same locks as the API.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from paymod.domain.errors import InvalidDataError, ProviderError, RetryableProviderError
from paymod.exact_json import loads
from paymod.http import errors
from paymod.http import schemas as s
from paymod.http.execution import mark_executing
from paymod.http.json import JSONResponse
from paymod.http.routes.common import idempotency_key, router
from paymod.http.state import AppState, app_state
from paymod.webhooks.inbox import receive_webhook

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
async def receive_payment_webhook(
    provider: str, request: Request, state: Annotated[AppState, Depends(app_state)]
) -> JSONResponse:
    """A provider's event (`{identifier}_{id}` or `pp_...`); no API key: the signature is the auth.

    An event that fails verification gets 400 and is not stored. A verified event is stored once
    (unique on provider and event id) and answered 200; a worker then applies it. A duplicate
    delivery is answered 200 with `duplicate: true` and is not stored or applied again.
    """
    raw = await request.body()
    data: Any
    try:
        data = loads(raw) if raw else {}
    except ValueError:
        data = {}
    try:
        received = await receive_webhook(
            state.module, provider, raw, request.headers, data if isinstance(data, dict) else {}
        )
    except RetryableProviderError:
        raise  # 503: the provider delivers the event again later
    except ProviderError as exc:
        raise InvalidDataError(f"Webhook Error: {exc.message}", code=exc.code) from exc
    mark_executing(request.scope)
    if not received.duplicate and state.worker is not None:
        state.worker.wake()
    return JSONResponse(
        {
            "received": True,
            "action": received.action,
            "id": received.id,
            "duplicate": received.duplicate,
        }
    )


__all__ = ["hooks"]
