"""The request id: taken from `X-Request-Id` when it is sane, minted otherwise, and carried by a context
variable through everything the request starts (log lines, provider calls, the events it emits).

This module imports nothing but the standard library and `paymod.domain`: the persistence layer reads
the current id when it writes an event.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from paymod.domain.ids import new_id

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_PREFIX = "req"
#: Long enough for a UUID, a W3C trace id or a proxy's own scheme; short enough that a client cannot
#: make every log line of its request carry a kilobyte.
MAX_REQUEST_ID_LENGTH = 128
# Letters, digits and the punctuation ids are made of: nothing that could break a log line, a header
# or a JSON document (no spaces, quotes, control characters or non-ASCII).
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+/=-]*")

_request_id: ContextVar[str | None] = ContextVar("paymod_request_id", default=None)


def sane_request_id(value: str | None) -> str | None:
    """`value` when it can be used as a request id as it is, else None (a new one is minted)."""
    if value is None or not 1 <= len(value) <= MAX_REQUEST_ID_LENGTH:
        return None
    return value if _SANE.fullmatch(value) else None


def new_request_id() -> str:
    """A fresh id, `req_` and a ULID (sortable by time, like the entities' ids)."""
    return new_id(REQUEST_ID_PREFIX)


def current_request_id() -> str | None:
    """The id of the request (or stored webhook event) being handled in this context, if any."""
    return _request_id.get()


@contextmanager
def request_id_bound(request_id: str | None) -> Iterator[str | None]:
    """Makes `request_id` current for the block (and the tasks it starts)."""
    token = _request_id.set(request_id)
    try:
        yield request_id
    finally:
        _request_id.reset(token)


__all__ = [
    "MAX_REQUEST_ID_LENGTH",
    "REQUEST_ID_HEADER",
    "current_request_id",
    "new_request_id",
    "request_id_bound",
    "sane_request_id",
]
