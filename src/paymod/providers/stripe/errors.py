"""Stripe SDK errors -> paymod errors, and the backoff used when Stripe rate-limits us.

Connection errors, 409 (an idempotency key still in use) and 5xx leave the outcome unknown or the
service unavailable: `RetryableProviderError`, safe to retry with the same idempotency key. Every
other Stripe error is a `ProviderError` carrying Stripe's message and code.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import stripe

from paymod.domain.errors import ProviderError, RetryableProviderError

MAX_DELAY = 5.0
INITIAL_DELAY = 0.5


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): exponential, capped, with jitter."""
    delay = min(INITIAL_DELAY * 2.0 ** (attempt - 1), MAX_DELAY)
    return max(INITIAL_DELAY, delay * random.uniform(0.5, 1.0))


def stripe_message(exc: stripe.StripeError) -> str:
    return exc.user_message or str(exc) or type(exc).__name__


def error_intent(exc: stripe.StripeError) -> dict[str, Any] | None:
    """The PaymentIntent Stripe attached to an error (`error.payment_intent`), as a dict."""
    error = exc.error
    intent = getattr(error, "payment_intent", None) if error is not None else None
    if isinstance(intent, stripe.StripeObject):
        return intent.to_dict(for_json=True)
    if isinstance(intent, Mapping):
        return dict(intent)
    return None


def decline_code(exc: stripe.StripeError) -> str | None:
    error = exc.error
    code = getattr(error, "decline_code", None) if error is not None else None
    return str(code or exc.code or "") or None


def translate(exc: stripe.StripeError) -> ProviderError:
    """The paymod error for a Stripe error; callers raise it `from exc`."""
    message = stripe_message(exc)
    status = exc.http_status
    if isinstance(exc, stripe.APIConnectionError):
        return RetryableProviderError(
            f"Could not reach Stripe; the outcome is unknown: {message}", code="stripe_connection_error"
        )
    if isinstance(exc, stripe.RateLimitError):
        return RetryableProviderError(message, code=exc.code or "rate_limit")
    if isinstance(exc, stripe.APIError) and (status is None or status == 409 or status >= 500):
        return RetryableProviderError(message, code=exc.code or "stripe_api_error")
    if isinstance(exc, stripe.IdempotencyError):
        return ProviderError(message, code="idempotency_error")
    if isinstance(exc, stripe.AuthenticationError):
        return ProviderError(message, code="authentication_error")
    if isinstance(exc, stripe.PermissionError):
        return ProviderError(message, code="permission_error")
    if isinstance(exc, stripe.CardError):
        return ProviderError(message, code=exc.code or "card_error")
    if isinstance(exc, stripe.SignatureVerificationError):
        return ProviderError(message, code="invalid_signature")
    return ProviderError(message, code=exc.code or "stripe_error")
