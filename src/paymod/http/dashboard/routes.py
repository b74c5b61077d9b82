"""The dashboard's pages: server-rendered HTML forms over `PaymentModule` and the stores the HTTP API
uses. Every page needs a signed-in operator; every POST needs the session's CSRF token."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from paymod.domain.errors import NotFoundError, PaymodError
from paymod.domain.money import AmountError, to_amount
from paymod.http.dashboard import actions
from paymod.http.dashboard.sessions import (
    COOKIE,
    SIGN_IN_COOKIE,
    TTL,
    DashboardSessions,
    Operator,
    same_token,
)
from paymod.http.dashboard.views import locale_of, templates, volume_chart
from paymod.http.errors import status_of
from paymod.http.state import state_of
from paymod.persistence import dashboard_queries as q
from paymod.persistence.processes import STALE_AFTER
from paymod.webhooks import inbox, outbox

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
    if not same_token(_text(form, "csrf_token"), operator.csrf_token):
        raise CsrfRejected()
    return form


Form = Annotated[FormData, Depends(checked_form)]


def _text(form: FormData, name: str) -> str:
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


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


# -- sign-in ------------------------------------------------------------------------------------
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
    if not expected or not same_token(_text(form, "csrf_token"), expected):
        raise CsrfRejected()
    next_path = safe_next(_text(form, "next"))
    opened = await sessions_of(request).sign_in(_text(form, "api_key"))
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


# -- overview -----------------------------------------------------------------------------------
@dashboard.get("", response_class=HTMLResponse)
async def overview(request: Request, operator: SignedIn) -> Response:
    state = state_of(request)
    figures = await q.overview(state.module.database)
    locale = locale_of(request)
    charts = [
        (
            currency,
            volume_chart(currency, figures.days, figures.volume[currency], locale),
            {
                name: sum((getattr(v, name) for v in figures.volume[currency].values()), Decimal(0))
                for name in ("authorized", "captured", "refunded")
            },
        )
        for currency in sorted(figures.volume)
    ]
    return render(
        request,
        "overview.html",
        operator,
        page="overview",
        figures=figures,
        charts=charts,
        stale_after=STALE_AFTER,
        now=datetime.now(tz=ZoneInfo("UTC")),
    )


# -- payments -----------------------------------------------------------------------------------
def _day_start(value: str, zone: ZoneInfo) -> datetime | None:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=zone) if value else None
    except ValueError:
        return None


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dashboard.get("/payments", response_class=HTMLResponse)
async def payments(request: Request, operator: SignedIn) -> Response:
    state = state_of(request)
    params = request.query_params
    zone = _zone(params.get("tz"))
    status_text = params.get("status", "")
    order_text = params.get("order", q.PaymentOrder.NEWEST.value)
    until = _day_start(params.get("to", ""), zone)
    filters = q.PaymentFilters(
        status=q.PaymentStatus(status_text) if status_text in set(q.PaymentStatus) else None,
        provider_id=params.get("provider") or None,
        currency_code=params.get("currency") or None,
        created_from=_day_start(params.get("from", ""), zone),
        created_before=until + timedelta(days=1) if until else None,
        q=params.get("q") or None,
    )
    order = q.PaymentOrder(order_text) if order_text in set(q.PaymentOrder) else q.PaymentOrder.NEWEST
    page = await q.list_payments(
        state.module.database, filters, order=order, after=params.get("after"), before=params.get("before")
    )
    currencies, providers = await q.payment_currencies_and_providers(state.module.database)
    kept = {k: v for k, v in params.items() if k not in ("after", "before") and v}
    return render(
        request,
        "payments.html",
        operator,
        page="payments",
        rows=page.rows,
        filters=params,
        statuses=list(q.PaymentStatus),
        orders=list(q.PaymentOrder),
        currencies=currencies,
        providers=providers,
        next_url=f"?{urlencode({**kept, 'after': page.after})}" if page.after else None,
        previous_url=f"?{urlencode({**kept, 'before': page.before})}" if page.before else None,
        first_url=f"?{urlencode(kept)}",
    )


@dashboard.get("/payments/{id}")
async def payment(request: Request, id: str, operator: SignedIn) -> Response:
    try:
        found = await state_of(request).module.retrieve_payment(id)
    except NotFoundError:
        return render(request, "not_found.html", operator, status=404, what="payment", id=id)
    return see_other(f"/collections/{found.payment_collection_id}", payment=found.id)


COLLECTION_RELATIONS = {
    "relations": [
        "payment_sessions",
        "payments",
        "payments.captures",
        "payments.refunds",
        "payments.refunds.refund_reason",
    ]
}


async def _collection_page(
    request: Request, operator: Operator, id: str, *, status: int = 200, errors: dict[str, str] | None = None
) -> Response:
    state = state_of(request)
    module = state.module
    try:
        collection = await module.retrieve_payment_collection(id, COLLECTION_RELATIONS)
    except NotFoundError:
        return render(request, "not_found.html", operator, status=404, what="payment collection", id=id)
    timeline = await q.collection_timeline(module.database, id)
    reasons = await module.list_refund_reasons({}, {"order": {"label": "ASC"}})
    payments = []
    for p in collection.payments or []:
        captured = sum((c.amount for c in p.captures or []), Decimal(0))
        refunded = sum((r.amount for r in p.refunds or []), Decimal(0))
        payments.append(
            {
                "payment": p,
                "captured": captured,
                "refunded": refunded,
                "capturable": Decimal(0) if p.canceled_at or p.captured_at else p.amount - captured,
                "refundable": captured - refunded,
                "status": q.payment_status(p.canceled_at, p.captured_at, captured, refunded),
                "keys": {name: actions.mint_key() for name in ("capture", "refund", "cancel")},
            }
        )
    return render(
        request,
        "collection.html",
        operator,
        status=status,
        page="payments",
        collection=collection,
        payments=payments,
        timeline=timeline,
        reasons=reasons,
        errors=errors or {},
        focus=request.query_params.get("payment"),
    )


@dashboard.get("/collections/{id}", response_class=HTMLResponse)
async def collection(request: Request, id: str, operator: SignedIn) -> Response:
    return await _collection_page(request, operator, id)


ACTIONS = ("capture", "refund", "cancel")


@dashboard.post("/payments/{id}/{action}", response_class=HTMLResponse)
async def act(request: Request, id: str, action: str, operator: SignedIn, form: Form) -> Response:
    """Capture, refund or cancel: a confirmation page first, then the action, run once per form."""
    state = state_of(request)
    module = state.module
    if action not in ACTIONS:
        return render(request, "not_found.html", operator, status=404, what="action", id=action)
    try:
        payment = await module.retrieve_payment(id)
    except NotFoundError:
        return render(request, "not_found.html", operator, status=404, what="payment", id=id)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    key = _text(form, actions.FIELD) or actions.mint_key()
    amount_text = _text(form, "amount")
    amount: Decimal | None = None
    if amount_text:
        try:
            amount = to_amount(amount_text)
        except AmountError as exc:
            return await _collection_page(
                request, operator, payment.payment_collection_id, status=400, errors={payment.id: str(exc)}
            )
    if _text(form, "confirmed") != "yes":
        reason_id = _text(form, "refund_reason_id")
        reason = None
        if reason_id:
            reasons = await module.list_refund_reasons({"id": [reason_id]})
            reason = reasons[0] if reasons else None
        return render(
            request,
            "confirm.html",
            operator,
            page="payments",
            payment=payment,
            action=action,
            amount=amount,
            values={**values, actions.FIELD: key},
            reason=reason,
        )
    flow = actions.flow_key(operator.api_key_id, key)
    by = f"dashboard:{operator.api_key_id}"

    async def run() -> None:
        if action == "capture":
            await module.capture_payment(
                {"payment_id": id, "amount": amount, "captured_by": by, "idempotency_key": flow}
            )
        elif action == "refund":
            await module.refund_payment(
                {
                    "payment_id": id,
                    "amount": amount,
                    "refund_reason_id": _text(form, "refund_reason_id") or None,
                    "note": _text(form, "note") or None,
                    "created_by": by,
                    "idempotency_key": flow,
                }
            )
        else:
            await module.cancel_payment(id, idempotency_key=flow)

    result = await actions.run_once(
        state.idempotency,
        api_key_id=operator.api_key_id,
        key=key,
        path=request.url.path,
        form=values,
        action=run,
    )
    if result.error is not None:
        return await _collection_page(
            request,
            operator,
            payment.payment_collection_id,
            status=result.status,
            errors={payment.id: result.error},
        )
    notice = (
        "replayed"
        if result.replayed
        else {"capture": "captured", "refund": "refunded"}.get(action, "canceled")
    )
    return see_other(f"/collections/{payment.payment_collection_id}", notice=notice, payment=payment.id)


# -- webhooks -----------------------------------------------------------------------------------
@dashboard.get("/webhooks", response_class=HTMLResponse)
async def webhook_events(request: Request, operator: SignedIn) -> Response:
    module = state_of(request).module
    status = request.query_params.get("status") or None
    status = status if status in ("pending", "processed", "ignored", "failed") else None
    try:
        offset = max(int(request.query_params.get("offset", "0")), 0)
    except ValueError:
        offset = 0
    limit = 50
    events = await inbox.list_webhook_events(module, status=status, limit=limit + 1, offset=offset)
    return render(
        request,
        "webhooks.html",
        operator,
        page="webhooks",
        events=events[:limit],
        event_status=status,
        next_offset=offset + limit if len(events) > limit else None,
        offset=offset,
    )


@dashboard.post("/webhooks/{id}/replay")
async def replay_webhook_event(request: Request, id: str, operator: SignedIn, form: Form) -> Response:
    state = state_of(request)
    try:
        await inbox.replay_webhook_event(state.module, id)
    except NotFoundError:
        return render(request, "not_found.html", operator, status=404, what="webhook event", id=id)
    if state.worker is not None:
        state.worker.wake()
    return see_other("/webhooks", notice="replayed_webhook")


@dashboard.get("/endpoints", response_class=HTMLResponse)
async def endpoints(request: Request, operator: SignedIn) -> Response:
    return await _endpoints_page(request, operator)


async def _endpoints_page(
    request: Request,
    operator: Operator,
    *,
    created: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    module = state_of(request).module
    rows = await outbox.list_webhook_endpoints(module)
    deliveries = await q.recent_deliveries(module.database, [r["id"] for r in rows])
    documents = [outbox.webhook_endpoint_document(r) for r in rows]
    return render(
        request,
        "endpoints.html",
        operator,
        status=status,
        page="endpoints",
        endpoints=documents,
        deliveries=deliveries,
        created=created,
        error=error,
    )


@dashboard.post("/endpoints", response_class=HTMLResponse)
async def create_endpoint(request: Request, operator: SignedIn, form: Form) -> Response:
    events = [e.strip() for e in _text(form, "events").replace(",", " ").split() if e.strip()] or ["*"]
    try:
        row = await outbox.create_webhook_endpoint(
            state_of(request).module,
            _text(form, "url"),
            events=events,
            description=_text(form, "description") or None,
        )
    except PaymodError as exc:
        return await _endpoints_page(request, operator, error=exc.message, status=status_of(exc))
    # The secret is shown on this answer only (not stored in a page anyone can reload).
    return await _endpoints_page(
        request, operator, created=outbox.webhook_endpoint_document(row, secret=True)
    )


@dashboard.post("/endpoints/{id}/delete")
async def delete_endpoint(request: Request, id: str, operator: SignedIn, form: Form) -> Response:
    try:
        await outbox.delete_webhook_endpoint(state_of(request).module, id)
    except NotFoundError:
        return render(request, "not_found.html", operator, status=404, what="webhook endpoint", id=id)
    return see_other("/endpoints", notice="endpoint_deleted")


# -- API keys -----------------------------------------------------------------------------------
@dashboard.get("/api-keys", response_class=HTMLResponse)
async def api_keys(request: Request, operator: SignedIn) -> Response:
    return await _api_keys_page(request, operator)


async def _api_keys_page(
    request: Request, operator: Operator, *, created: Any = None, error: str | None = None, status: int = 200
) -> Response:
    keys = await state_of(request).api_keys.list()
    keys.sort(key=lambda k: k.created_at, reverse=True)
    return render(
        request,
        "api_keys.html",
        operator,
        status=status,
        page="api_keys",
        keys=keys,
        created=created,
        error=error,
    )


@dashboard.post("/api-keys", response_class=HTMLResponse)
async def create_api_key(request: Request, operator: SignedIn, form: Form) -> Response:
    try:
        created = await state_of(request).api_keys.create(_text(form, "type"), _text(form, "title") or None)
    except PaymodError as exc:
        return await _api_keys_page(request, operator, error=exc.message, status=status_of(exc))
    return await _api_keys_page(request, operator, created=created)


@dashboard.post("/api-keys/{id}/revoke")
async def revoke_api_key(request: Request, id: str, operator: SignedIn, form: Form) -> Response:
    state = state_of(request)
    try:
        await state.api_keys.revoke(id)
    except NotFoundError:
        return render(request, "not_found.html", operator, status=404, what="API key", id=id)
    await sessions_of(request).end_sessions_of(id)
    if id == operator.api_key_id:
        return see_other("/sign-in")
    return see_other("/api-keys", notice="key_revoked")


# -- refund reasons and regions -----------------------------------------------------------------
@dashboard.get("/refund-reasons", response_class=HTMLResponse)
async def refund_reasons(request: Request, operator: SignedIn) -> Response:
    return await _reasons_page(request, operator)


async def _reasons_page(
    request: Request, operator: Operator, *, error: str | None = None, status: int = 200
) -> Response:
    reasons = await state_of(request).module.list_refund_reasons({}, {"order": {"label": "ASC"}})
    return render(
        request,
        "refund_reasons.html",
        operator,
        status=status,
        page="refund_reasons",
        reasons=reasons,
        error=error,
    )


@dashboard.post("/refund-reasons", response_class=HTMLResponse)
async def create_refund_reason(request: Request, operator: SignedIn, form: Form) -> Response:
    values = {
        "label": _text(form, "label"),
        "code": _text(form, "code"),
        "description": _text(form, "description") or None,
    }
    try:
        await state_of(request).module.create_refund_reasons(values)
    except PaymodError as exc:
        return await _reasons_page(request, operator, error=exc.message, status=status_of(exc))
    return see_other("/refund-reasons", notice="reason_created")


@dashboard.post("/refund-reasons/{id}/delete")
async def delete_refund_reason(request: Request, id: str, operator: SignedIn, form: Form) -> Response:
    module = state_of(request).module
    try:
        await module.retrieve_refund_reason(id)
    except NotFoundError:
        return render(request, "not_found.html", operator, status=404, what="refund reason", id=id)
    await module.soft_delete_refund_reasons(id)
    return see_other("/refund-reasons", notice="reason_deleted")


@dashboard.get("/regions", response_class=HTMLResponse)
async def regions(request: Request, operator: SignedIn) -> Response:
    return await _regions_page(request, operator)


async def _regions_page(
    request: Request, operator: Operator, *, error: str | None = None, status: int = 200
) -> Response:
    module = state_of(request).module
    found = await q.regions(module.database)
    providers = await module.list_payment_providers({})
    return render(
        request,
        "regions.html",
        operator,
        status=status,
        page="regions",
        regions=found,
        providers=providers,
        error=error,
    )


@dashboard.post("/regions", response_class=HTMLResponse)
async def link_region(request: Request, operator: SignedIn, form: Form) -> Response:
    region_id, provider_id = _text(form, "region_id"), _text(form, "provider_id")
    if not region_id or not provider_id:
        return await _regions_page(request, operator, error="Give a region id and a provider.", status=400)
    try:
        await state_of(request).module.add_region_payment_providers(region_id, [provider_id])
    except PaymodError as exc:
        return await _regions_page(request, operator, error=exc.message, status=status_of(exc))
    return see_other("/regions", notice="region_updated")


@dashboard.post("/regions/{id}/remove")
async def unlink_region(request: Request, id: str, operator: SignedIn, form: Form) -> Response:
    try:
        await state_of(request).module.remove_region_payment_providers(id, [_text(form, "provider_id")])
    except PaymodError as exc:
        return await _regions_page(request, operator, error=exc.message, status=status_of(exc))
    return see_other("/regions", notice="region_updated")
