"""`paymod serve` limits request headers: a request whose line and headers exceed the limit gets 431
and its connection is closed while the client is still sending; a request whose headers do not
arrive within the header timeout is closed (408); memory stays bounded under many such clients; and
a normal keep-alive client is served all along.

These tests run a real `paymod serve` and talk to it with raw sockets. The HTTP edge does not
depend on the database, so they run on SQLite only.
"""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from e2e.support import ADMIN_KEY, Server, running_server

pytestmark = pytest.mark.parametrize("database", ["sqlite"])

#: Generous: only there to turn a hang into a failure, never a performance goal.
HANG = 60.0
DEFAULT_LIMIT = 16 * 1024
HEADER_TIMEOUT = "1"


def port_of(server: Server) -> int:
    port = urlsplit(server.base_url).port
    assert port is not None
    return port


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port_of(server)), timeout=HANG)
    sock.settimeout(HANG)
    return sock


def rss_mib(server: Server) -> float:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset also ends it)."""
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return bytes(data)


class Responses:
    """Reads HTTP/1.1 responses (with a Content-Length) one after the other from one connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"connection closed; received so far: {self.buffer[:200]!r}"
        self.buffer += chunk

    def next(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body


def request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: paymod.test"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def assert_keep_alive_client_is_served(server: Server) -> None:
    """One connection: a GET, a POST whose body arrives with its headers, two pipelined GETs."""
    with connect(server) as sock:
        responses = Responses(sock)
        sock.sendall(request("GET", "/health"))
        status, headers, _ = responses.next()
        assert status == 200 and headers.get("connection") != "close"

        body = json.dumps(
            {"amount": "12.5", "currency_code": "usd", "metadata": {"note": "x" * 300_000}}
        ).encode()
        sock.sendall(
            request(
                "POST",
                "/admin/payment-collections",
                {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
                body,
            )
        )
        status, _, created = responses.next()
        assert status == 200, created[:300]
        assert json.loads(created)["payment_collection"]["amount"] == 12.5

        # Headers just under the limit are served.
        sock.sendall(request("GET", "/health", {"X-Pad": "p" * (DEFAULT_LIMIT - 1024)}))
        assert responses.next()[0] == 200

        sock.sendall(request("GET", "/health") + request("GET", "/health?again=1"))
        assert responses.next()[0] == 200
        assert responses.next()[0] == 200


def stream_oversized_header(server: Server, total: int) -> tuple[bytes, int]:
    """Sends a request whose one header grows up to `total` bytes while reading the answer; returns
    what the server answered and how many bytes were sent before the server stopped it."""
    sock = connect(server)
    sent = 0

    def send() -> None:
        nonlocal sent
        chunk = b"a" * 65536
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: paymod.test\r\nX-Big: ")
            while sent < total:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server closed the connection: what this test wants

    sender = threading.Thread(target=send)
    sender.start()
    try:
        answer = read_until_closed(sock)
    finally:
        sender.join(HANG)
        sock.close()
    assert not sender.is_alive(), "the client could still send after the server answered"
    return answer, sent


def assert_431(answer: bytes) -> None:
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    assert json.loads(body)["code"] == "request_header_fields_too_large"


def wait_until_all_closed(socks: list[socket.socket]) -> dict[socket.socket, bytes]:
    """What each connection received before the server closed it (fails if one stays open)."""
    received: dict[socket.socket, bytes] = {sock: b"" for sock in socks}
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    deadline = time.monotonic() + HANG
    open_ = set(socks)
    while open_ and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            sock: Any = key.fileobj
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except BlockingIOError:
                continue
            if chunk:
                received[sock] += chunk
            else:
                selector.unregister(sock)
                open_.discard(sock)
    selector.close()
    assert not open_, f"{len(open_)} connections still open"
    return received


@contextmanager
def server_with(
    database_url: str, directory: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[Server]:
    with running_server(database_url, directory, extra_env=env, serve_args=("--no-worker", *args)) as server:
        yield server


def test_headers_over_the_limit_get_431_and_the_connection_closes(database_url: str, tmp_path: Path) -> None:
    with server_with(database_url, tmp_path) as server:
        assert_keep_alive_client_is_served(server)

        # One header that keeps growing: answered and closed while the client is still sending.
        total = 64 * 1024 * 1024
        answer, sent = stream_oversized_header(server, total)
        assert_431(answer)
        assert sent < total
        assert_keep_alive_client_is_served(server)

        # Many small headers over the limit, sent in one piece (the parser sees them all at once).
        with connect(server) as sock:
            sock.sendall(request("GET", "/health", {f"X-H{n}": "v" * 100 for n in range(200)}))
            assert_431(read_until_closed(sock))

        # A request line (URL) over the limit.
        with connect(server) as sock:
            sock.sendall(request("GET", "/health?" + "q" * (DEFAULT_LIMIT + 1)))
            assert_431(read_until_closed(sock))

        # After a served request on a keep-alive connection, the next request is limited too.
        with connect(server) as sock:
            responses = Responses(sock)
            sock.sendall(request("GET", "/health"))
            assert responses.next()[0] == 200
            sock.sendall(request("GET", "/health", {"X-Big": "b" * (DEFAULT_LIMIT + 1)}))
            assert_431(responses.buffer + read_until_closed(sock))
        assert_keep_alive_client_is_served(server)


def test_the_header_limit_is_configurable(database_url: str, tmp_path: Path) -> None:
    with server_with(database_url, tmp_path, env={"PAYMOD_SERVER__HEADER_LIMIT": "4096"}) as server:
        with connect(server) as sock:
            sock.sendall(request("GET", "/health", {"X-Pad": "p" * 5000}))
            assert_431(read_until_closed(sock))
        with connect(server) as sock:
            sock.sendall(request("GET", "/health", {"X-Pad": "p" * 3000}))
            assert Responses(sock).next()[0] == 200


def test_a_stalled_request_is_closed_after_the_header_timeout(database_url: str, tmp_path: Path) -> None:
    with server_with(database_url, tmp_path, env={"PAYMOD_SERVER__HEADER_TIMEOUT": HEADER_TIMEOUT}) as server:
        half_line = connect(server)
        half_line.sendall(b"GET /hea")
        half_headers = connect(server)
        half_headers.sendall(b"POST /admin/payment-collections HTTP/1.1\r\nHost: paymod.test\r\nX-A: 1\r\n")
        silent = connect(server)
        # A keep-alive client that waits longer than the header timeout between two requests.
        idle_between = connect(server)
        responses = Responses(idle_between)
        idle_between.sendall(request("GET", "/health"))
        assert responses.next()[0] == 200

        for sock in (half_line, half_headers):
            answer = read_until_closed(sock)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert json.loads(answer.partition(b"\r\n\r\n")[2])["code"] == "request_timeout"
            sock.close()
        # Connected and said nothing: closed without an answer.
        assert read_until_closed(silent) == b""
        silent.close()

        # The idle keep-alive connection was left to uvicorn's keep-alive timeout (5 s): it still works.
        idle_between.sendall(request("GET", "/health"))
        assert responses.next()[0] == 200
        idle_between.close()
        assert_keep_alive_client_is_served(server)


def test_many_slow_or_oversized_clients_are_closed_and_memory_stays_bounded(
    database_url: str, tmp_path: Path
) -> None:
    with server_with(database_url, tmp_path, args=("--header-timeout", HEADER_TIMEOUT)) as server:
        assert_keep_alive_client_is_served(server)
        before = rss_mib(server)

        # 16 clients each trying to send a 32 MiB header at once (the server used to buffer them all).
        answers: list[bytes] = []
        total = 32 * 1024 * 1024

        def oversized() -> None:
            answers.append(stream_oversized_header(server, total)[0])

        clients = [threading.Thread(target=oversized) for _ in range(16)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(HANG)
        assert len(answers) == 16
        for answer in answers:
            assert_431(answer)

        # 200 clients that send most of a request's headers (under the limit) and stall.
        stalled = []
        for n in range(200):
            sock = connect(server)
            sock.sendall(
                b"POST /admin/payment-collections HTTP/1.1\r\nHost: paymod.test\r\n"
                + f"X-Pad-{n}: ".encode()
                + b"p" * (DEFAULT_LIMIT - 2048)
            )
            stalled.append(sock)
        while_stalled = rss_mib(server)
        received = wait_until_all_closed(stalled)
        for sock in stalled:
            assert received[sock].startswith(b"HTTP/1.1 408 "), received[sock][:200]
            sock.close()
        after = rss_mib(server)

        # Generous bounds: 16 x 32 MiB of headers would be 512 MiB held at once.
        assert while_stalled - before < 100, (before, while_stalled)
        assert after - before < 100, (before, after)
        assert_keep_alive_client_is_served(server)
