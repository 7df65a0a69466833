"""The shell that runs ``actors.desk.decider`` (bot commands) and ``actors.desk.connection`` (transport sessions)."""
from __future__ import annotations

from collections.abc import Callable

from actors.desk import connection
from actors.desk import decider as desk
from actors.commands import ApologizeFor, InvokeCommand, RecordCatchUp, RecordConnection
from actors.streams import DecidedStreams, Publish
from actors.supervisor import Supervised, SupervisedActor
from events import EventStore
from events.catalog.desk import transport_stream


def command_stream(conversation_id: str) -> str:
    return f"commands:{conversation_id}"


class DeskActor(SupervisedActor):
    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish,
                 status: Callable[[], desk.StatusReport], prefix: str):
        super().__init__(supervisor)
        self.status = status
        self.prefix = prefix
        self.logs = DecidedStreams(store, publish, desk.CommandLog(), desk.evolve, command_stream)
        self.transports = DecidedStreams(store, publish, connection.Connections(), connection.evolve,
                                         transport_stream)

    def handle(self, message: object) -> None:
        if isinstance(message, (RecordConnection, RecordCatchUp)):
            self.transports.execute(message.source, lambda s: connection.decide(s, message))
            return
        if isinstance(message, ApologizeFor):  # another actor (or this one) gave up on it
            c = message.command
            self.logs.execute(c.conversation_id, lambda s: desk.abandoned(s, c))
            return
        if not isinstance(message, InvokeCommand):
            raise TypeError(f"Desk cannot handle {type(message).__name__}")
        report = self.status() if message.name.strip().lower() == "status" else None
        self.logs.execute(message.conversation_id, lambda s: desk.decide(s, message, report, self.prefix))
