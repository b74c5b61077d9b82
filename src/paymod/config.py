"""Settings: `PAYMOD_*` environment variables, and a TOML file for providers and regions.

The file is `PAYMOD_CONFIG`, or `./paymod.toml` when that variable is unset and the file exists (an
empty `PAYMOD_CONFIG` reads no file). Its shape (see `examples/paymod.toml`):

    admin_api_key = "sk_dev_..."  # local keys (top-level keys come before the first table);
    publishable_api_key = "pk_..."  # `paymod init` writes them, PAYMOD_*_API_KEY win

    [[providers]]                 # one table per provider, as in `PaymentModule.connect`
    resolve = "stripe"            # entry point, module path or class
    id = "stripe"                 # registered as pp_{identifier}_{id}
    options = { capture = false }

    [[regions]]                   # providers enabled per region (linked at start)
    id = "reg_eu"
    providers = ["pp_system_default", "pp_stripe_stripe"]

    [webhooks]
    delay = 5                     # seconds before a received webhook is processed
    retries = 3

    [worker]                      # the in-process worker of `paymod serve` (and `paymod worker`)
    enabled = true                # false on replicas that only serve (run `paymod worker` elsewhere)
    poll_interval = 0.2           # seconds between looks for due work when idle

    [server]                      # the HTTP server of `paymod serve`
    header_limit = 16384          # bytes of a request's line and headers; more gets 431
    header_timeout = 10           # seconds for them to arrive; then the connection is closed

Secrets stay out of the file: `PAYMOD_PROVIDERS__<NAME>__<OPTION>` sets option `<option>` of the
provider whose `id` (or, failing that, `resolve`) is `<name>`, case-insensitively; e.g.
`PAYMOD_PROVIDERS__STRIPE__API_KEY=sk_test_...`. `PAYMOD_SERVER__<SETTING>` sets a `[server]`
setting (`PAYMOD_SERVER__HEADER_TIMEOUT=5`). Environment variables win over the file.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from paymod.domain.errors import ConfigError as ConfigError

#: Where paymod keeps its data when nothing else is said: a SQLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./paymod.db"
ENV_PREFIX = "PAYMOD_"
PROVIDER_ENV_PREFIX = "PAYMOD_PROVIDERS__"
SERVER_ENV_PREFIX = "PAYMOD_SERVER__"
#: Tables of the file that single environment variables may set: PAYMOD_<TABLE>__<SETTING>.
_ENV_TABLES = ("server", "store")
#: Read when PAYMOD_CONFIG is unset: the file `./dev run` writes (`paymod init`).
DEFAULT_CONFIG_FILE = Path("paymod.toml")
#: Top-level keys of the file that an environment variable of the same name wins over.
_ENV_WINS = ("database_url", "admin_api_key", "publishable_api_key")
_FILE_KEYS = {*_ENV_WINS, "providers", "regions", "webhooks", "worker", "server", "store"}


class ProviderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolve: str = Field(min_length=1)
    id: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    def as_config(self) -> dict[str, Any]:
        return {"resolve": self.resolve, "id": self.id, "options": dict(self.options)}


class RegionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    providers: list[str] = Field(default_factory=list)


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay: float = Field(default=5.0, ge=0, description="seconds; 0 means 0")
    retries: int = Field(default=3, ge=0, description="0 means 0")


class WorkerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="`paymod serve` runs an in-process worker")
    poll_interval: float = Field(default=0.2, gt=0, le=60, description="seconds between idle looks")
    batch: int = Field(default=20, ge=1, le=1000, description="rows claimed per look")
    shutdown_grace: float = Field(
        default=10.0, gt=0, le=600, description="seconds a stopping worker may finish its batch"
    )
    retention_days: float = Field(
        default=30.0,
        gt=0,
        description="days finished events, deliveries, provider events and workflow runs are kept",
    )
    prune_interval: float = Field(
        default=600.0, gt=0, description="seconds between two prunings of rows older than the retention"
    )
    endpoint_disable_after: float = Field(
        default=3 * 24 * 3600.0,
        gt=0,
        description="seconds an endpoint may fail (every delivery, in a row) before it is disabled",
    )
    authorization_expiry_warning: float = Field(
        default=24 * 3600.0,
        ge=0,
        description="seconds before an authorization lapses at the provider that "
        "`payment.authorization_expiring` is sent (once per payment)",
    )
    authorization_expiry_interval: float = Field(
        default=60.0,
        ge=0,
        description="seconds between two looks for authorizations to warn about or mark expired (0: never)",
    )
    session_sync_after: float = Field(
        default=15 * 60.0,
        gt=0,
        description="seconds a session may stay pending, requires_more or pending_authorization before "
        "the provider is asked about it (the janitor)",
    )
    session_sync_max_age: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="seconds after its creation that the janitor stops asking about an unsettled session",
    )
    session_sync_interval: float = Field(
        default=60.0, ge=0, description="seconds between two passes of the janitor (0: never)"
    )


class ServerSettings(BaseModel):
    """Limits of the HTTP server `paymod serve` runs (see `paymod.http.server`)."""

    model_config = ConfigDict(extra="forbid")

    header_limit: int = Field(
        default=16 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="bytes of a request's line and headers; a larger request gets 431 and is closed",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="seconds for a request's line and headers to arrive (from the connection's start, "
        "or the request's first byte); then the connection is closed",
    )
    shutdown_grace: float = Field(
        default=20.0,
        gt=0,
        le=3600,
        description="seconds the requests in flight may take to finish once `paymod serve` is asked to "
        "stop (SIGTERM); then they are cancelled",
    )


class StoreSettings(BaseModel):
    """What the store routes (publishable key) trust."""

    model_config = ConfigDict(extra="forbid")

    trust_customer_id: bool = Field(
        default=False,
        description="let the saved-payment-method routes take the shopper's `customer_id` on its word "
        "instead of an ephemeral key (the behaviour of earlier versions; only behind your own auth)",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    #: Connections each process keeps open (PostgreSQL: up to twice as many more under load).
    database_pool_size: int = Field(default=10, ge=1, le=500)
    config: Path | None = None
    admin_api_key: SecretStr | None = None
    publishable_api_key: SecretStr | None = None
    providers: list[ProviderSettings] = Field(default_factory=list)
    regions: list[RegionSettings] = Field(default_factory=list)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)

    @field_validator("config", "admin_api_key", "publishable_api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFile(settings_cls))

    def provider_configs(self) -> list[dict[str, Any]]:
        return [p.as_config() for p in self.providers]

    def module_options(self) -> dict[str, Any]:
        return {"webhook_delay": self.webhooks.delay, "webhook_retries": self.webhooks.retries}


class _TomlFile(PydanticBaseSettingsSource):
    """The `PAYMOD_CONFIG` file (or ./paymod.toml), with provider secrets from the environment merged in."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        # `config` given at all (even None or "") is a choice; only its absence looks for ./paymod.toml.
        if "config" in self.current_state:
            path = self.current_state["config"]
        else:
            path = DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None
        data: dict[str, Any] = {}
        if path:
            data = read_config_file(Path(path))
            for name in _ENV_WINS:
                if name in self.current_state:
                    data.pop(name, None)
            # Says which file was read (`paymod serve --dev` prints it).
            data["config"] = Path(path)
        providers = data.get("providers", [])
        if not isinstance(providers, list):
            raise ConfigError("`providers` must be an array of tables ([[providers]])")
        overrides = provider_secrets_from_env(os.environ)
        if overrides:
            data["providers"] = apply_provider_secrets(providers, overrides)
        for name in _ENV_TABLES:
            values = table_settings_from_env(os.environ, name)
            if values:
                table = data.get(name, {})
                if not isinstance(table, Mapping):
                    raise ConfigError(f"`{name}` must be a table ([{name}])")
                data[name] = {**table, **values}
        return data


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"PAYMOD_CONFIG: no such file {path}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    unknown = set(data) - _FILE_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    return data


