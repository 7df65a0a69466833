"""Read models built from the log. They read events and nothing else, and can be rebuilt from zero."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from events import EventStore, RecordedEvent


class Projection(Protocol):
    def apply(self, recorded: RecordedEvent) -> None: ...


def rebuild(store: EventStore, projections: Iterable[Projection]) -> int:
    """Feed the whole log to ``projections``; return the position reached."""
    projections = list(projections)
    position = 0
    for recorded in store.read_all():
        for p in projections:
            p.apply(recorded)
        position = recorded.position or position
    return position
