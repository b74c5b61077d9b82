"""Errors to HTTP responses: the only place HTTP status codes live.

Every error body is `{"type", "code", "message"}`. Statuses follow Medusa's error handler (reference
section 0), except that a declined authorization is 402 (Stripe's card error), a provider failure
502 and an unreachable provider 503.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from paymod.domain.errors import (
    ConflictError,
    IdempotencyError,
    InvalidDataError,
    NotAllowedError,
    NotFoundError,
    PaymentAuthorizationError,
    PaymentRequiresMoreError,
    PaymodError,
    ProviderError,
    RetryableProviderError,
    UnexpectedStateError,
)
from paymod.exact_json import UnsafeInput
from paymod.http.execution import mark_not_executed
from paymod.http.json import JSONResponse

log = logging.getLogger("paymod.http")

UNKNOWN_MESSAGE = "An unknown error occurred."
#: Medusa's answer to a request that lost a race (a 409 `conflict`): whatever the service said, the
#: client is told what to do, in HTTP's words.
CONFLICT_MESSAGE = (
    "The request conflicted with another request. "
    "You may retry the request with the provided Idempotency-Key."
)
OK = 200


class UnauthorizedError(PaymodError):
    """A request without a valid API key for its route (401)."""

    type = "unauthorized"


class PayloadTooLargeError(InvalidDataError):
    """A request body over the size limit (413)."""


class ServiceUnavailableError(PaymodError):
    """The service cannot answer now (its database or a provider is unreachable): 503."""

    type = "unavailable"


# Looked up along the exception's MRO, so a subclass inherits its base's status.
STATUS: Mapping[type[PaymodError], int] = {
    PaymodError: 500,
    InvalidDataError: 400,
    NotAllowedError: 400,
    IdempotencyError: 400,
    PaymentRequiresMoreError: 400,
    UnauthorizedError: 401,
    PaymentAuthorizationError: 402,
    NotFoundError: 404,
    ConflictError: 409,
    PayloadTooLargeError: 413,
    UnexpectedStateError: 500,
    ProviderError: 502,
    RetryableProviderError: 503,
    ServiceUnavailableError: 503,
}

#: Answers that say "retry with the same Idempotency-Key": never stored as the key's response.
RETRY_WITH_SAME_KEY = frozenset({STATUS[ConflictError], STATUS[RetryableProviderError]})


def status_of(error: PaymodError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


class ErrorBody(BaseModel):
    """Every error answer."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(examples=["not_found"])
    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["Payment with id: pay_123 was not found"])


_DESCRIPTIONS = {
    400: "Invalid data, a state that does not allow the operation, or an Idempotency-Key reused "
    "with other parameters",
    401: "Missing or wrong API key",
    402: "The provider declined the authorization",
    404: "Unknown id",
    409: "A concurrent request (or one with the same Idempotency-Key) is in flight: retry with the same key",
    413: "Request body over 1 MiB",
    500: "Unexpected error",
    502: "The payment provider failed",
    503: "The payment provider is unreachable: retry with the same Idempotency-Key",
}


def error_responses(statuses: Iterable[int]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses."""
    return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in sorted(set(statuses))}


def body_of(error: PaymodError) -> dict[str, str]:
    status = status_of(error)
    if isinstance(error, ConflictError) and error.code == ConflictError.type:
        return {"type": error.type, "code": error.code, "message": CONFLICT_MESSAGE}
    if status == 500 and not isinstance(error, UnexpectedStateError):
        return {"type": "unknown_error", "code": "unknown_error", "message": UNKNOWN_MESSAGE}
    return {"type": error.type, "code": error.code, "message": error.message}


def error_response(error: PaymodError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    status = status_of(error)
    extra = dict(headers or {})
    if status in RETRY_WITH_SAME_KEY:
        extra.setdefault("Retry-After", "1")
    return JSONResponse(body_of(error), status_code=status, headers=extra)


def unknown_error_response() -> JSONResponse:
    return error_response(PaymodError(UNKNOWN_MESSAGE))


def _field(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        return ".".join(parts[1:]) or "body"
    if len(parts) >= 2 and parts[0] in ("query", "path", "header"):
        return f"{parts[0]} parameter {'.'.join(parts[1:])}"
    return ".".join(parts)


def validation_message(errors: Iterable[Mapping[str, Any]]) -> str:
    messages = []
    for error in list(errors)[:5]:
        message = str(error.get("msg", "Invalid value"))
        if error.get("type") == "json_invalid":
            detail = (error.get("ctx") or {}).get("error")
            messages.append(f"body: invalid JSON ({detail})" if detail else "body: invalid JSON")
        else:
            messages.append(f"{_field(error.get('loc', ()))}: {message}")
    return "; ".join(messages) or "Invalid request"


async def _paymod_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PaymodError)
    if status_of(exc) >= 500:
        log.error("%s %s failed: %r", request.method, request.url.path, exc, exc_info=exc)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # Stripe saves nothing for a request that failed validation: it may be fixed and retried.
    mark_not_executed(request.scope)
    return error_response(InvalidDataError(validation_message(exc.errors())))


async def _unsafe_input(request: Request, exc: Exception) -> Response:
    return error_response(InvalidDataError(str(exc)))


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    error: PaymodError
    if exc.status_code == 404:
        error = NotFoundError(f"Cannot {request.method} {request.url.path}", code="route_not_found")
    elif exc.status_code == 405:
        error = NotAllowedError(f"Cannot {request.method} {request.url.path}", code="method_not_allowed")
    elif exc.status_code == 413:
        error = PayloadTooLargeError(str(exc.detail), code="payload_too_large")
    elif exc.status_code < 500:
        error = InvalidDataError(str(exc.detail))
    else:
        error = PaymodError(str(exc.detail))
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    response = error_response(error, headers=headers)
    if exc.status_code == 405:
        # The method is wrong, not the data; keep the status RFC 9110 asks for and its Allow header.
        response.status_code = 405
    return response


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette's 405 names only the first route that
    matched the path, while a path such as `/admin/refund-reasons` has a GET route and a POST one."""
    methods: set[str] = set()
    for route in _routes(request.app.router.routes):
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] is not Match.NONE:
            methods.update(route_methods)
    return sorted(methods)


def _routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes of the app and of the routers it includes (FastAPI keeps an included router whole;
    paymod's routers carry their prefix themselves, so their routes' paths are complete)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PaymodError, _paymod_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(UnsafeInput, _unsafe_input)
    app.add_exception_handler(StarletteHTTPException, _http_exception)


class UnhandledErrors:
    """Turns an exception no handler took into Medusa's 500 body, inside the Idempotency-Key layer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if started:
                raise
            await unknown_error_response()(scope, receive, send)


def payload_too_large() -> PayloadTooLargeError:
    return PayloadTooLargeError("The request body is larger than 1 MiB.", code="payload_too_large")


__all__ = [
    "CONFLICT_MESSAGE",
    "OK",
    "RETRY_WITH_SAME_KEY",
    "STATUS",
    "ErrorBody",
    "IdempotencyError",
    "PayloadTooLargeError",
    "ServiceUnavailableError",
    "UnauthorizedError",
    "UnhandledErrors",
    "error_response",
    "error_responses",
    "install_error_handlers",
    "payload_too_large",
    "status_of",
    "validation_message",
]
