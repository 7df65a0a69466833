"""Checking the log against its hash chain (``events.chain``): the first position where they disagree."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hashlib import sha256

from events.chain import GENESIS
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
    orphan = store.first_orphan_hash()  # a hash whose event is gone
    previous, checked, starts, last = GENESIS, 0, 0, 0
    seen_head = False

    def bad(position: int, problem: str) -> Verdict:
        return Verdict(checked, previous if checked else "", last, starts, position, problem)

    removed = "a hash is recorded for an event that is no longer in the log (removed)"
    for position, stream, version, topic, state, stored in store.chained_rows():
        if orphan is not None and orphan < position:
            return bad(orphan, removed)
        if stored is None:
            if starts:
                return bad(position, "this event is not in the hash chain (inserted after the fact)")
            continue  # written before the log had a hash chain
        starts = starts or position
        # events.chain.link, inlined: this loop runs once per event in the log.
        s = len(stream) if stream.isascii() else len(stream.encode())
        t = len(topic) if topic.isascii() else len(topic.encode())
        head = f"{previous}\n{position}\n{version}\n{s}:{stream}\n{t}:{topic}\n".encode()
        if sha256(head + (state if type(state) is bytes else _raw(state))).hexdigest() != stored:
            return bad(position, "the stored event does not match its hash (altered, reordered, or an event just "
                                 "before it was removed)")
        previous, last = stored, position
        checked += 1
        if previous == expect_head:
            seen_head = True
        if progress is not None and not checked % 100_000:
            progress(checked)
    if orphan is not None:
        return bad(orphan, removed)
    if expect_head and not seen_head:
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


@dataclass(frozen=True)
class Stretch:
    """What one worker found in positions ``lo``..``hi``."""

    lo: int
    checked: int = 0
    first_chained: int = 0
    first_unchained_after_chain: int = 0  # an event without a hash after a chained one (in this stretch)
    first_unchained: int = 0
    last: int = 0
    head: str = ""
    bad_position: int = 0
    problem: str = ""
    saw_head: bool = False


def _check_stretch(spec: str, data_dir: str, lo: int, hi: int, expect_head: str) -> Stretch:
    """Check the links of positions lo..hi: each stored hash against the stored hash before it (so
    stretches are checked in parallel; together they check the whole chain)."""
    from events.store import open_store

    store = open_store(spec, Path(data_dir), create=False)
    try:
        previous = store.hash_before(lo) or GENESIS
        checked = first_chained = first_unchained = after_chain = last = 0
        saw = False
        for position, stream, version, topic, state, stored in store.chained_rows(after=lo - 1):
            if position > hi:
                break
            if stored is None:
                first_unchained = first_unchained or position
                if first_chained and not after_chain:
                    after_chain = position
                continue
            first_chained = first_chained or position
            s = len(stream) if stream.isascii() else len(stream.encode())
            t = len(topic) if topic.isascii() else len(topic.encode())
            head = f"{previous}\n{position}\n{version}\n{s}:{stream}\n{t}:{topic}\n".encode()
            if sha256(head + (state if type(state) is bytes else _raw(state))).hexdigest() != stored:
                return Stretch(lo, checked, first_chained, after_chain, first_unchained, last, previous, position,
                               "the stored event does not match its hash (altered, reordered, or an event just "
                               "before it was removed)", saw)
            previous, last, checked = stored, position, checked + 1
            saw = saw or stored == expect_head
        return Stretch(lo, checked, first_chained, after_chain, first_unchained, last, previous, saw_head=saw)
    finally:
        store.close()


def verify_parallel(spec: str, data_dir: Path, expect_head: str = "", workers: int = 0,
                    small: int = 200_000) -> Verdict:
    """``verify`` with one process per core on a log of more than ``small`` events (the same verdict)."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from events.store import open_store

    store = open_store(spec, Path(data_dir), create=False)
    try:
        head = store.head()
        workers = workers or os.cpu_count() or 1
        if head <= small or workers < 2:
            return verify(store, expect_head)
        orphan = store.first_orphan_hash()
    finally:
        store.close()
    size = head // workers + 1
    bounds = [(lo, min(head, lo + size - 1)) for lo in range(1, head + 1, size)]
    with ProcessPoolExecutor(len(bounds), mp_context=get_context("spawn")) as pool:
        stretches = list(pool.map(_check_stretch, *zip(*[(spec, str(data_dir), lo, hi, expect_head)
                                                          for lo, hi in bounds])))
    checked, starts, last, previous = 0, 0, 0, ""
    removed = "a hash is recorded for an event that is no longer in the log (removed)"
    for s, (_, hi) in zip(stretches, bounds):  # in order: the first problem in the log wins
        # An event without a hash once the chain has started (here or in an earlier stretch) was inserted.
        inserted = (s.first_unchained if starts and s.first_unchained else s.first_unchained_after_chain)
        firsts = sorted(p for p in (inserted, s.bad_position, orphan if orphan and orphan <= hi else 0) if p)
        if firsts:
            position = firsts[0]
            problem = removed if position == orphan else s.problem if position == s.bad_position else \
                "this event is not in the hash chain (inserted after the fact)"
            return Verdict(checked + s.checked, s.head, s.last or last, starts or s.first_chained, position, problem)
        checked += s.checked
        starts = starts or s.first_chained
        if s.checked:
            last, previous = s.last, s.head
    if orphan is not None:
        return Verdict(checked, previous, last, starts, orphan, removed)
    if expect_head and not any(s.saw_head for s in stretches):
        return Verdict(checked, previous, last, starts, last + 1,
                       f"the expected head {expect_head[:16]}… is not in the chain: the log was truncated after "
                       f"position {last} or rewritten")
    return Verdict(checked, previous, last, starts)
