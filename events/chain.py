"""The log's hash chain: each stored event's hash covers the previous event's hash and the event's own
stored bytes, in global order, so altering, removing, inserting or reordering any stored event breaks
every hash after it. The hashes live in a table of their own (``event_chain``), written by the
recorder in the transaction that inserts the events (which holds the log's write lock: SQLite's one
writer, PostgreSQL's table lock), so concurrent writers still make one chain.

    hash = sha256( json([previous hash, position, stream, version, type]) + "\\n" + stored bytes )

(JSON with ``,``/``:`` separators and ASCII escapes, as Python's ``json.dumps`` writes it), starting
from 64 zeros. ``README.md`` has a short script that checks an ``audit export`` with this alone.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from hashlib import sha256

GENESIS = "0" * 64
CHAIN_TABLE = "event_chain"


def link(previous: str, position: int, stream: str, version: int, topic: str, state: bytes) -> str:
    # Appending is the hot path: one f-string and one hash per event (a JSON encoder costs 3x more).
    s, t = stream.encode(), topic.encode()
    head = f"{previous}\n{position}\n{version}\n{len(s)}:{stream}\n{len(t)}:{topic}\n".encode()
    return sha256(head + state).hexdigest()


def links(previous: str, rows: Iterable[tuple[int, str, int, str, bytes]]) -> Iterator[tuple[int, str]]:
    """(position, hash) for each stored row (position, stream, version, topic, state), in order."""
    for position, stream, version, topic, state in rows:
        previous = link(previous, position, stream, version, topic, bytes(state))
        yield position, previous


def chain_rows(previous: str, positions: Sequence[int], stored: Sequence[object]) -> list[tuple[int, str]]:
    """The chain rows of a batch just inserted (``stored``: the library's ``StoredEvent``s)."""
    return list(links(previous, ((p, str(s.originator_id), s.originator_version, s.topic, s.state)  # type: ignore[attr-defined]
                                 for p, s in zip(positions, stored))))
