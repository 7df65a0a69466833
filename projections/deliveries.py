"""Replies decided but not yet delivered: what the outbox must (re)send after a restart."""
from __future__ import annotations

import threading

from events import RecordedEvent
from events.catalog import REPLY_EVENTS, AboutMessage, ReplyDeliveryFailed, ReplySent


class PendingReplies:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], AboutMessage] = {}  # (source, user message id) -> reply event
        self._settled: set[tuple[str, str]] = set()

    def apply(self, recorded: RecordedEvent) -> None:
        e = recorded.event
        with self._lock:
            if isinstance(e, REPLY_EVENTS):
                key = (e.source, e.message_id)
                if key not in self._settled:
                    self._pending[key] = e
            elif isinstance(e, (ReplySent, ReplyDeliveryFailed)):
                key = (e.source, e.message_id)
                self._settled.add(key)
                self._pending.pop(key, None)

    def pending(self, source: str | None = None) -> list[AboutMessage]:
        with self._lock:
            return [e for (s, _), e in self._pending.items() if source is None or s == source]

    def delivered(self) -> int:
        with self._lock:
            return len(self._settled)
