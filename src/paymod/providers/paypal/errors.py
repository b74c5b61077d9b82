"""PayPal's errors -> paymod's errors.

PayPal answers an error with `{"name", "message", "debug_id", "details": [{"issue", "description", ...}]}`
(its OAuth endpoint with `{"error", "error_description"}`). A connection failure or timeout, a 5xx, a 429
(`RATE_LIMIT_REACHED`) or a 409 (a request with that PayPal-Request-Id still in progress) leave the outcome
unknown or PayPal unavailable: `RetryableProviderError`, safe to retry with the same PayPal-Request-Id.
Everything else is a `ProviderError` whose code is PayPal's most precise word for it: the first detail's
`issue` (`INSTRUMENT_DECLINED`, `AUTHORIZATION_VOIDED`, ...), else the error's `name`, in lower case.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from paymod.domain.errors import ProviderError, RetryableProviderError

Data = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PayPalFailure:
    """An error answer of PayPal's API, as the provider reads it."""

    status: int
    name: str = ""
    message: str = ""
    debug_id: str | None = None
    issues: tuple[str, ...] = ()
    body: Data = field(default_factory=dict)

    @property
    def issue(self) -> str | None:
        return self.issues[0] if self.issues else None

    @classmethod
    def parse(cls, status: int, text: str | None) -> PayPalFailure:
        try:
            body = json.loads(text or "{}")
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        found = body.get("details")
        details: list[Any] = found if isinstance(found, list) else []
        issues = tuple(str(d["issue"]) for d in details if isinstance(d, dict) and d.get("issue"))
        description = next(
            (str(d["description"]) for d in details if isinstance(d, dict) and d.get("description")), ""
        )
        message = str(body.get("message") or body.get("error_description") or "")
        if description:
            message = f"{message} {description}".strip()
        return cls(
            status=status,
            name=str(body.get("name") or body.get("error") or ""),
            message=message or f"PayPal answered HTTP {status}",
            debug_id=str(body["debug_id"]) if body.get("debug_id") else None,
            issues=issues,
            body=body,
        )


def retryable(status: int) -> bool:
    return status >= 500 or status in (408, 409, 429)


def translate(failure: PayPalFailure) -> ProviderError:
    """The paymod error for a PayPal error answer; callers raise it `from` the SDK's exception."""
    debug = f" (debug_id {failure.debug_id})" if failure.debug_id else ""
    message = f"PayPal: {failure.message}{debug}"
    if retryable(failure.status):
        code = (failure.issue or failure.name or "paypal_unavailable").lower()
        return RetryableProviderError(f"{message}; the outcome is unknown", code=code)
    if failure.status == 401:
        return ProviderError(message, code="authentication_error")
    if failure.status == 403:
        return ProviderError(message, code=(failure.issue or "permission_denied").lower())
    return ProviderError(message, code=(failure.issue or failure.name or "paypal_error").lower())


def unreachable(exc: BaseException) -> RetryableProviderError:
    return RetryableProviderError(
        f"Could not reach PayPal or it did not answer in time; the outcome is unknown: {exc}",
        code="paypal_connection_error",
    )
