"""The load–decide–append loop every actor shell runs, with optimistic concurrency.

State is folded from the stream on first use and kept in a bounded cache; an append that meets a
``StreamConflict`` drops the cached state, reloads the stream and decides again.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from events import EventStore, RecordedEvent, StreamConflict
from events.model import Event

S = TypeVar("S")
Publish = Callable[[list[RecordedEvent]], None]

MAX_RETRIES = 10


class DecidedStreams(Generic[S]):
    def __init__(self, store: EventStore, publish: Publish, initial: S, evolve: Callable[[S, Event], S],
                 stream_name: Callable[[str], str], capacity: int = 10_000):
        self._store = store
        self._publish = publish
        self._initial = initial
        self._evolve = evolve
        self._stream_name = stream_name
        self._capacity = capacity
        self._cache: OrderedDict[str, S] = OrderedDict()

    def load(self, key: str) -> S:
        state = self._cache.get(key)
        if state is None:
            state = self._initial
            for recorded in self._store.read_stream(self._stream_name(key)):
                state = self._evolve(state, recorded.event)
            self._remember(key, state)
        else:
            self._cache.move_to_end(key)
        return state

    def execute(self, key: str, decide: Callable[[S], list[Event]]) -> list[RecordedEvent]:
        for _ in range(MAX_RETRIES):
            state = self.load(key)
            new_events = decide(state)
            if not new_events:
                return []
            try:
                recorded = self._store.append(self._stream_name(key), new_events, state.version)  # type: ignore[attr-defined]
            except StreamConflict:
                self._cache.pop(key, None)
                continue
            for event in new_events:
                state = self._evolve(state, event)
            self._remember(key, state)
            self._publish(recorded)
            return recorded
        raise StreamConflict(self._stream_name(key), -1)

    def forget_all(self) -> None:
        """Drop every cached state: the next load reads the log again (after a person was forgotten,
        their words must not linger in memory)."""
        self._cache.clear()

    def _remember(self, key: str, state: S) -> None:
        self._cache[key] = state
        self._cache.move_to_end(key)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
