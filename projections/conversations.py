"""Conversations as the transports need to see them.

- which conversation a platform message belongs to (a user's message or one of Parley's replies), so a
  reply to an answer continues that answer's conversation;
- the newest user message recorded per channel, so the bot can read what it missed while it was down;
- which conversations have messages received but not answered (to finish after a restart).
"""
from __future__ import annotations

import threading

from events import RecordedEvent
from events.catalog import (MessageReceived, MessageRejected, ReplySent, ResponseFailed,
                            ResponseGenerated)


class Conversations:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_message: dict[tuple[str, str], str] = {}
        self._newest: dict[tuple[str, str], str] = {}
        self._unanswered: dict[str, set[str]] = {}

    def apply(self, recorded: RecordedEvent) -> None:
        e = recorded.event
        with self._lock:
            if isinstance(e, (MessageReceived, MessageRejected)):
                self._by_message[(e.source, e.message_id)] = e.conversation_id
                key = (e.source, e.channel_id)
                if _newer(e.message_id, self._newest.get(key)):
                    self._newest[key] = e.message_id
                if isinstance(e, MessageReceived):
                    self._unanswered.setdefault(e.conversation_id, set()).add(e.message_id)
            elif isinstance(e, (ResponseGenerated, ResponseFailed)):
                waiting = self._unanswered.get(e.conversation_id)
                if waiting is not None:
                    waiting.discard(e.message_id)
                    if not waiting:
                        del self._unanswered[e.conversation_id]
            elif isinstance(e, ReplySent):
                for sent in e.sent_message_ids:
                    self._by_message[(e.source, sent)] = e.conversation_id

    def conversation_of(self, source: str, message_id: str) -> str | None:
        with self._lock:
            return self._by_message.get((source, message_id))

    def newest_message(self, source: str, channel_id: str) -> str | None:
        with self._lock:
            return self._newest.get((source, channel_id))

    def channels(self, source: str) -> list[str]:
        with self._lock:
            return [channel for (s, channel) in self._newest if s == source]

    def unanswered_conversations(self) -> list[str]:
        with self._lock:
            return list(self._unanswered)


def _newer(candidate: str, current: str | None) -> bool:
    if current is None:
        return True
    if candidate.isdigit() and current.isdigit():
        return int(candidate) > int(current)  # Discord snowflakes grow with time
    return True
