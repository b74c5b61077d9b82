"""The payment list, a collection's page (its payments and timeline), and capture, refund and cancel."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from paymod.domain.errors import NotFoundError
from paymod.domain.money import AmountError, to_amount
from paymod.http.dashboard import actions
from paymod.http.dashboard.routes.common import Form, SignedIn, dashboard, form_text, render, see_other
from paymod.http.dashboard.sessions import Operator
from paymod.http.state import state_of
from paymod.persistence import dashboard_queries as q


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
    key = form_text(form, actions.FIELD) or actions.mint_key()
    amount_text = form_text(form, "amount")
    amount: Decimal | None = None
    if amount_text:
        try:
            amount = to_amount(amount_text)
        except AmountError as exc:
            return await _collection_page(
                request, operator, payment.payment_collection_id, status=400, errors={payment.id: str(exc)}
            )
    if form_text(form, "confirmed") != "yes":
        reason_id = form_text(form, "refund_reason_id")
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
                    "refund_reason_id": form_text(form, "refund_reason_id") or None,
                    "note": form_text(form, "note") or None,
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
