"""The load–decide–append loop every actor shell runs, with optimistic concurrency.

State is folded from the stream on first use and kept in a bounded cache; an append that meets a
``StreamConflict`` drops the cached state, reloads the stream and decides again. A stream that has grown
by ``snapshot_every`` events since its last snapshot gets a new one (``events.snapshots``, where the store
keeps them), and a cold load starts from the newest snapshot: loading a long stream costs its tail only.
"""
from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from events import EventStore, RecordedEvent, StreamConflict
from events import snapshots as snapshot_codec
from events.model import Event

log = logging.getLogger("parley.streams")

S = TypeVar("S")
Publish = Callable[[list[RecordedEvent]], None]

MAX_RETRIES = 10
SNAPSHOT_EVERY = 1000  # events folded since the last snapshot before a new one is written


class DecidedStreams(Generic[S]):
    def __init__(self, store: EventStore, publish: Publish, initial: S, evolve: Callable[[S, Event], S],
                 stream_name: Callable[[str], str], capacity: int = 10_000, snapshot_every: int = SNAPSHOT_EVERY,
                 fold: Callable[[S, Iterable[Event]], S] | None = None, shared: bool = False):
        self._store = store
        # Shared: another actor appends to these streams too (the Trainer and the FineTuner to ``learning``), so
        # each load reads what it appended since; a decision never meets a dataset or a job it has not seen.
        self._shared = shared
        self._publish = publish
        self._initial = initial
        self._evolve = evolve
        # A decider's own fold, when evolving event by event is slow for long streams (it must equal it).
        self._fold = fold or (lambda state, events: functools.reduce(evolve, events, state))
        self._stream_name = stream_name
        self._capacity = capacity
        self._cache: OrderedDict[str, S] = OrderedDict()
        self._snapshot_every = snapshot_every
        self._code = snapshot_codec.fingerprint(evolve)
        self._snapshotted: dict[str, int] = {}  # stream -> the version of its newest snapshot

    def load(self, key: str) -> S:
        state = self._cache.get(key)
        if state is None:
            stream = self._stream_name(key)
            state = self._from_snapshot(stream)
            tail = self._store.read_stream(stream, after_version=state.version)  # type: ignore[attr-defined]
            state = self._fold(state, (recorded.event for recorded in tail))
            self._remember(key, state)
            self._maybe_snapshot(stream, state)
        else:
            self._cache.move_to_end(key)
            if self._shared:
                tail = list(self._store.read_stream(self._stream_name(key), after_version=state.version))  # type: ignore[attr-defined]
                if tail:
                    state = self._fold(state, (recorded.event for recorded in tail))
                    self._remember(key, state)
        return state

    def _from_snapshot(self, stream: str) -> S:
        snapshots = self._store.snapshots if self._snapshot_every else None
        found = snapshots.get(stream, self._code) if snapshots is not None else None
        if found is None:
            return self._initial
        version, data = found
        try:
            state = snapshot_codec.decode(data)
        except Exception as e:  # noqa: BLE001  (a damaged or foreign snapshot: fold from the log instead)
            log.warning("ignoring the snapshot of %s (%r)", stream, e)
            return self._initial
        if type(state) is not type(self._initial) or state.version != version:  # type: ignore[attr-defined]
            return self._initial
        self._snapshotted[stream] = version
        return state

    def _maybe_snapshot(self, stream: str, state: S) -> None:
        version = state.version  # type: ignore[attr-defined]
        if not self._snapshot_every or version - self._snapshotted.get(stream, 0) < self._snapshot_every:
            return
        snapshots = self._store.snapshots
        if snapshots is None:
            return
        try:
            snapshots.put(stream, self._code, version, snapshot_codec.encode(state))
            self._snapshotted[stream] = version
        except Exception as e:  # noqa: BLE001  (a cache: the log still has everything)
            log.warning("could not snapshot %s (%r)", stream, e)
            self._snapshotted[stream] = version  # not again at once

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
            self._maybe_snapshot(self._stream_name(key), state)
            self._publish(recorded)
            return recorded
        raise StreamConflict(self._stream_name(key), -1)

    def forget_all(self) -> None:
        """Drop every cached state: the next load reads the log again (after a person was forgotten,
        their words must not linger in memory; the store has dropped the snapshots)."""
        self._cache.clear()
        self._snapshotted.clear()

    def _remember(self, key: str, state: S) -> None:
        self._cache[key] = state
        self._cache.move_to_end(key)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
