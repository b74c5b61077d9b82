"""A dashboard action runs once per form: the form carries an Idempotency-Key minted when it was
rendered, claimed in the same store as the HTTP API's keys (`idempotency_key` table), so a double
submit, a reload or a second tab replays the first outcome instead of acting twice."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from paymod.domain.errors import PaymodError
from paymod.http.errors import status_of
from paymod.services.access import IdempotencyStore, Outcome, RequestIdentity, token_hash

FIELD = "idempotency_key"
#: Form fields that are not the action's parameters.
NOT_PARAMETERS = frozenset({"csrf_token", FIELD, "confirmed"})


def mint_key() -> str:
    return "dash_" + secrets.token_urlsafe(18)


@dataclass(frozen=True, slots=True)
class Result:
    """How the action went: `error` is None when it succeeded; `replayed` when an earlier submit of the
    same form had already run it (or still runs it: `in_flight`)."""

    status: int
    error: str | None = None
    replayed: bool = False
    in_flight: bool = False


def scope_of(api_key_id: str) -> str:
    """Keys are the operator's (per signed-in API key), apart from the HTTP API's."""
    return token_hash(f"dashboard:{api_key_id}")


def flow_key(api_key_id: str, key: str) -> str:
    """The module's flow key: a retry after a crash resumes the same capture/refund/cancel run."""
    return f"dashboard:{scope_of(api_key_id)}:{key}"


def _fingerprint(form: Mapping[str, str]) -> str:
    params = {k: v for k, v in sorted(form.items()) if k not in NOT_PARAMETERS}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


async def run_once(
    store: IdempotencyStore,
    *,
    api_key_id: str,
    key: str,
    path: str,
    form: Mapping[str, str],
    action: Callable[[], Awaitable[None]],
) -> Result:
    identity = RequestIdentity(
        scope=scope_of(api_key_id), key=key, method="POST", path=path, fingerprint=_fingerprint(form)
    )
    claim = await store.claim(identity)
    if claim.outcome is Outcome.MISMATCH:
        return Result(
            400, "This form was already submitted with other values. Reload the page and try again."
        )
    if claim.outcome is Outcome.IN_FLIGHT:
        return Result(
            409, "This action is already being processed. Reload the page in a moment.", in_flight=True
        )
    if claim.outcome is Outcome.REPLAY:
        stored = json.loads(claim.body or "{}")
        return Result(claim.status or 200, stored.get("error"), replayed=True)
    try:
        await action()
    except PaymodError as exc:
        result = Result(status_of(exc), exc.message)
    except BaseException:
        await store.release(identity)
        raise
    else:
        result = Result(200)
    await store.complete(identity, result.status, json.dumps({"error": result.error}))
    return result
