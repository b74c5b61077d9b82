"""The public face: `paymod.__all__` exactly, and one error tree for everything paymod raises."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import paymod
import paymod.errors
from paymod.domain import errors

EXPORTED = [
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

#: Exceptions that never leave the module raising them (control flow inside one function or router).
INTERNAL_SIGNALS = {
    "paymod.http.dashboard.routes.common.CsrfRejected",
    "paymod.http.dashboard.routes.common.SignInRequired",
    "paymod.services.authorization.Refused",
}


def test_the_exported_names_are_exactly_these() -> None:
    assert paymod.__all__ == EXPORTED


def test_every_exported_name_resolves() -> None:
    for name in paymod.__all__:
        assert getattr(paymod, name) is not None, name


def test_the_internal_unique_index_signal_is_not_exported() -> None:
    assert "DuplicateError" not in paymod.__all__
    assert not hasattr(paymod.errors, "DuplicateError") or "DuplicateError" not in paymod.errors.__all__


def test_each_error_of_the_tree_has_a_one_line_docstring_and_a_type() -> None:
    for name, cls in vars(errors).items():
        if inspect.isclass(cls) and issubclass(cls, BaseException):
            assert issubclass(cls, errors.PaymodError), name
            doc = inspect.getdoc(cls) if cls.__doc__ else None
            assert doc and "\n" not in doc.strip(), f"{name} needs a one-line docstring"
            assert isinstance(cls.type, str) and cls.type


def test_one_idempotency_error_for_the_engine_and_the_module() -> None:
    from paymod.durable import engine

    assert engine.IdempotencyError is errors.IdempotencyError is paymod.IdempotencyError
    assert issubclass(errors.IdempotencyError, errors.InvalidDataError)


def test_the_value_errors_of_old_are_in_the_tree_and_still_value_errors() -> None:
    from paymod.config import ConfigError
    from paymod.domain.money import AmountError
    from paymod.exact_json import UnsafeInput
    from paymod.webhooks.signing import SignatureVerificationError

    for cls in (AmountError, ConfigError, SignatureVerificationError, UnsafeInput):
        assert issubclass(cls, errors.PaymodError) and issubclass(cls, ValueError), cls


def test_every_exception_paymod_defines_is_a_paymod_error() -> None:
    strays = []
    for info in pkgutil.walk_packages(paymod.__path__, "paymod."):
        # migrations are scripts, and a `__main__` runs its program when imported
        if ".persistence.migrations" in info.name or info.name.endswith(".__main__"):
            continue
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if (
                inspect.isclass(cls)
                and issubclass(cls, BaseException)
                and cls.__module__ == module.__name__
                and not issubclass(cls, errors.PaymodError)
            ):
                strays.append(f"{cls.__module__}.{cls.__qualname__}")
    assert sorted(set(strays) - INTERNAL_SIGNALS) == []
