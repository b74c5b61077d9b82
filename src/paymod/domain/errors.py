"""The error tree: every exception paymod raises is a `PaymodError`, with a stable machine `type`
per class (Medusa's types where Medusa has one).

PaymodError                        unknown_error
├── NotFoundError                  not_found
├── InvalidDataError               invalid_data
│   ├── IdempotencyError           idempotency_error (a key reused with other input)
│   ├── AmountError                invalid_data (also a ValueError: not a valid amount or currency)
│   └── UnsafeInput                invalid_data (also a ValueError: text the databases cannot store)
├── NotAllowedError                not_allowed
├── ConflictError                  conflict
├── DuplicateError                 duplicate_error (internal: a unique index refused a row)
├── PaymentAuthorizationError      payment_authorization_error
├── PaymentRequiresMoreError       payment_requires_more_error
├── UnexpectedStateError           unexpected_state
├── ConfigError                    config_error (also a ValueError: the configuration is wrong)
├── SignatureVerificationError     invalid_signature (also a ValueError: a webhook we signed fails)
└── ProviderError                  provider_error (a provider call failed)
    └── RetryableProviderError     provider_unavailable (timeout, connection, rate limit: retry later)

The classes that are also `ValueError`s were plain `ValueError`s once: callers that catch
`ValueError` (pydantic validators among them) still do. HTTP statuses live only in the HTTP layer.
"""

from __future__ import annotations

from typing import ClassVar


class PaymodError(Exception):
    """The base of every error paymod raises: `type` (stable), `code` (more precise), `message`."""

    type: ClassVar[str] = "unknown_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.type

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class NotFoundError(PaymodError):
    """No record with that id (or it was deleted)."""

    type = "not_found"


class InvalidDataError(PaymodError):
    """The input is malformed or out of range; the message names the field."""

    type = "invalid_data"


class IdempotencyError(InvalidDataError):
    """An idempotency key was used before with different input (or another endpoint)."""

    type = "idempotency_error"


class AmountError(InvalidDataError, ValueError):
    """An input that is not a valid amount or currency code (the message names what is wrong)."""


class UnsafeInput(InvalidDataError, ValueError):
    """Input the databases cannot store (NUL characters, lone surrogates) or too deeply nested."""


class NotAllowedError(PaymodError):
    """The records' state forbids the operation (a refund above what was captured, ...)."""

    type = "not_allowed"


class ConflictError(PaymodError):
    """Another request holds or changed the records meanwhile: retrying is safe."""

    type = "conflict"


class DuplicateError(PaymodError):
    """A record with that id or key exists already (a unique index's signal, handled inside paymod)."""

    type = "duplicate_error"


class PaymentAuthorizationError(PaymodError):
    """The provider declined the authorization."""

    type = "payment_authorization_error"


class PaymentRequiresMoreError(PaymodError):
    """The customer must act (3-D Secure, ...) before the payment can be authorized."""

    type = "payment_requires_more_error"


class UnexpectedStateError(PaymodError):
    """The records are in a state paymod never leaves them in (or a run was abandoned)."""

    type = "unexpected_state"


class ConfigError(PaymodError, ValueError):
    """The configuration is wrong; the message says where."""

    type = "config_error"


class SignatureVerificationError(PaymodError, ValueError):
    """The payload does not carry a valid, fresh signature of the secret's holder."""

    type = "invalid_signature"


class ProviderError(PaymodError):
    """A provider refused or failed a call; what the provider said is in the message."""

    type = "provider_error"


class RetryableProviderError(ProviderError):
    """The outcome is unknown or the provider is unavailable: retrying with the same key is safe."""

    type = "provider_unavailable"
