"""The Stripe provider's options (snake_case forms of Medusa's), checked once at registration.

Values set through the environment (`PAYMOD_PROVIDERS__<ID>__<OPTION>`, see paymod.config) arrive as
strings, so flags and numbers also accept their string forms ("true", "3"), and lists their
comma-separated form.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import stripe

KNOWN = frozenset(
    {
        "api_key",
        "webhook_secret",
        "capture",
        "automatic_payment_methods",
        "payment_description",
        "payment_method_configuration",
        "async_payment_method_types",
        "oxxo_expires_days",
        "multicapture",
        "max_network_retries",
        "timeout",
        "api_base",
        "http_client",
        "stripe_account",
    }
)


def _text(options: Mapping[str, Any], name: str) -> str | None:
    value = options.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"Stripe option `{name}` must be a string")
    return value


def _texts(options: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = options.get(name)
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"Stripe option `{name}` must be a string or a list of strings")
    return tuple(value)


def stripe_account_id(value: object, where: str) -> str:
    """A connected account id (`acct_...`), as the `Stripe-Account` header takes it."""
    if not isinstance(value, str) or not value.startswith("acct_") or len(value) <= len("acct_"):
        raise ValueError(f"{where} must be a Stripe account id (acct_...), got {value!r}")
    return value


def _flag(options: Mapping[str, Any], name: str) -> bool:
    value = options.get(name, False)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        value = value.strip().lower() in ("true", "1")
    if not isinstance(value, bool):
        raise ValueError(f"Stripe option `{name}` must be true or false")
    return value


def _count(options: Mapping[str, Any], name: str, default: int) -> int:
    value = options.get(name, default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"Stripe option `{name}` must be an integer >= 0")
    return value


def _seconds(options: Mapping[str, Any], name: str, default: float) -> float:
    value = options.get(name, default)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise ValueError(f"Stripe option `{name}` must be a number of seconds > 0")
    return float(value)


@dataclass(frozen=True, slots=True)
class StripeOptions:
    api_key: str
    #: The signing secrets of the webhook endpoints that point at paymod (one, or e.g. the account's and
    #: the Connect endpoint's): an event is accepted when it verifies with any of them.
    webhook_secrets: tuple[str, ...] = ()
    capture: bool = False
    automatic_payment_methods: bool = False
    payment_description: str | None = None
    payment_method_configuration: str | None = None
    async_payment_method_types: frozenset[str] = frozenset()
    oxxo_expires_days: int = 3
    multicapture: bool = False
    max_network_retries: int = 2
    timeout: float = 80.0
    api_base: str | None = None
    http_client: stripe.HTTPClient | None = None
    #: Connect: the connected account every call acts on (`Stripe-Account`) unless a session names one.
    stripe_account: str | None = None

    @property
    def webhook_secret(self) -> str | None:
        return self.webhook_secrets[0] if self.webhook_secrets else None

    def __repr__(self) -> str:  # never print the secrets
        return f"StripeOptions(api_key='{self.api_key[:8]}…', api_base={self.api_base!r})"

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> StripeOptions:
        """Raises ValueError naming the first wrong option."""
        unknown = sorted(set(options) - KNOWN)
        if unknown:
            raise ValueError(
                f"Unknown Stripe option(s): {', '.join(unknown)} (known: {', '.join(sorted(KNOWN))})"
            )
        api_key = _text(options, "api_key")
        if not api_key:
            raise ValueError(
                "Required option `api_key` is missing in the Stripe provider options "
                "(set it in the environment, e.g. PAYMOD_PROVIDERS__STRIPE__API_KEY)"
            )
        types = options.get("async_payment_method_types") or []
        if isinstance(types, str):
            types = [t.strip() for t in types.split(",") if t.strip()]
        if not isinstance(types, list | tuple) or not all(isinstance(t, str) for t in types):
            raise ValueError("Stripe option `async_payment_method_types` must be a list of strings")
        api_base = _text(options, "api_base")
        if api_base is not None and not api_base.startswith(("http://", "https://")):
            raise ValueError("Stripe option `api_base` must be an http(s) URL")
        http_client = options.get("http_client")
        if http_client is not None and not isinstance(http_client, stripe.HTTPClient):
            raise ValueError("Stripe option `http_client` must be a stripe.HTTPClient")
        account = _text(options, "stripe_account")
        return cls(
            api_key=api_key,
            webhook_secrets=_texts(options, "webhook_secret"),
            capture=_flag(options, "capture"),
            automatic_payment_methods=_flag(options, "automatic_payment_methods"),
            payment_description=_text(options, "payment_description"),
            payment_method_configuration=_text(options, "payment_method_configuration"),
            async_payment_method_types=frozenset(types),
            oxxo_expires_days=_count(options, "oxxo_expires_days", 3),
            multicapture=_flag(options, "multicapture"),
            max_network_retries=_count(options, "max_network_retries", 2),
            timeout=_seconds(options, "timeout", 80.0),
            api_base=api_base.rstrip("/") if api_base else None,
            http_client=http_client,
            stripe_account=None
            if account is None
            else stripe_account_id(account, "Stripe option `stripe_account`"),
        )
