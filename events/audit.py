"""Checking the log against its hash chain (``events.chain``): the first position where they disagree."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from events.chain import GENESIS, link
from events.store import EventStore


@dataclass(frozen=True)
class Verdict:
    events: int  # events checked against the chain
    head: str  # the hash of the last one ("" for an empty chain)
    last_position: int
    chain_starts: int  # the first chained position (events before it predate the chain); 0 for none
    bad_position: int = 0  # 0: intact
    problem: str = ""

    @property
    def intact(self) -> bool:
        return not self.bad_position and not self.problem


def verify(store: EventStore, expect_head: str = "", progress: Callable[[int], None] | None = None) -> Verdict:
    """Recompute every link. Finds an altered, removed, inserted or reordered stored event (and with
    ``expect_head``, a head recorded earlier, a truncated tail or a rewritten chain)."""
    chain: Iterator[tuple[int, str]] = store.chain()
    pending = next(chain, None)
    previous, checked, starts, last = GENESIS, 0, 0, 0
    seen_heads = {expect_head: False} if expect_head else {}

    def bad(position: int, problem: str) -> Verdict:
        return Verdict(checked, previous if checked else "", last, starts, position, problem)

    for position, stream, version, topic, state in store.stored_rows():
        while pending is not None and pending[0] < position:
            return bad(pending[0], "a hash is recorded for an event that is no longer in the log (removed)")
        if pending is None or pending[0] != position:
            if starts:
                return bad(position, "this event is not in the hash chain (inserted after the fact)")
            continue  # written before the log had a hash chain
        starts = starts or position
        if link(previous, position, stream, version, topic, _raw(state)) != pending[1]:
            return bad(position, "the stored event does not match its hash (altered, reordered, or an event just "
                                 "before it was removed)")
        previous, last, checked = pending[1], position, checked + 1
        if expect_head and previous == expect_head:
            seen_heads[expect_head] = True
        pending = next(chain, None)
        if progress is not None and checked % 10_000 == 0:
            progress(checked)
    if pending is not None:
        return bad(pending[0], "a hash is recorded for an event that is no longer in the log (removed)")
    if expect_head and not seen_heads[expect_head]:
        return Verdict(checked, previous if checked else "", last, starts, last + 1,
                       f"the expected head {expect_head[:16]}… is not in the chain: the log was truncated after "
                       f"position {last} or rewritten")
    return Verdict(checked, previous if checked else "", last, starts)


def _raw(state: object) -> bytes:
    """The stored bytes (a hand-edited SQLite row may hold text instead of a blob)."""
    return state.encode() if isinstance(state, str) else bytes(state)  # type: ignore[arg-type]


def export_rows(store: EventStore, keep: Callable[[bytes], bool]) -> Iterator[dict]:
    """Chained events with their hashes, for ``audit export``; ``keep`` chooses by stored bytes."""
    chain = store.chain()
    pending = next(chain, None)
    previous = GENESIS
    for position, stream, version, topic, state in store.stored_rows():
        while pending is not None and pending[0] < position:
            pending = next(chain, None)
        if pending is None or pending[0] != position:
            continue
        if keep(_raw(state)):
            yield {"position": position, "stream": stream, "version": version, "type": topic,
                   "state": _raw(state).decode("utf-8"), "prev": previous, "hash": pending[1]}
        previous = pending[1]
        pending = next(chain, None)
