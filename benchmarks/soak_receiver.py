"""The soak's webhook receivers: `python -m benchmarks.soak_receiver --out FILE`.

Two loopback HTTP servers in one small process, started by `benchmarks.soak`:

* **live** answers every request `200 {}` at once and appends one line per request to `--out`:
  `<arrival unix time> <event id>` (the `Paymod-Event-Id` header, else the body's `id`). It verifies
  nothing else (no signature check): the soak only counts what arrived, and when;
* **hang** (`--hang`) accepts connections, reads whatever comes and never answers, like an endpoint
  whose host stopped responding.

It prints `{"live": port, "hang": port|null}` on its first stdout line once both listen, and runs
until SIGTERM/SIGINT. It runs in its own process so the arrival times are not delayed by the soak's
clients (which share the soak process's event loop).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
RESPONSE_CLOSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
)
EVENT_ID_HEADER = "paymod-event-id"


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # the empty trailer
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0") or 0)
    return await reader.readexactly(length) if length else b""


def _event_id(headers: dict[str, str], body: bytes) -> str:
    event_id = headers.get(EVENT_ID_HEADER)
    if event_id:
        return event_id
    try:
        document = json.loads(body)
    except ValueError:
        return "-"
    return str(document.get("id", "-")) if isinstance(document, dict) else "-"


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def live_handler(out: TextIO) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = _headers(head)
                body = await _body(reader, headers)
                out.write(f"{time.time():.6f} {_event_id(headers, body)}\n")
                close = headers.get("connection", "").lower() == "close"
                writer.write(RESPONSE_CLOSE if close else RESPONSE)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return handle


async def hang_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(out_path: Path, hang: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with out_path.open("a", buffering=1, encoding="utf-8") as out:
        live = await asyncio.start_server(live_handler(out), "127.0.0.1", 0, backlog=512)
        hanging = await asyncio.start_server(hang_handler, "127.0.0.1", 0, backlog=512) if hang else None
        ports = {
            "live": live.sockets[0].getsockname()[1],
            "hang": hanging.sockets[0].getsockname()[1] if hanging else None,
        }
        print(json.dumps(ports), flush=True)
        await stop.wait()
        live.close()
        if hanging is not None:
            hanging.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="file the live receiver appends to")
    parser.add_argument("--hang", action="store_true", help="also run a server that never answers")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.out, args.hang))


if __name__ == "__main__":
    main()
