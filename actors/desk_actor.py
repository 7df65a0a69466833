"""The shell that runs ``actors.desk`` (bot commands)."""
from __future__ import annotations

from collections.abc import Callable

from actors import desk
from actors.commands import InvokeCommand
from actors.streams import DecidedStreams, Publish
from actors.supervisor import Supervised, SupervisedActor
from events import EventStore


def command_stream(conversation_id: str) -> str:
    return f"commands:{conversation_id}"


class DeskActor(SupervisedActor):
    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish,
                 status: Callable[[], desk.StatusReport], prefix: str):
        super().__init__(supervisor)
        self.status = status
        self.prefix = prefix
        self.logs = DecidedStreams(store, publish, desk.CommandLog(), desk.evolve, command_stream)

    def handle(self, message: object) -> None:
        if not isinstance(message, InvokeCommand):
            raise TypeError(f"Desk cannot handle {type(message).__name__}")
        report = self.status() if message.name.strip().lower() == "status" else None
        self.logs.execute(message.conversation_id, lambda s: desk.decide(s, message, report, self.prefix))
