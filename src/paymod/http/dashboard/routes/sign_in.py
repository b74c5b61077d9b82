"""Signing in with a secret API key, and out."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from paymod.http.dashboard import actions
from paymod.http.dashboard.routes.common import (
    PREFIX,
    SECURITY_HEADERS,
    CsrfRejected,
    Form,
    SignedIn,
    dashboard,
    form_text,
    render,
    safe_next,
    see_other,
    sessions_of,
)
from paymod.http.dashboard.sessions import COOKIE, SIGN_IN_COOKIE, TTL, same_token


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@dashboard.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, next: str | None = None) -> Response:
    token = request.cookies.get(SIGN_IN_COOKIE) or actions.mint_key()
    response = render(request, "sign_in.html", None, sign_in_csrf=token, next=safe_next(next), error=None)
    _set_sign_in_cookie(request, response, token)
    return response


def _set_sign_in_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        secure=_secure(request),
        samesite="strict",
        path=PREFIX,
    )


@dashboard.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    form = await request.form()
    expected = request.cookies.get(SIGN_IN_COOKIE)
    if not expected or not same_token(form_text(form, "csrf_token"), expected):
        raise CsrfRejected()
    next_path = safe_next(form_text(form, "next"))
    opened = await sessions_of(request).sign_in(form_text(form, "api_key"))
    if opened is None:
        return render(
            request,
            "sign_in.html",
            None,
            status=401,
            sign_in_csrf=expected,
            next=next_path,
            error="That is not a live secret API key.",
        )
    cookie, _ = opened
    redirect = RedirectResponse(next_path, status_code=303, headers=SECURITY_HEADERS)
    redirect.set_cookie(
        COOKIE,
        cookie,
        max_age=int(TTL.total_seconds()),
        httponly=True,
        secure=_secure(request),
        samesite="strict",
        path=PREFIX,
    )
    redirect.delete_cookie(SIGN_IN_COOKIE, path=PREFIX)
    return redirect


@dashboard.post("/sign-out")
async def sign_out(request: Request, operator: SignedIn, form: Form) -> Response:
    await sessions_of(request).sign_out(operator)
    response = see_other("/sign-in", notice="signed_out")
    response.delete_cookie(COOKIE, path=PREFIX, secure=_secure(request), httponly=True, samesite="strict")
    return response
