"""The provider configuration shared by the PayPal tests."""

from __future__ import annotations

from typing import Any

from fake_paypal import CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID

PROVIDER_ID = "pp_paypal_test"


def paypal_options(api_base: str, **options: Any) -> dict[str, Any]:
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "api_base": api_base,
        "webhook_id": WEBHOOK_ID,
        "timeout": 5,
        **options,
    }


def paypal_config(api_base: str, **options: Any) -> dict[str, Any]:
    """The module's provider configuration for PayPal at `api_base` (`pp_paypal_test`)."""
    return {
        "resolve": "paymod.providers.paypal",
        "id": "test",
        "options": paypal_options(api_base, **options),
    }
