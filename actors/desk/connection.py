"""A transport's connections and catch-ups, as a pure decider (one stream per transport)."""
from __future__ import annotations

from dataclasses import dataclass

from actors.commands import RecordCatchUp, RecordConnection
from events.catalog.desk import CatchUpFinished, TransportConnected
from events.model import Event


@dataclass(frozen=True)
class Connections:
    version: int = 0
    mark: str = ""  # the newest connection's mark


def evolve(state: Connections, event: Event) -> Connections:
    mark = event.mark if isinstance(event, TransportConnected) else state.mark
    return Connections(state.version + 1, mark)


def decide(state: Connections, command: object) -> list[Event]:
    if isinstance(command, RecordConnection):
        return [TransportConnected(source=command.source, mark=command.mark)]
    if isinstance(command, RecordCatchUp):
        return [CatchUpFinished(source=command.source, channels_read=command.channels_read,
                                messages_offered=command.messages_offered, failures=command.failures,
                                channels_at_limit=command.channels_at_limit)]
    raise TypeError(f"cannot decide {type(command).__name__}")
