"""Keys and provider configuration shared by the Stripe tests."""

from __future__ import annotations

from typing import Any

API_KEY = "sk_test_paymod_localstripe"
WEBHOOK_SECRET = "whsec_paymod_test_secret"


def stripe_config(api_base: str, **options: Any) -> dict[str, Any]:
    """The module's provider configuration for Stripe at `api_base`."""
    return {
        "resolve": "paymod.providers.stripe",
        "id": "stripe",
        "options": {
            "api_key": API_KEY,
            "api_base": api_base,
            "webhook_secret": WEBHOOK_SECRET,
            "max_network_retries": 0,
            **options,
        },
    }
