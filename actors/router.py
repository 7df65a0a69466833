"""The Router: a table from command type to the actor that owns it, and from event type to subscribers.

``dispatch`` only enqueues (pykka ``tell``), so the asyncio loop can call it and never wait.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

from events import RecordedEvent

log = logging.getLogger("parley.router")
ALL = "*"


class UnroutedCommand(LookupError):
    pass


class Router:
    def __init__(self) -> None:
        self._handlers: dict[type, Callable[[object], None]] = {}
        self._subscribers: dict[str, list[Callable[[RecordedEvent], None]]] = defaultdict(list)

    def route(self, command_type: type, handler: Callable[[object], None]) -> None:
        self._handlers[command_type] = handler

    def dispatch(self, command: object) -> None:
        try:
            handler = self._handlers[type(command)]
        except KeyError:
            raise UnroutedCommand(f"no actor handles {type(command).__name__}") from None
        handler(command)

    def subscribe(self, handler: Callable[[RecordedEvent], None], *event_types: str) -> None:
        for name in event_types or (ALL,):
            self._subscribers[name].append(handler)

    def publish(self, recorded: list[RecordedEvent]) -> None:
        for r in recorded:
            for handler in self._subscribers.get(r.type_name, []) + self._subscribers.get(ALL, []):
                try:
                    handler(r)
                except Exception:  # one broken subscriber must not stop the others hearing the event
                    log.exception("subscriber %r failed on %s", handler, r.type_name)
