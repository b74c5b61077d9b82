"""How the dashboard shows things: the templates' environment, money, dates, badges and the chart."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency
from fastapi import Request
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from paymod.persistence.dashboard_queries import DailyVolume

DEFAULT_LOCALE = "en_US"
#: Keys whose values never reach the page: provider data can hold client secrets and tokens.
SECRET_MARKERS = ("secret", "password", "token", "api_key", "apikey", "authorization", "signature")

#: Badge colours by status word (collections, payments, sessions, webhook events, deliveries).
BADGE_TONES = {
    "completed": "good",
    "captured": "good",
    "authorized": "info",
    "processed": "good",
    "delivered": "good",
    "partially_captured": "info",
    "partially_authorized": "info",
    "partially_refunded": "warn",
    "refunded": "warn",
    "awaiting": "warn",
    "pending": "warn",
    "requires_more": "warn",
    "pending_authorization": "warn",
    "not_paid": "neutral",
    "ignored": "neutral",
    "canceled": "bad",
    "failed": "bad",
    "error": "bad",
    "revoked": "bad",
    "disabled": "bad",
    "stale": "bad",
    "failing": "warn",
    "enabled": "good",
    "live": "good",
    "alive": "good",
}


def locale_of(request: Request) -> str:
    """The viewer's first language babel knows (Accept-Language), for number and currency formats."""
    header = request.headers.get("accept-language", "")
    for part in header.split(","):
        tag = part.split(";")[0].strip().replace("-", "_")
        if not tag or tag == "*":
            continue
        try:
            return str(Locale.parse(tag))
        except (ValueError, UnknownLocaleError):
            continue
    return DEFAULT_LOCALE


def money(amount: Decimal | str | int | None, currency_code: str, locale: str = DEFAULT_LOCALE) -> str:
    """`$1,234.50`, `¥1,235`, `1.234,50 €` (de): the currency's symbol and precision, from babel."""
    if amount is None:
        return "—"
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    return str(format_currency(value, currency_code.upper(), locale=locale, currency_digits=True))


def when(moment: datetime | None) -> Markup:
    """A `<time>` in UTC, rewritten to the viewer's time zone by the page's script."""
    if moment is None:
        return Markup("—")
    utc = moment.astimezone(UTC)
    return Markup('<time datetime="{}" data-local>{}</time>').format(
        utc.isoformat().replace("+00:00", "Z"), utc.strftime("%Y-%m-%d %H:%M UTC")
    )


def badge(status: str | None) -> Markup:
    word = status or "unknown"
    tone = BADGE_TONES.get(word, "neutral")
    return Markup('<span class="badge badge-{}">{}</span>').format(tone, word.replace("_", " "))


def redact(value: Any) -> Any:
    """Provider data with secret-looking keys blanked (a PaymentIntent's `client_secret`, tokens)."""
    if isinstance(value, Mapping):
        return {
            k: "••••••" if any(m in str(k).lower() for m in SECRET_MARKERS) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def pretty_json(value: Any) -> str:
    return json.dumps(redact(value), indent=2, sort_keys=True, default=str, ensure_ascii=False)


CHART_SERIES = (
    ("authorized", "chart-authorized"),
    ("captured", "chart-captured"),
    ("refunded", "chart-refunded"),
)


def volume_chart(
    currency_code: str, days: Sequence[date], volume: Mapping[date, DailyVolume], locale: str
) -> Markup:
    """A bar chart (inline SVG, drawn here: no script, no CDN) of a currency's daily volume."""
    width, height, top, bottom, left = 640, 180, 12, 22, 4
    slot = (width - left) / max(len(days), 1)
    bar = slot / 4
    peak = max(
        (getattr(volume.get(day, DailyVolume()), name) for day in days for name, _ in CHART_SERIES),
        default=Decimal(0),
    )
    scale = (height - top - bottom) / float(peak) if peak > 0 else 0.0
    parts = [
        Markup(
            '<svg class="chart" viewBox="0 0 {w} {h}" role="img" preserveAspectRatio="none" '
            'aria-label="Daily volume in {c}">'
        ).format(w=width, h=height, c=currency_code.upper()),
        Markup('<line x1="0" y1="{y}" x2="{w}" y2="{y}" class="chart-axis"/>').format(
            y=height - bottom, w=width
        ),
    ]
    for n, day in enumerate(days):
        figures = volume.get(day, DailyVolume())
        for k, (name, css) in enumerate(CHART_SERIES):
            value = getattr(figures, name)
            bar_height = float(value) * scale
            x = left + n * slot + k * bar + bar / 2
            y = height - bottom - bar_height
            label = f"{day.isoformat()} {name}: {money(value, currency_code, locale)}"
            parts.append(
                Markup(
                    '<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" class="{}">'
                    "<title>{}</title></rect>"
                ).format(x, y, bar, bar_height, css, label)
            )
        if n % 7 == 0 or n == len(days) - 1:
            parts.append(
                Markup('<text x="{:.1f}" y="{}" class="chart-label">{}</text>').format(
                    left + n * slot, height - 6, day.strftime("%b %d")
                )
            )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def templates() -> Environment:
    environment = Environment(
        loader=PackageLoader("paymod.http.dashboard", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(when=when, badge=badge, pretty_json=pretty_json, escape=escape)
    environment.globals.update(money=money)
    return environment
