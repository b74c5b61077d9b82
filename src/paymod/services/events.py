"""In-process subscribers to the module's events (delivered from the outbox by the worker)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Event = dict[str, Any]
Subscriber = Callable[[Event], Awaitable[None]]


class Subscribers:
    """Handlers by event name ("*" for every event). Delivery is at least once: handlers dedupe by id."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Subscriber]] = {}

    def subscribe(self, name: str, handler: Subscriber) -> None:
        self._handlers.setdefault(name, []).append(handler)

    def for_event(self, name: str) -> list[Subscriber]:
        return [*self._handlers.get(name, ()), *self._handlers.get("*", ())]
