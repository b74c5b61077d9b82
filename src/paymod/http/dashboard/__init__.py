"""The operator's dashboard, served at `/dashboard` by `paymod serve`, and `/docs` without a CDN.

Server-rendered (Jinja2) pages with a little plain JavaScript for comfort (local times, no double
clicks); everything works without it. Templates, CSS, JS and Swagger UI's assets ship in the wheel.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

from paymod.http.dashboard.routes import (
    PREFIX,
    SECURITY_HEADERS,
    CsrfRejected,
    SignInRequired,
    dashboard,
    render,
)

STATIC = Path(__file__).with_name("static")
#: Swagger UI's JS and CSS as the fastapi-offline package ships them (a PyPI dependency).
SWAGGER_ASSETS = Path(fastapi_offline.__file__).with_name("static")
SWAGGER_PREFIX = "/docs-assets"


def mount_dashboard(app: FastAPI) -> None:
    app.include_router(dashboard)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="dashboard-static")
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(CsrfRejected, _csrf_rejected)
    _serve_docs_offline(app)


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    query = "" if exc.next_path == PREFIX else f"?next={quote(exc.next_path, safe='/')}"
    return RedirectResponse(f"{PREFIX}/sign-in{query}", status_code=303, headers=SECURITY_HEADERS)


async def _csrf_rejected(request: Request, exc: Exception) -> Response:
    return render(request, "forbidden.html", None, status=403)


def _serve_docs_offline(app: FastAPI) -> None:
    """FastAPI's `/docs` loads Swagger UI from a CDN (blank offline); these routes serve it from the
    package instead, and `/redoc` (CDN only) goes to `/docs`."""
    replaced = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    app.router.routes[:] = [r for r in app.router.routes if not (isinstance(r, Route) and r.path in replaced)]
    app.mount(SWAGGER_PREFIX, StaticFiles(directory=SWAGGER_ASSETS), name="docs-assets")
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_redirect}",
            swagger_js_url=f"{root}{SWAGGER_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{SWAGGER_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{root}{SWAGGER_PREFIX}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def oauth2_redirect_page(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> RedirectResponse:
        return RedirectResponse("/docs", status_code=307)

    app.add_route("/docs", docs, include_in_schema=False)
    app.add_route(oauth2_redirect, oauth2_redirect_page, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)


__all__ = ["mount_dashboard"]
