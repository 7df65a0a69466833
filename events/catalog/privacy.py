"""Forgetting a person, in the stream ``person:<id>``."""
from __future__ import annotations

from dataclasses import dataclass

from events.model import Event


@dataclass(frozen=True, kw_only=True)
class ForgetRequested(Event):
    """A person asked to be forgotten (``via``: "command" on a transport, "cli" by an operator)."""

    type_name = "ForgetRequested"
    person: str
    by: str
    via: str


@dataclass(frozen=True, kw_only=True)
class PersonForgotten(Event):
    """The person's key is deleted: their words in the log read as "(forgotten)" for good; their audio
    files and the exported files holding their words are gone."""

    type_name = "PersonForgotten"
    person: str
    audio_files_deleted: int
    files_changed: int


def person_stream(person: str) -> str:
    return f"person:{person}"
