"""Listening in a guild's voice channels, in the stream ``listening:<source>:<guild id>``: consent (on, off,
a person's opt-out) and what people were heard saying there. Never the audio itself: an utterance's audio is a
content-addressed clip (``audio/<audio_hash>``), like a voice message's."""
from __future__ import annotations

from dataclasses import dataclass

from events.catalog.messages import AboutMessage
from events.model import Event


@dataclass(frozen=True, kw_only=True)
class ListeningTurnedOn(Event):
    """An admin let Parley listen in this guild's voice channels; answers are written in ``channel_id``."""

    type_name = "ListeningTurnedOn"
    source: str
    guild_id: str
    channel_id: str
    by: str


@dataclass(frozen=True, kw_only=True)
class ListeningTurnedOff(Event):
    type_name = "ListeningTurnedOff"
    source: str
    guild_id: str
    by: str


@dataclass(frozen=True, kw_only=True)
class ListeningOptOutChanged(Event):
    """A person asked never to be heard in this guild (``opted_out``), or to be heard again."""

    type_name = "ListeningOptOutChanged"
    source: str
    guild_id: str
    person: str
    opted_out: bool


@dataclass(frozen=True, kw_only=True)
class UtteranceHeard(AboutMessage):
    """A person said something in a voice channel while Parley listened. ``message_id`` is the utterance's id
    (it is answered like a message); ``channel_id`` the text channel the answer is written in;
    ``conversation_id`` the voice channel's conversation."""

    type_name = "UtteranceHeard"
    guild_id: str
    voice_channel_id: str
    speaker_id: str
    speaker_name: str
    transcript: str
    duration_s: float
    audio_hash: str
    model: str


CONSENT_EVENTS = ("ListeningTurnedOn", "ListeningTurnedOff", "ListeningOptOutChanged")


def listening_stream(source: str, guild_id: str) -> str:
    return f"listening:{source}:{guild_id}"
