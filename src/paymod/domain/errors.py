"""The error hierarchy: one base, a stable machine `type` per class (Medusa's types).

PaymodError
├── NotFoundError                  not_found
├── InvalidDataError               invalid_data
├── NotAllowedError                not_allowed
├── ConflictError                  conflict
├── DuplicateError                 duplicate_error (a record with that id or key already exists)
├── PaymentAuthorizationError      payment_authorization_error
├── PaymentRequiresMoreError       payment_requires_more_error
├── UnexpectedStateError           unexpected_state
└── ProviderError                  provider_error (a provider call failed)
    └── RetryableProviderError     provider_unavailable (timeout, connection, rate limit: retry later)

HTTP statuses for these live only in the HTTP layer.
"""

from __future__ import annotations

from typing import ClassVar


class PaymodError(Exception):
    type: ClassVar[str] = "unknown_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.type

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class NotFoundError(PaymodError):
    type = "not_found"


class InvalidDataError(PaymodError):
    type = "invalid_data"


class NotAllowedError(PaymodError):
    type = "not_allowed"


class ConflictError(PaymodError):
    type = "conflict"


class DuplicateError(PaymodError):
    type = "duplicate_error"


class PaymentAuthorizationError(PaymodError):
    type = "payment_authorization_error"


class PaymentRequiresMoreError(PaymodError):
    type = "payment_requires_more_error"


class UnexpectedStateError(PaymodError):
    type = "unexpected_state"


class ProviderError(PaymodError):
    """A provider refused or failed a call; what the provider said is in the message."""

    type = "provider_error"


class RetryableProviderError(ProviderError):
    """The outcome is unknown or the provider is unavailable: retrying with the same key is safe."""

    type = "provider_unavailable"
