"""The HTTP server `paymod serve` runs: uvicorn's httptools protocol with limits on request headers.

uvicorn buffers a request's URL and headers without bound and waits for them without a deadline, so
one client could make the server hold a 32 MiB header, or keep a thousand half-sent requests open
for minutes. This protocol adds two limits, both per connection:

* **header size**: once a request's line and headers exceed `header_limit` bytes, the server
  answers `431 Request Header Fields Too Large` and closes the connection; it reads no more of it.
* **header timeout**: a request's line and headers must arrive within `header_timeout` seconds,
  counted from the connection's start for its first request and from a request's first byte for
  the next ones (uvicorn's keep-alive timeout covers the idle time between requests). A connection
  that misses the deadline is closed, after a `408 Request Timeout` when part of a request came.

The cost on the hot path is a few attribute updates per request and a length sum per received
chunk: no per-byte work in Python (httptools parses in C), no timer scheduled per request (one
timer per connection, re-armed only when it fires before a deadline moved on), and the header
lines are measured only when a request's chunks exceeded the limit or it was pipelined.

`server_config` is the whole uvicorn configuration of `paymod serve`: these limits, logging left to
the process, and a bounded graceful shutdown.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, Protocol

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

DEFAULT_HEADER_LIMIT = 16 * 1024
DEFAULT_HEADER_TIMEOUT = 10.0
HEADER_TOO_LARGE = 431
REQUEST_TIMEOUT = 408
# What a header line adds to its name and value: ": " and CRLF.
_HEADER_LINE_OVERHEAD = 4
# A timer may fire this much before its time (the loop's clock resolution): it is then due.
_TIMER_SLACK = 0.01


class ServerLimits(Protocol):
    """What `server_config` reads of the `[server]` settings (`paymod.config.ServerSettings`)."""

    @property
    def header_limit(self) -> int: ...

    @property
    def header_timeout(self) -> float: ...

    @property
    def shutdown_grace(self) -> float: ...


def _error_response(status: int, code: str, message: str) -> tuple[bytes, bytes]:
    """The head (without its final CRLF) and body of an error the server answers itself, closing the
    connection: the API's error shape."""
    body = json.dumps({"type": "invalid_data", "code": code, "message": message}).encode()
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n",
        ]
    ), body


class HeaderLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header size limit and a header-read timeout.

    Use `header_limited_protocol(limit, timeout)` for a class with other limits than the defaults.
    """

    header_limit: int = DEFAULT_HEADER_LIMIT
    header_timeout: float = DEFAULT_HEADER_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Between a request's start (or the connection's) and the end of its headers.
        self._reading_headers = True
        #: Bytes of the chunks received while reading the current headers. Headers still incomplete:
        #: all of them are header bytes, so this bounds what the parser holds. Headers complete: a
        #: chunk may also have carried the start of the body, so it is only a hint to measure them.
        self._received = 0
        #: The current request began in the chunk that ended the previous one (pipelining): its
        #: first bytes were not counted, so its headers are measured when they are complete.
        self._unmeasured = False
        self._ended_in_this_chunk = False
        #: A byte of the current request came (a timeout then gets a 408, not a silent close).
        self._request_begun = False
        #: When the current headers must have arrived (None: not waiting for headers).
        self._deadline: float | None = None
        #: One timer per connection at a time, re-armed only when it fires early: no timer is
        #: scheduled and cancelled per request.
        self._timer: asyncio.TimerHandle | None = None
        #: The connection was answered by this protocol and is closing: parse nothing more.
        self._refused = False

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._reading_headers:
            self._received += len(data)
        self._ended_in_this_chunk = False
        super().data_received(data)
        # Headers still incomplete after this chunk: what the parser holds is at most `_received`.
        if self._reading_headers and self._received > self.header_limit and not self._refused:
            self._refuse_oversized()

    # -- httptools parser callbacks -----------------------------------------------------------
    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        self._request_begun = True
        self._unmeasured = self._ended_in_this_chunk
        if self._deadline is None:  # the first request keeps the deadline counted from connect
            self._expect_headers()

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._deadline = None
        if (
            self._unmeasured or self._received > self.header_limit
        ) and self._header_size() > self.header_limit:
            self._refuse_oversized()
            return
        self._reading_headers = False
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._reading_headers = True
        self._request_begun = False
        self._received = 0
        self._ended_in_this_chunk = True

    # -- limits -------------------------------------------------------------------------------
    def _header_size(self) -> int:
        """The request line's URL and the header lines, as parsed."""
        return len(self.url) + sum(
            len(name) + len(value) + _HEADER_LINE_OVERHEAD for name, value in self.headers
        )

    def _expect_headers(self) -> None:
        self._deadline = self.loop.time() + self.header_timeout
        if self._timer is None:
            self._timer = self.loop.call_at(self._deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self._timer = None
        if self._deadline is None or self._refused:
            return
        if self._deadline - self.loop.time() > _TIMER_SLACK:
            # A later request moved the deadline on since this timer was set.
            self._timer = self.loop.call_at(self._deadline, self._check_deadline)
            return
        if self._request_begun:
            self._refuse(
                REQUEST_TIMEOUT,
                "request_timeout",
                f"The request's headers did not arrive within {self.header_timeout:g} seconds.",
            )
        else:
            # Connected and sent nothing: there is no request to answer.
            self._refuse(None, "", "")

    def _refuse_oversized(self) -> None:
        self._refuse(
            HEADER_TOO_LARGE,
            "request_header_fields_too_large",
            f"The request's line and headers are larger than {self.header_limit} bytes.",
        )

    def _refuse(self, status: int | None, code: str, message: str) -> None:
        """Answers `status` (unless a response is under way on this connection) and closes it."""
        self._refused = True
        self._deadline = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        answering = status is not None and (self.cycle is None or self.cycle.response_complete)
        if answering and status is not None:
            head, body = _error_response(status, code, message)
            defaults = b"".join(
                name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
            )
            transport.write(head + defaults + b"\r\n" + body)
            self.logger.debug("%s; closing the connection", message)
        transport.close()


def header_limited_protocol(
    header_limit: int = DEFAULT_HEADER_LIMIT, header_timeout: float = DEFAULT_HEADER_TIMEOUT
) -> type[HeaderLimitedProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` with these limits (bytes, seconds)."""
    if header_limit < 1:
        raise ValueError("header_limit must be a positive number of bytes")
    if header_timeout <= 0:
        raise ValueError("header_timeout must be a positive number of seconds")

    class Configured(HeaderLimitedProtocol):
        pass

    Configured.header_limit = header_limit
    Configured.header_timeout = header_timeout
    Configured.__name__ = Configured.__qualname__ = "HeaderLimitedProtocol"
    return Configured


def server_config(
    app: ASGIApp,
    limits: ServerLimits,
    *,
    host: str,
    port: int,
    log_level: str = "info",
) -> uvicorn.Config:
    """How `paymod serve` runs uvicorn.

    - Its headers limits (`header_limited_protocol`).
    - No access log of its own: the app logs one line per request with its route, duration and
      request id (`paymod.observability.requests`). No logging configuration of its own either: its
      lines go through the process's (`paymod.observability.logs.configure_logging`).
    - Graceful shutdown on SIGTERM or SIGINT: the server stops accepting connections, closes the idle
      ones, and lets the requests in flight finish for up to `limits.shutdown_grace` seconds (then
      they are cancelled: a money flow cut short stays resumable, see docs/workflows.md). The app's
      lifespan then stops the in-process worker, which hands back what it claimed.
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,
        access_log=False,
        lifespan="on",
        http=header_limited_protocol(limits.header_limit, limits.header_timeout),
        timeout_graceful_shutdown=max(1, math.ceil(limits.shutdown_grace)),
    )


__all__ = [
    "DEFAULT_HEADER_LIMIT",
    "DEFAULT_HEADER_TIMEOUT",
    "HeaderLimitedProtocol",
    "header_limited_protocol",
    "server_config",
]
