"""The route and router classes every paymod route uses: exact JSON bodies, text the databases can
store, and routers that pass over a request outside their prefix at once."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from paymod.exact_json import UnsafeInput, check_text, loads


class ExactJSONRequest(Request):
    """Parses amounts as Decimal (never float) and refuses what PostgreSQL cannot store."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = loads(body)
            except UnsafeInput as exc:
                raise json.JSONDecodeError(str(exc), body.decode("utf-8", "replace"), 0) from None
            except UnicodeDecodeError as exc:
                raise json.JSONDecodeError(f"not UTF-8: {exc.reason}", "", exc.start) from None
        return self._json


class PaymodRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            for name, value in request.path_params.items():
                check_text(str(value), f"path parameter {name}")
            if request.scope.get("query_string"):  # most POSTs have none: no QueryParams to build
                for name, value in request.query_params.multi_items():
                    check_text(name, "query parameter name")
                    check_text(value, f"query parameter {name}")
            return await handler(ExactJSONRequest(request.scope, request.receive))

        return route


class PaymodRouter(APIRouter):
    """A router that answers "not mine" at once for a path outside its prefix.

    The application asks each included router in turn whether a request is its own, and a router
    answers by matching the path against each of its routes' patterns: a store request went through
    every admin route first (about 0.1 ms per request, twice: once to find the router, once inside
    it)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # The path a route sees is the request's path without the app's root path, so a request
        # path that does not even contain the prefix cannot be this router's.
        if self.prefix and self.prefix not in scope["path"]:
            return Match.NONE, {}
        return super().matches(scope)
