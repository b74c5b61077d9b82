"""API-key authentication: a secret key for admin routes, a publishable key for store routes.

The secret key comes as `Authorization: Bearer sk_...` or, as Medusa's JS SDK sends it, as
`Authorization: Basic base64(sk_...:)` (the key is the user name; a password is ignored, as Medusa
ignores it).

A wrong or missing key gets a 401 that says nothing more, whichever part was wrong. The routes'
dependencies (`Admin`, `Shopper`) and the Idempotency-Key middleware (which authenticates a request
before it claims its key) share one verification, `authenticate`; a request verified by the
middleware is not verified again by its route.
"""

from __future__ import annotations

import binascii
import hmac
from base64 import b64decode
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPBasic, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.types import Scope

from paymod.http.errors import UnauthorizedError
from paymod.http.execution import mark_executing
from paymod.http.state import AppState, state_of
from paymod.services.access import ApiKeyType

PUBLISHABLE_KEY_HEADER = "x-publishable-api-key"
#: Which key each part of the API needs (by the path's first segment); hooks need none.
KEY_OF_SECTION = {"admin": ApiKeyType.SECRET, "store": ApiKeyType.PUBLISHABLE}
#: Scope key of the request's caller, once verified.
_PRINCIPAL = "paymod.principal"


class _BearerSecretKey(HTTPBearer):
    """Documents the Bearer form in OpenAPI; `credential` reads it (parsing it here too would be
    work thrown away on every admin request)."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


_bearer = _BearerSecretKey(
    auto_error=False,
    scheme_name="secret_api_key",
    description="A secret API key (`paymod api-keys create --type secret`): `Authorization: Bearer sk_...`",
)


class _BasicSecretKey(HTTPBasic):
    """Documents the Basic form in OpenAPI; `credential` reads it (FastAPI's HTTPBasic would answer
    a malformed header itself, not with paymod's 401)."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


_basic = _BasicSecretKey(
    auto_error=False,
    scheme_name="secret_api_key_basic",
    description="A secret API key as Medusa's JS SDK sends it: `Authorization: Basic base64(sk_...:)`",
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


# -- verification -------------------------------------------------------------------------------
def section_of(path: str) -> str:
    """A path's first segment: `admin`, `store`, `hooks`, ..."""
    return path.split("/", 2)[1] if path.startswith("/") else ""


def section_key(path: str) -> ApiKeyType | None:
    """The key a path's routes need: secret for `/admin/...`, publishable for `/store/...`."""
    return KEY_OF_SECTION.get(section_of(path))


def credential(headers: Headers, type: ApiKeyType) -> str | None:
    """The token a request presents for this key type, read as the OpenAPI security schemes read it
    (`Authorization: Bearer <token>`, `x-publishable-api-key: <token>`)."""
    if type is ApiKeyType.SECRET:
        scheme, token = get_authorization_scheme_param(headers.get("authorization"))
        if scheme.lower() == "basic" and token:
            return _basic_user(token)
        return token if scheme.lower() == "bearer" and token else None
    return headers.get(PUBLISHABLE_KEY_HEADER) or None


def _basic_user(token: str) -> str | None:
    """The user name of Basic credentials (`base64(user:password)`), or None when they are malformed."""
    try:
        decoded = b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, _, _ = decoded.partition(":")
    return user or None


def _unauthorized() -> UnauthorizedError:
    return UnauthorizedError("Unauthorized")


def _matches_env(token: str, configured: SecretStr | None) -> bool:
    return configured is not None and hmac.compare_digest(
        token.encode(), configured.get_secret_value().encode()
    )


async def authenticate(state: AppState, scope: Scope, token: str | None, type: ApiKeyType) -> Principal:
    """The caller whose key `token` is (of `type`), or `UnauthorizedError`. The result is kept in
    the request's scope: verifying the same request again costs nothing."""
    known = scope.get(_PRINCIPAL)
    if isinstance(known, Principal) and known.type is type:
        return known
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
    scope[_PRINCIPAL] = principal
    return principal


async def authenticate_section(state: AppState, scope: Scope) -> Principal | None:
    """Verifies the key the request's path needs (None for a path that needs none: hooks, health)."""
    type = section_key(scope["path"])
    if type is None:
        return None
    return await authenticate(state, scope, credential(Headers(scope=scope), type), type)


# -- route dependencies -------------------------------------------------------------------------
async def _verify(state: AppState, request: Request, token: str | None, type: ApiKeyType) -> Principal:
    principal = await authenticate(state, request.scope, token, type)
    mark_executing(request.scope)
    return principal


# The app's state is read from the request, not through a dependency of its own: each dependency
# costs FastAPI a resolution step on every request.
async def secret_key(
    request: Request,
    bearer: Annotated[None, Security(_bearer)],
    basic: Annotated[None, Security(_basic)],
) -> Principal:
    # Both schemes are declared for OpenAPI; `credential` reads whichever the request used.
    token = credential(request.headers, ApiKeyType.SECRET)
    return await _verify(state_of(request), request, token, ApiKeyType.SECRET)


async def publishable_key(
    request: Request,
    token: Annotated[str | None, Security(_publishable)],
) -> Principal:
    return await _verify(state_of(request), request, token, ApiKeyType.PUBLISHABLE)


Admin = Annotated[Principal, Depends(secret_key)]
Shopper = Annotated[Principal, Depends(publishable_key)]
