"""One log line and one measurement per HTTP request, and its request id.

`RequestObservation` is the app's outermost middleware: it takes the request id from `X-Request-Id`
(when it is sane) or mints one, makes it current for everything the request runs (log lines, money
flows, the events written), returns it in the response's `X-Request-Id`, and when the response is
sent logs `method route status duration` and observes the latency histogram. Routes are labelled by
their template (`/admin/payments/{id}/capture`), never by the path, so ids cannot grow the metrics.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paymod.observability.context import (
    REQUEST_ID_HEADER,
    new_request_id,
    request_id_bound,
    sane_request_id,
)
from paymod.observability.metrics import HTTP_IN_FLIGHT, HTTP_REQUESTS, UNMATCHED_ROUTE

log = logging.getLogger("paymod.http.requests")

_HEADER = REQUEST_ID_HEADER.lower().encode("ascii")
#: Routes load balancers and Prometheus call every few seconds: logged at debug level only.
PROBES = frozenset({"/health", "/health/ready", "/metrics"})


def route_of(scope: Scope) -> str:
    """The template of the route that handled the request (the router sets it), or `unmatched`."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RouteTemplates:
    """The app's documented path templates, to label a request a middleware answered before the
    router saw it (an Idempotency-Key replay, a 413): read from its OpenAPI document on first use."""

    def __init__(self) -> None:
        self._patterns: list[tuple[re.Pattern[str], str]] | None = None

    def match(self, scope: Scope) -> str:
        if self._patterns is None:
            self._patterns = _templates(scope.get("app"))
        path = str(scope.get("path", ""))
        found = (template for pattern, template in self._patterns if pattern.match(path))
        return next(found, UNMATCHED_ROUTE)


def _templates(app: Any) -> list[tuple[re.Pattern[str], str]]:
    openapi = getattr(app, "openapi", None)
    try:
        paths = openapi().get("paths", {}) if callable(openapi) else {}
    except Exception:  # labels are a convenience: a broken document must not fail requests
        log.warning("no route templates for the request metrics: the OpenAPI document failed", exc_info=True)
        paths = {}
    return [
        (re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"), template)
        for template in paths
    ]


class RequestObservation:
    """ASGI middleware: request id, access log line, request metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.templates = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = sane_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER)) or new_request_id()
        header = (_HEADER, request_id.encode("ascii"))
        status = 500  # unless a response starts: an exception no layer answered

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        started = time.perf_counter()
        HTTP_IN_FLIGHT.inc()
        try:
            with request_id_bound(request_id):
                await self.app(scope, receive, send_with_id)
        finally:
            HTTP_IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            method = str(scope.get("method", ""))
            route = route_of(scope)
            if route == UNMATCHED_ROUTE and status != 404:
                route = self.templates.match(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).observe(elapsed)
            log.log(
                logging.DEBUG if route in PROBES else logging.INFO,
                "%s %s %s",
                method,
                route,
                status,
                extra={
                    "method": method,
                    "route": route,
                    "path": scope.get("path", ""),
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "request_id": request_id,
                },
            )


__all__ = ["PROBES", "RequestObservation", "route_of"]
