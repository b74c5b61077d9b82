"""The server's header limits (`paymod.http.server`) on a fake transport, and their settings.

The protocol is fed bytes the way asyncio would feed them, in chunks of any size; the e2e tests
(tests/e2e/test_server_limits.py) run the same limits in a real `paymod serve`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from paymod.config import ConfigError, ServerSettings, load_settings
from paymod.http.server import HeaderLimitedProtocol, header_limited_protocol

LIMIT = 2048
#: Generous: only there to turn a hang into a failure.
HANG = 30.0


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 9000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class App:
    """An ASGI app that answers 200 with the size of the body it read."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        self.calls.append(scope["path"])
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = str(size).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})


def connection(
    app: App, limit: int = LIMIT, timeout: float = HANG
) -> tuple[HeaderLimitedProtocol, FakeTransport]:
    protocol_class = header_limited_protocol(limit, timeout)
    config = Config(app=app, http=protocol_class, lifespan="off", log_config=None)
    protocol = protocol_class(
        config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop()
    )
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def until(condition: Any) -> None:
    deadline = asyncio.get_running_loop().time() + HANG
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.005)


def request(path: str = "/", headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: t"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def test_headers_with_a_large_body_in_the_same_chunk_are_served() -> None:
    app = App()
    protocol, transport = connection(app)

    protocol.data_received(request("/a", body=b"x" * 300_000))
    await until(lambda: b"300000" in transport.written)

    assert transport.written.startswith(b"HTTP/1.1 200 ")
    assert not transport.closed
    assert app.calls == ["/a"]


async def test_pipelined_requests_in_one_chunk_and_in_pieces_are_served() -> None:
    app = App()
    protocol, transport = connection(app)
    data = request("/1", body=b"ab") + request("/2", {"X-Pad": "p" * (LIMIT // 2)}) + request("/3")

    protocol.data_received(data[:10])
    for start in range(10, len(data), 700):
        protocol.data_received(data[start : start + 700])
    await until(lambda: transport.written.count(b"HTTP/1.1 200 ") == 3)

    assert app.calls == ["/1", "/2", "/3"]
    assert not transport.closed


@pytest.mark.parametrize("piece", [1, 100, 1500, 1_000_000])
async def test_headers_over_the_limit_get_431_whatever_the_chunks(piece: int) -> None:
    app = App()
    protocol, transport = connection(app)
    data = request("/big", {"X-Big": "b" * (LIMIT * 4)}, body=b"body")

    fed = 0
    while fed < len(data) and not transport.closed:
        protocol.data_received(data[fed : fed + piece])
        fed += piece
    protocol.data_received(b"more after the refusal")
    await asyncio.sleep(0)

    assert transport.closed
    assert transport.written.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"connection: close" in transport.written
    assert b'"request_header_fields_too_large"' in transport.written
    assert app.calls == []
    # Nothing past the limit (and the chunk that crossed it) was taken in.
    assert fed <= LIMIT + piece + len(b"POST /big HTTP/1.1\r\n")


async def test_many_small_headers_over_the_limit_get_431() -> None:
    app = App()
    protocol, transport = connection(app)

    protocol.data_received(request("/h", {f"X-{n}": "v" * 50 for n in range(100)}))
    await asyncio.sleep(0)

    assert transport.written.startswith(b"HTTP/1.1 431 ")
    assert transport.closed and app.calls == []


async def test_the_limit_applies_to_each_request_of_a_connection() -> None:
    app = App()
    protocol, transport = connection(app)
    under = {"X-Pad": "p" * (LIMIT - 200)}

    for _ in range(3):
        protocol.data_received(request("/ok", under))
    await until(lambda: transport.written.count(b"HTTP/1.1 200 ") == 3)
    protocol.data_received(request("/big", {"X-Pad": "p" * (LIMIT + 1)}))
    await until(lambda: transport.closed)

    assert transport.written.count(b"HTTP/1.1 431 ") == 1
    assert app.calls == ["/ok"] * 3


async def test_a_stalled_request_gets_408_and_is_closed() -> None:
    app = App()
    protocol, transport = connection(app, timeout=0.05)

    protocol.data_received(b"POST /slow HTTP/1.1\r\nHost: t\r\n")
    await until(lambda: transport.closed)

    assert transport.written.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b'"request_timeout"' in transport.written
    assert app.calls == []


async def test_a_silent_connection_is_closed_without_an_answer() -> None:
    _protocol, transport = connection(App(), timeout=0.05)

    await until(lambda: transport.closed)

    assert transport.written == b""


async def test_the_timer_stops_at_the_end_of_the_headers_and_restarts_with_the_next_request() -> None:
    app = App()
    protocol, transport = connection(app, timeout=0.05)

    protocol.data_received(request("/1"))
    await until(lambda: b"HTTP/1.1 200 " in transport.written)
    # Idle between requests: uvicorn's keep-alive timeout (5 s by default) applies, not this one.
    await asyncio.sleep(0.2)
    assert not transport.closed
    protocol.data_received(b"POST /2 HTTP/1.1\r\n")
    await until(lambda: transport.closed)

    assert transport.written.count(b"HTTP/1.1 408 ") == 1
    assert app.calls == ["/1"]
    protocol.connection_lost(None)


async def test_a_body_that_takes_long_is_not_cut_by_the_header_timeout() -> None:
    app = App()
    protocol, transport = connection(app, timeout=0.05)

    protocol.data_received(request("/upload", body=b"x" * 10)[:-5])
    await asyncio.sleep(0.2)
    protocol.data_received(b"xxxxx")
    await until(lambda: b"HTTP/1.1 200 " in transport.written)

    assert not transport.closed


def test_the_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        header_limited_protocol(0, 1)
    with pytest.raises(ValueError):
        header_limited_protocol(1024, 0)


# -- settings -----------------------------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.upper().startswith("PAYMOD_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_server_settings_default_to_16_kib_and_10_seconds(clean_env: pytest.MonkeyPatch) -> None:
    server = load_settings().server

    assert server == ServerSettings(header_limit=16 * 1024, header_timeout=10.0)


def test_server_settings_come_from_the_file_and_the_environment_wins(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "paymod.toml"
    config.write_text("[server]\nheader_limit = 8192\nheader_timeout = 3\n")
    clean_env.setenv("PAYMOD_CONFIG", str(config))

    assert load_settings().server == ServerSettings(header_limit=8192, header_timeout=3)
    clean_env.setenv("PAYMOD_SERVER__HEADER_TIMEOUT", "0.5")
    assert load_settings().server == ServerSettings(header_limit=8192, header_timeout=0.5)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PAYMOD_SERVER__HEADER_LIMIT", "10"),
        ("PAYMOD_SERVER__HEADER_LIMIT", "lots"),
        ("PAYMOD_SERVER__HEADER_TIMEOUT", "0"),
        ("PAYMOD_SERVER__HEADER_SIZE", "1"),
        ("PAYMOD_SERVER__", "1"),
    ],
)
def test_wrong_server_settings_are_configuration_errors(
    clean_env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    clean_env.setenv(name, value)

    with pytest.raises(ConfigError):
        load_settings()
