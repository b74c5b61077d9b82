"""API-key authentication: a secret key for admin routes, a publishable key for store routes.

A wrong or missing key gets a 401 that says nothing more, whichever part was wrong.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from paymod.http.errors import UnauthorizedError
from paymod.http.idempotency import mark_executing
from paymod.http.state import AppState, app_state
from paymod.persistence.api_keys import ApiKeyType

PUBLISHABLE_KEY_HEADER = "x-publishable-api-key"

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="secret_api_key",
    description="A secret API key (`paymod api-keys create --type secret`): `Authorization: Bearer sk_...`",
)
_publishable = APIKeyHeader(
    name=PUBLISHABLE_KEY_HEADER,
    auto_error=False,
    scheme_name="publishable_api_key",
    description="A publishable API key (`paymod api-keys create --type publishable`)",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who called: the API key's id (`env` for the key given in the environment)."""

    type: ApiKeyType
    key_id: str


def _unauthorized() -> UnauthorizedError:
    return UnauthorizedError("Unauthorized")


def _matches_env(token: str, configured: SecretStr | None) -> bool:
    return configured is not None and hmac.compare_digest(
        token.encode(), configured.get_secret_value().encode()
    )


async def _verify(state: AppState, request: Request, token: str | None, type: ApiKeyType) -> Principal:
    if not token:
        raise _unauthorized()
    configured = (
        state.settings.admin_api_key if type is ApiKeyType.SECRET else state.settings.publishable_api_key
    )
    if _matches_env(token, configured):
        principal = Principal(type, "env")
    else:
        key = await state.api_keys.verify(token, type)
        if key is None:
            raise _unauthorized()
        principal = Principal(type, key.id)
    mark_executing(request.scope)
    return principal


async def secret_key(
    request: Request,
    state: Annotated[AppState, Depends(app_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    return await _verify(state, request, credentials.credentials if credentials else None, ApiKeyType.SECRET)


async def publishable_key(
    request: Request,
    state: Annotated[AppState, Depends(app_state)],
    token: Annotated[str | None, Security(_publishable)],
) -> Principal:
    return await _verify(state, request, token, ApiKeyType.PUBLISHABLE)


Admin = Annotated[Principal, Depends(secret_key)]
Shopper = Annotated[Principal, Depends(publishable_key)]
