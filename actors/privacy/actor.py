"""The shell that runs ``actors.privacy.decider``: it records the request, has the person's key and files
deleted (the ``Forgetting`` port), then records that they are forgotten. A restart in between finishes
the job (the request is in the log; deleting is idempotent)."""
from __future__ import annotations

from typing import Protocol

from actors.privacy import decider as privacy
from actors.commands import ForgetPerson, InvokeCommand
from actors.privacy.decider import Person
from actors.streams import DecidedStreams, Publish
from actors.supervisor import Supervised, SupervisedActor
from events import EventStore
from events.catalog.privacy import person_stream

PRIVACY_COMMANDS = frozenset({"forget-me"})


class Forgetting(Protocol):
    def known(self, person: str) -> bool:
        """Something of theirs is recorded (they have a key)."""

    def forget(self, person: str) -> tuple[int, int]:
        """Delete their audio files, the exported files with their words, then their key; return
        (audio files deleted, files changed)."""


class PrivacyActor(SupervisedActor):
    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish, forgetting: Forgetting):
        super().__init__(supervisor)
        self.forgetting = forgetting
        self.people = DecidedStreams(store, publish, Person(), privacy.evolve, person_stream)

    def handle(self, message: object) -> None:
        if isinstance(message, InvokeCommand):  # forget-me: always heard, even from someone Parley ignores
            person, by, via, command = message.author_id, message.author_id, "command", message
        elif isinstance(message, ForgetPerson):
            person, by, via, command = message.person, message.by, "cli", None
        else:
            raise TypeError(f"the privacy actor cannot handle {type(message).__name__}")
        forget(self.people, self.forgetting, person, by, via, command)


def forget(people: DecidedStreams[Person], forgetting: Forgetting, person: str, by: str, via: str,
           command: InvokeCommand | None = None) -> Person:
    """Record the request, delete what is theirs, record that it is done; return their state after."""
    known = forgetting.known(person)
    people.execute(person, lambda s: privacy.decide_request(s, person, by, via, known, command))
    state = people.load(person)
    if state.requested and not state.forgotten:
        audio, files = forgetting.forget(person)
        people.execute(person, lambda s: privacy.decide_done(s, person, audio, files, command))
    return people.load(person)
