"""paymod: a payment module for Python commerce backends (Medusa's Payment Module, in Python).

The public face: `PaymentModule`, its errors, result types, and the provider base classes.
"""

from paymod.domain.statuses import PaymentAction, PaymentCollectionStatus, PaymentSessionStatus
from paymod.errors import (
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
from paymod.providers.base import PaymentProvider
from paymod.services.dto import (
    AccountHolderDTO,
    CaptureDTO,
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

__version__ = "0.1.0"

__all__ = [
    "AccountHolderDTO",
    "CaptureDTO",
    "ConflictError",
    "DuplicateError",
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
