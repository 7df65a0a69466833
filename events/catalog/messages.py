"""What every capability's events share: an event about one user message, and a command answered or refused."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events.codec import upcaster
from events.model import Event


@dataclass(frozen=True, kw_only=True)
class AboutMessage(Event):
    """Fields shared by events about one user message: where it was and which conversation it is in."""

    conversation_id: str
    message_id: str  # the user's message (on Discord, its snowflake)
    channel_id: str
    source: str  # the transport: "discord", "console", ...


@dataclass(frozen=True, kw_only=True)
class CommandAnswered(AboutMessage):
    """v2 added ``attachment``: a file sent with the answer, relative to the data dir ("" for none); v3 added
    ``choices``: commands offered with the answer, each one press away where the transport has buttons
    (``corrections approve 17``); whoever presses runs it with their own powers."""

    type_name = "CommandAnswered"
    version = 3
    author_id: str
    command: str
    text: str
    attachment: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CommandRejected(AboutMessage):
    type_name = "CommandRejected"
    author_id: str
    command: str
    reason: str
    reply_text: str


@upcaster("CommandAnswered", 1)
def _command_answered_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("attachment", "")  # v1 answers were text only
    return data


@upcaster("CommandAnswered", 2)
def _command_answered_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("choices", [])  # no answer offered buttons before
    return data
