"""Loads providers from Medusa-shaped configuration and names them `pp_{identifier}_{id}`.

`resolve` is a provider class, a module path, or the name of an entry point in the group
`paymod.providers`; a module exposes its provider classes as `services` (as Medusa's module
providers do) or simply defines them.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from paymod.domain.errors import InvalidDataError, NotFoundError
from paymod.observability.metrics import instrument_provider
from paymod.providers.base import PaymentProvider
from paymod.providers.system import SystemPaymentProvider

ENTRY_POINT_GROUP = "paymod.providers"
SYSTEM_PROVIDER_ID = "pp_system_default"

ProviderConfig = Mapping[str, Any]


def provider_key(identifier: str, id: str | None) -> str:
    return f"pp_{identifier}_{id}" if id else f"pp_{identifier}"


def _classes_of(module: ModuleType) -> list[type[PaymentProvider]]:
    services = getattr(module, "services", None)
    if services is not None:
        return list(services)
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, PaymentProvider) and obj.__module__ == module.__name__ and obj.identifier
    ]


def _resolve(resolve: object) -> list[type[PaymentProvider]]:
    if inspect.isclass(resolve) and issubclass(resolve, PaymentProvider):
        return [resolve]
    if isinstance(resolve, ModuleType):
        return _classes_of(resolve)
    if not isinstance(resolve, str) or not resolve:
        raise InvalidDataError(
            "A provider's `resolve` must be a provider class, a module path or an entry point"
        )
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == resolve:
            return _resolve(ep.load())
    try:
        module = importlib.import_module(resolve)
    except ImportError as exc:
        raise InvalidDataError(f"Unable to load the payment provider {resolve!r}: {exc}") from exc
    return _classes_of(module)


class ProviderRegistry:
    """The configured providers, by id. `pp_system_default` is always there."""

    def __init__(self, configs: Sequence[ProviderConfig] = ()) -> None:
        self._providers: dict[str, PaymentProvider] = {}
        self._add(SYSTEM_PROVIDER_ID, SystemPaymentProvider())
        for config in configs:
            self.register(config)

    def register(self, config: ProviderConfig) -> list[str]:
        if not isinstance(config, Mapping) or "resolve" not in config:
            raise InvalidDataError("Each provider needs a `resolve` (class, module path or entry point)")
        classes = _resolve(config["resolve"])
        if not classes:
            raise InvalidDataError(f"{config['resolve']!r} defines no payment provider")
        options = dict(config.get("options") or {})
        keys = []
        for cls in classes:
            if not cls.identifier:
                raise InvalidDataError("Trying to register a payment provider without a provider identifier.")
            try:
                cls.validate_options(options)
            except ValueError as exc:
                raise InvalidDataError(f"Invalid options for provider {cls.identifier!r}: {exc}") from exc
            key = provider_key(cls.identifier, config.get("id"))
            self._add(key, cls(options))
            keys.append(key)
        return keys

    def _add(self, key: str, provider: PaymentProvider) -> None:
        # Every call to it is timed and counted (`paymod_provider_call_duration_seconds`).
        instrument_provider(provider, key)
        self._providers[key] = provider

    def get(self, provider_id: str) -> PaymentProvider:
        try:
            return self._providers[provider_id]
        except KeyError:
            raise NotFoundError(
                f"Unable to retrieve the payment provider with id: {provider_id}. "
                "Please make sure that the provider is registered and configured correctly.",
                code="provider_not_found",
            ) from None

    def resolve_webhook_provider(self, provider: str) -> str:
        """URL segment `{identifier}_{id}` or `pp_...` to the provider id."""
        return provider if provider.startswith("pp_") else f"pp_{provider}"

    @property
    def ids(self) -> list[str]:
        return list(self._providers)

    def __iter__(self) -> Iterator[tuple[str, PaymentProvider]]:
        return iter(self._providers.items())

    def __contains__(self, provider_id: object) -> bool:
        return provider_id in self._providers

    async def close(self) -> None:
        for provider in self._providers.values():
            await provider.close()


def load_providers(configs: Iterable[ProviderConfig] | None) -> ProviderRegistry:
    return ProviderRegistry(list(configs or ()))