def provider_secrets_from_env(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """`PAYMOD_PROVIDERS__STRIPE__API_KEY=x` → {"stripe": {"api_key": "x"}}."""
    found: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.upper().startswith(PROVIDER_ENV_PREFIX):
            continue
        provider, _, option = name[len(PROVIDER_ENV_PREFIX) :].partition("__")
        if not provider or not option:
            raise ConfigError(f"{name}: expected {PROVIDER_ENV_PREFIX}<PROVIDER>__<OPTION>")
        found.setdefault(provider.lower(), {})[option.lower()] = value
    return found


def table_settings_from_env(environ: Mapping[str, str], table: str) -> dict[str, str]:
    """`PAYMOD_SERVER__HEADER_LIMIT=8192` → {"header_limit": "8192"} for table `server` (validated by
    the table's settings model)."""
    prefix = f"PAYMOD_{table.upper()}__"
    found: dict[str, str] = {}
    for name, value in environ.items():
        if name.upper().startswith(prefix):
            setting = name[len(prefix) :].lower()
            if not setting:
                raise ConfigError(f"{name}: expected {prefix}<SETTING>")
            found[setting] = value
    return found


def server_settings_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    return table_settings_from_env(environ, "server")


def apply_provider_secrets(
    providers: list[Any], overrides: Mapping[str, Mapping[str, str]]
) -> list[dict[str, Any]]:
    merged = [dict(p) if isinstance(p, Mapping) else p for p in providers]
    for name, options in overrides.items():
        targets = [p for p in merged if isinstance(p, dict) and str(p.get("id") or "").lower() == name]
        if not targets:
            targets = [
                p
                for p in merged
                if isinstance(p, dict) and str(p.get("resolve") or "").rsplit(".", 1)[-1].lower() == name
            ]
        if not targets:
            raise ConfigError(
                f"{PROVIDER_ENV_PREFIX}{name.upper()}__...: no configured provider has id or resolve {name!r}"
            )
        for provider in targets:
            provider["options"] = {**dict(provider.get("options") or {}), **options}
    return merged


@dataclass(frozen=True)
class LocalKeys:
    """The API keys `write_local_config` made up."""

    admin: str
    publishable: str


def write_local_config(target: Path, example: Path | None = None) -> LocalKeys:
    """Writes a settings file for local use: fresh API keys, then the settings of `example` (if any).

    The keys stay the same across restarts (yesterday's `curl` still works) because they live in the
    file; the file is readable by its owner only. An existing `target` is never overwritten.
    """
    body = ""
    if example is not None:
        read_config_file(example)  # the example must be valid before we build on it
        body = example.read_text(encoding="utf-8")
        parsed = tomllib.loads(body)
        clash = [name for name in ("admin_api_key", "publishable_api_key") if name in parsed]
        if clash:
            raise ConfigError(f"{example}: already sets {', '.join(clash)}")
    keys = LocalKeys(
        admin=f"sk_dev_{secrets.token_urlsafe(24)}", publishable=f"pk_dev_{secrets.token_urlsafe(24)}"
    )
    source = f" from {example}" if example is not None else ""
    header = (
        f"# Local settings{source}, written once by `paymod init` (`./dev run`).\n"
        "# paymod reads ./paymod.toml when PAYMOD_CONFIG is unset; environment variables win over it.\n"
        "# It holds API keys: keep it out of version control.\n"
        "\n"
        "# Local API keys, accepted besides those made with `paymod api-keys create`\n"
        "# (PAYMOD_ADMIN_API_KEY and PAYMOD_PUBLISHABLE_API_KEY win over them).\n"
        f'admin_api_key = "{keys.admin}"              # admin routes: Authorization: Bearer <key>\n'
        f'publishable_api_key = "{keys.publishable}"  # store routes: x-publishable-api-key: <key>\n'
    )
    text = header + ("\n" + body if body else "")
    try:
        # O_EXCL: never overwrite; 0o600: the keys are readable by the owner only from the first byte on.
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{target} already exists; remove it to make new keys") from None
    except OSError as exc:
        raise ConfigError(f"{target}: {exc.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    return keys


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and the config file; keyword arguments win over both."""
    try:
        return Settings(**overrides)
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


__all__ = [
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_DATABASE_URL",
    "ConfigError",
    "LocalKeys",
    "ProviderSettings",
    "RegionSettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "WebhookSettings",
    "WorkerSettings",
    "load_settings",
    "write_local_config",
]
