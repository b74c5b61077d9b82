"""The PayPal provider's options, validated once at registration (pydantic).

Values set through the environment (`PAYMOD_PROVIDERS__PAYPAL__CLIENT_SECRET`, see paymod.config) arrive
as strings; numbers accept their string forms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator


class PayPalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    #: `sandbox` (api-m.sandbox.paypal.com) or `live` (api-m.paypal.com).
    environment: Literal["sandbox", "live"] = "sandbox"
    #: Another base URL for PayPal's REST API (a test server); wins over `environment`.
    api_base: str | None = None
    #: The id PayPal gave the webhook pointing at paymod; events are verified against it.
    webhook_id: str | None = None
    #: AUTHORIZE: the buyer's approval is authorized, paymod captures later. CAPTURE: captured at once.
    intent: Literal["AUTHORIZE", "CAPTURE"] = "AUTHORIZE"
    brand_name: str | None = Field(default=None, max_length=127)
    return_url: str | None = None
    cancel_url: str | None = None
    #: Seconds before a call to PayPal counts as timed out (its outcome is then unknown).
    timeout: float = Field(default=30.0, gt=0, le=600)
    #: Calls to PayPal in flight at once (the SDK blocks, so each runs on a worker thread).
    max_concurrency: int = Field(default=8, ge=1, le=256)

    @field_validator("environment", "intent", mode="before")
    @classmethod
    def _case(cls, value: Any, info: Any) -> Any:
        if not isinstance(value, str):
            return value
        return value.strip().upper() if info.field_name == "intent" else value.strip().lower()

    @field_validator("api_base", "return_url", "cancel_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("webhook_id", "brand_name")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> PayPalOptions:
        """Raises ValueError naming the first wrong option."""
        for required in ("client_id", "client_secret"):
            if not options.get(required):
                raise ValueError(
                    f"Required option `{required}` is missing in the PayPal provider options "
                    f"(set it in the environment, e.g. PAYMOD_PROVIDERS__PAYPAL__{required.upper()})"
                )
        try:
            return cls.model_validate(dict(options))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "options"
            if first["type"] == "extra_forbidden":
                known = ", ".join(sorted(cls.model_fields))
                raise ValueError(f"Unknown PayPal option `{where}` (known: {known})") from None
            raise ValueError(f"PayPal option `{where}`: {first['msg']}") from None
