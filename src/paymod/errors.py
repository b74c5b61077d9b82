"""paymod's errors (defined in the pure domain layer, re-exported here)."""

from paymod.domain.errors import (
    ConflictError,
    DuplicateError,
    InvalidDataError,
    NotAllowedError,
    NotFoundError,
    PaymentAuthorizationError,
    PaymentRequiresMoreError,
    PaymodError,
    ProviderError,
    RetryableProviderError,
    UnexpectedStateError,
)

__all__ = [
    "ConflictError",
    "DuplicateError",
    "InvalidDataError",
    "NotAllowedError",
    "NotFoundError",
    "PaymentAuthorizationError",
    "PaymentRequiresMoreError",
    "PaymodError",
    "ProviderError",
    "RetryableProviderError",
    "UnexpectedStateError",
]
