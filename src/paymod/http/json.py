"""The API's JSON response: Decimals as exact numbers (the encoding is `paymod.exact_json`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import JSONResponse as StarletteJSONResponse

from paymod.exact_json import dumps


class JSONResponse(StarletteJSONResponse):
    """A JSON response whose Decimals are exact numbers (a JSONResponse, so OpenAPI shows its model)."""

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, media_type, background)

    def render(self, content: Any) -> bytes:
        return dumps(content)
