"""The overview: volume per currency over the last days, collections by status, and what needs care."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from paymod.http.dashboard.routes.common import SignedIn, dashboard, render
from paymod.http.dashboard.views import locale_of, volume_chart
from paymod.http.state import state_of
from paymod.persistence import dashboard_queries as q
from paymod.persistence.processes import STALE_AFTER


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
