"""paymod: a payment module for Python commerce backends (Medusa's Payment Module, in Python).

The public face: `PaymentModule`, its errors, result types, and the provider base classes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paymod.domain.statuses import (
        DisputeStatus,
        PaymentAction,
        PaymentCollectionStatus,
        PaymentSessionStatus,
    )
    from paymod.errors import (
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
    from paymod.providers.base import PaymentProvider
    from paymod.services.dto import (
        AccountHolderDTO,
        CaptureDTO,
        DisputeDTO,
        PaymentCollectionDTO,
        PaymentDTO,
        PaymentMethodDTO,
        PaymentProviderDTO,
        PaymentSessionDTO,
        RefundDTO,
        RefundReasonDTO,
        WebhookActionAndData,
    )
    from paymod.services.payment_module import ModuleOptions, PaymentModule

# Imported on first use: `import paymod` (and so every `paymod` command, `--help` included) does not
# load SQLAlchemy, pydantic and the providers until a name that needs them is asked for.
_LAZY = {
    "DisputeStatus": "paymod.domain.statuses",
    "PaymentAction": "paymod.domain.statuses",
    "PaymentCollectionStatus": "paymod.domain.statuses",
    "PaymentSessionStatus": "paymod.domain.statuses",
    "ConflictError": "paymod.errors",
    "IdempotencyError": "paymod.errors",
    "InvalidDataError": "paymod.errors",
    "NotAllowedError": "paymod.errors",
    "NotFoundError": "paymod.errors",
    "PaymentAuthorizationError": "paymod.errors",
    "PaymentRequiresMoreError": "paymod.errors",
    "PaymodError": "paymod.errors",
    "ProviderError": "paymod.errors",
    "RetryableProviderError": "paymod.errors",
    "UnexpectedStateError": "paymod.errors",
    "PaymentProvider": "paymod.providers.base",
    "AccountHolderDTO": "paymod.services.dto",
    "CaptureDTO": "paymod.services.dto",
    "DisputeDTO": "paymod.services.dto",
    "PaymentCollectionDTO": "paymod.services.dto",
    "PaymentDTO": "paymod.services.dto",
    "PaymentMethodDTO": "paymod.services.dto",
    "PaymentProviderDTO": "paymod.services.dto",
    "PaymentSessionDTO": "paymod.services.dto",
    "RefundDTO": "paymod.services.dto",
    "RefundReasonDTO": "paymod.services.dto",
    "WebhookActionAndData": "paymod.services.dto",
    "ModuleOptions": "paymod.services.payment_module",
    "PaymentModule": "paymod.services.payment_module",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "AccountHolderDTO",
    "CaptureDTO",
    "ConflictError",
    "DisputeDTO",
    "DisputeStatus",
    "IdempotencyError",
    "InvalidDataError",
    "ModuleOptions",
    "NotAllowedError",
    "NotFoundError",
    "PaymentAction",
    "PaymentAuthorizationError",
    "PaymentCollectionDTO",
    "PaymentCollectionStatus",
    "PaymentDTO",
    "PaymentMethodDTO",
    "PaymentModule",
    "PaymentProvider",
    "PaymentProviderDTO",
    "PaymentRequiresMoreError",
    "PaymentSessionDTO",
    "PaymentSessionStatus",
    "PaymodError",
    "ProviderError",
    "RefundDTO",
    "RefundReasonDTO",
    "RetryableProviderError",
    "UnexpectedStateError",
    "WebhookActionAndData",
    "__version__",
]
