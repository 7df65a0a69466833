"""Scopes: whose data and whose power. Every dataset, example, correction, export, archive, evaluation,
fine-tuning job and model activation belongs to one, set when it is made and never changed:

- ``guild:<id>``: a Discord server's; its admins act on it, in it;
- ``person:<id>``: what was made in a person's DMs;
- ``operators``: shared by all (the console, ``PARLEY_ADMIN_IDS``); only operators act on it, and what it
  holds reaches a guild only where an operator said so (``dataset use``, a model for everyone).

Events recorded before scopes existed are read as ``operators`` (upcasters), so no server inherits another's
data. Who may act on which scope is decided in ``actors.access`` alone.
"""
from __future__ import annotations

import re
from typing import Any

from events.codec import upcaster

OPERATORS = "operators"
_SCOPE = re.compile(r"^(operators|guild:\d{1,25}|person:[A-Za-z0-9_.-]{1,64})$")


def guild_scope(guild_id: object) -> str:
    return f"guild:{guild_id}"


def person_scope(user_id: object) -> str:
    return f"person:{user_id}"


def is_scope(value: str) -> bool:
    return bool(_SCOPE.match(value))


def folder_of(scope: str) -> str:
    """The folder under ``exports/`` and ``archives/`` that holds a scope's files (``guild-123``)."""
    if not is_scope(scope):
        raise ValueError(f"not a scope: {scope[:80]!r}")
    return scope.replace(":", "-")


def described(scope: str) -> str:
    """For people: 'this server', 'your DMs', 'every server (operators)'."""
    if scope == OPERATORS:
        return "the operators (shared by every server)"
    return "this server" if scope.startswith("guild:") else "these DMs"


def read_before_scopes(type_name: str, from_version: int, **also: Any) -> None:
    """Register the upcaster that reads ``type_name`` records of ``from_version`` (from before scopes) as the
    operators' (with ``also``'s defaults for the other fields the new version added). Nothing is rewritten."""
    def upgrade(data: dict[str, Any]) -> dict[str, Any]:
        data.setdefault("scope", OPERATORS)
        for field, value in also.items():
            data.setdefault(field, value)
        return data

    upcaster(type_name, from_version)(upgrade)
