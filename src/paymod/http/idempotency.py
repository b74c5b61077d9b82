"""Idempotency-Key on every POST, with Stripe's rules (stripe-rules.md E1).

The first response of a request that began executing is stored, whatever its status, and replayed
with `Idempotent-Replayed: true`; the same key with another endpoint or other parameters is a 400
`idempotency_error`; the same key while the first request runs is a 409. Nothing is stored for a
request that never began executing (wrong API key, invalid parameters, body too large) nor for an
answer that asks to retry with the same key (409, 503). Keys are scoped per API key and kept 24 h.

The request's API key is verified before its key is claimed (with the routes' own verification,
`paymod.http.auth`): a request with a wrong or missing key gets its 401 without a database write.
A POST outside the API's sections (`/admin`, `/store`, `/hooks`) has no route: its key is ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paymod.domain.errors import ConflictError, InvalidDataError
from paymod.exact_json import canonical, loads
from paymod.http.auth import authenticate_section, credential, section_key, section_of
from paymod.http.errors import RETRY_WITH_SAME_KEY, IdempotencyError, UnauthorizedError, error_response
from paymod.http.execution import track_execution
from paymod.http.state import AppState
from paymod.observability.metrics import IDEMPOTENCY
from paymod.services.access import IdempotencyStore, Outcome, RequestIdentity, token_hash

log = logging.getLogger("paymod.http")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
#: The API's sections, by a path's first segment: a POST elsewhere has no route.
SECTIONS = frozenset({"admin", "store", "hooks"})
#: `paymod_idempotency_requests_total{outcome}` of the requests answered without running.
_OUTCOME_LABEL = {Outcome.REPLAY: "replayed", Outcome.IN_FLIGHT: "conflict", Outcome.MISMATCH: "mismatch"}


def request_scope(path: str, headers: Headers) -> str:
    """Keys are scoped per API key: the hash of the key that authenticates this route."""
    type = section_key(path)
    token = (credential(headers, type) if type is not None else None) or ""
    return token_hash(f"{section_of(path)}:{token}")


def flow_key(request_headers: Headers, path: str) -> str | None:
    """The module-level flow key for a request's Idempotency-Key (scoped like the HTTP record), so a
    retry after a crash resumes the same capture/refund/cancel run instead of starting another."""
    key = request_headers.get(HEADER)
    if key is None:
        return None
    return f"http:{request_scope(path, request_headers)}:{key}"


def fingerprint(body: bytes, query_string: bytes) -> str:
    try:
        params = canonical(loads(body)) if body else b""
    except (ValueError, UnicodeDecodeError):
        params = body
    return hashlib.sha256(params + b"?" + query_string).hexdigest()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return b"".join(chunks)


class IdempotencyKeys:
    """ASGI middleware; the store comes from the app's state (set when the app starts)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            response = error_response(
                InvalidDataError(f"header parameter {HEADER}: must be 1 to {MAX_KEY_LENGTH} characters")
            )
            await response(scope, receive, send)
            return
        path: str = scope["path"]
        if section_of(path) not in SECTIONS:
            await self.app(scope, receive, send)
            return
        state: AppState = scope["app"].state.paymod
        try:
            # Before the claim (a write): an unauthenticated request costs no database write.
            await authenticate_section(state, scope)
        except UnauthorizedError as exc:
            await error_response(exc)(scope, receive, send)
            return
        store: IdempotencyStore = state.idempotency
        body = await _read_body(receive)
        identity = RequestIdentity(
            scope=request_scope(scope["path"], headers),
            key=key,
            method=scope["method"],
            path=scope["path"],
            fingerprint=fingerprint(body, scope.get("query_string", b"")),
        )
        claim = await store.claim(identity)
        if claim.outcome is not Outcome.CLAIMED:
            IDEMPOTENCY.labels(_OUTCOME_LABEL.get(claim.outcome, claim.outcome.name.lower())).inc()
        if claim.outcome is Outcome.MISMATCH:
            await error_response(
                IdempotencyError(
                    f"Keys for idempotent requests can only be used with the same endpoint and parameters "
                    f"they were first used with. Use a new {HEADER} for a different request."
                )
            )(scope, receive, send)
            return
        if claim.outcome is Outcome.IN_FLIGHT:
            await error_response(
                ConflictError(
                    f"A request with this {HEADER} is still being processed. Retry later with the same key.",
                    code="idempotency_key_in_use",
                )
            )(scope, receive, send)
            return
        if claim.outcome is Outcome.REPLAY:
            await self._replay(claim.status or 500, claim.body or "", send)
            return
        await self._execute(identity, store, body, scope, receive, send)

    async def _replay(self, status: int, body: str, send: Send) -> None:
        content = body.encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                    (REPLAYED_HEADER.lower().encode(), b"true"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})

    async def _execute(
        self,
        identity: RequestIdentity,
        store: IdempotencyStore,
        body: bytes,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        execution = track_execution(scope)
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        messages: list[Message] = []

        async def buffer(message: Message) -> None:
            messages.append(message)

        try:
            await self.app(scope, replay_body, buffer)
        except BaseException:
            await store.release(identity)
            raise
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        status = int(start["status"]) if start else 500
        content = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        if execution["started"] and status not in RETRY_WITH_SAME_KEY:
            try:
                text = content.decode("utf-8")
                json.loads(text)
            except ValueError:
                log.warning("not storing a non-JSON response for an Idempotency-Key")
                await store.release(identity)
            else:
                await store.complete(identity, status, text)
        else:
            await store.release(identity)
        for message in messages:
            await send(message)
