"""What every dashboard page shares: the router, rendering with the security headers, the signed-in
operator and the CSRF-checked form. Every page needs a signed-in operator; every POST needs the
session's CSRF token."""

from __future__ import annotations

import os
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData

from paymod.http.dashboard.sessions import COOKIE, DashboardSessions, Operator, same_token
from paymod.http.dashboard.views import locale_of, templates
from paymod.http.state import state_of

PREFIX = "/dashboard"
dashboard = APIRouter(prefix=PREFIX, include_in_schema=False)
_templates = templates()

#: What a page may say after a redirect (fixed texts: nothing from the URL reaches the page).
NOTICES = {
    "captured": "Captured.",
    "refunded": "Refunded.",
    "canceled": "Payment canceled.",
    "replayed": "That form was already submitted: nothing was done twice.",
    "replayed_webhook": "The event is back in the queue.",
    "signed_out": "You are signed out.",
    "endpoint_deleted": "Endpoint deleted.",
    "key_revoked": "Key revoked: its requests and dashboard sessions are refused from now on.",
    "reason_created": "Refund reason created.",
    "reason_deleted": "Refund reason deleted.",
    "region_updated": "Region updated.",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """Raised by a page whose visitor is not signed in: they are sent to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRejected(Exception):
    """A POST without the session's CSRF token: 403."""


def sessions_of(request: Request) -> DashboardSessions:
    """The app's session store (made on first use: the module is there once the app started)."""
    state = state_of(request)
    holder = request.app.state
    sessions: DashboardSessions | None = getattr(holder, "dashboard_sessions", None)
    if sessions is None or sessions.database is not state.module.database:
        sessions = DashboardSessions(
            state.module.database,
            state.api_keys,
            state.settings.admin_api_key,
            os.environ.get("PAYMOD_DASHBOARD_SECRET"),
        )
        holder.dashboard_sessions = sessions
    return sessions


async def signed_in(request: Request) -> Operator:
    operator = await sessions_of(request).operator(request.cookies.get(COOKIE))
    if operator is None:
        raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return operator


SignedIn = Annotated[Operator, Depends(signed_in)]


async def checked_form(request: Request, operator: SignedIn) -> FormData:
    form = await request.form()
    if not same_token(form_text(form, "csrf_token"), operator.csrf_token):
        raise CsrfRejected()
    return form


Form = Annotated[FormData, Depends(checked_form)]


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def render(
    request: Request, name: str, operator: Operator | None, *, status: int = 200, **context: Any
) -> HTMLResponse:
    locale = locale_of(request)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    html = _templates.get_template(name).render(
        request=request,
        operator=operator,
        csrf_token=operator.csrf_token if operator else "",
        locale=locale,
        notice=notice,
        prefix=PREFIX,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def see_other(path: str, **params: str) -> RedirectResponse:
    target = PREFIX + path + (f"?{urlencode(params)}" if params else "")
    return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)


def safe_next(value: str | None) -> str:
    """Only a path inside the dashboard: a crafted `next` cannot send the operator elsewhere."""
    if value and value.startswith(PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX
