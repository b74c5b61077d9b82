"""The HTTP service (FastAPI): store, admin and hook routes over `PaymentModule`.

`create_app` is imported on first use, so that importing one part (`paymod.http.server` for
`paymod serve`'s uvicorn settings) does not load every route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paymod.http.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from paymod.http.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["create_app"]
