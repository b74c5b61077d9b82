"""A loopback receiver for the webhooks localstripe signs and POSTs (until the HTTP app exists)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

DELIVERY_TIMEOUT = 20.0


@dataclass
class WebhookReceiver:
    """Collects what localstripe POSTs: (raw body, headers) per delivery."""

    url: str
    deliveries: asyncio.Queue[tuple[bytes, dict[str, str]]] = field(default_factory=asyncio.Queue)

    async def next_event(self, event_type: str, object_id: str) -> tuple[bytes, dict[str, str]]:
        """The delivery of `event_type` about `object_id` (localstripe sends about 1 s after the fact)."""
        async with asyncio.timeout(DELIVERY_TIMEOUT):
            while True:
                raw, headers = await self.deliveries.get()
                event = json.loads(raw)
                if event.get("type") == event_type and event["data"]["object"].get("id") == object_id:
                    return raw, headers


async def serve_hook(
    receiver: WebhookReceiver, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        length = int({k.lower(): v for k, v in headers.items()}.get("content-length", "0"))
        body = await reader.readexactly(length)
        receiver.deliveries.put_nowait((body, headers))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
    finally:
        writer.close()
