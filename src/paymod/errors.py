"""paymod's public errors (defined in the pure domain layer, re-exported here).

The whole tree, internal signals included, is drawn in `paymod.domain.errors`.
"""

from paymod.domain.errors import (
    ConflictError,
    IdempotencyError,
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
    "IdempotencyError",
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
