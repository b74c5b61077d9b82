"""Whether a request began executing: the Idempotency-Key middleware stores the outcome of a request
that did, and nothing for one that did not (wrong API key, invalid parameters).

The middleware puts a marker in the request's scope; authentication sets it, a validation error
clears it. It is its own module because all three (`paymod.http.idempotency`, `paymod.http.auth`,
`paymod.http.errors`) need it and none of them may import another for it.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Scope

#: The scope key of the marker (a dict with `started`), set by the Idempotency-Key middleware.
EXECUTION = "paymod.execution"


def track_execution(scope: Scope) -> dict[str, Any]:
    """Puts a marker in the scope; the request counts as executing once it is authenticated."""
    execution: dict[str, Any] = {"started": False}
    scope[EXECUTION] = execution
    return execution


def mark_executing(scope: Scope) -> None:
    """Called once the request passed authentication: from here on its outcome is stored."""
    execution = scope.get(EXECUTION)
    if execution is not None:
        execution["started"] = True


def mark_not_executed(scope: Scope) -> None:
    """Called for a request that failed validation: it may be fixed and retried with the same key."""
    execution = scope.get(EXECUTION)
    if execution is not None:
        execution["started"] = False


__all__ = ["EXECUTION", "mark_executing", "mark_not_executed", "track_execution"]
