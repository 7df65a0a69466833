"""A guild's voice session, in the stream ``voice:<source>:<guild id>``: channels joined and left, voice on/off,
and what was played."""
from __future__ import annotations

from dataclasses import dataclass

from events.catalog.messages import AboutMessage
from events.model import Event


@dataclass(frozen=True, kw_only=True)
class VoiceChannelJoined(Event):
    """Parley joined a guild's voice channel. ``reason``: "command" (someone asked, ``by``), "rejoined"
    (after a restart, from the log), "moved" (a moderator dragged it here) or "reconnected" (a connection
    recorded as lost came back by itself)."""

    type_name = "VoiceChannelJoined"
    source: str
    guild_id: str
    voice_channel_id: str
    voice_channel_name: str
    reason: str
    by: str = ""


@dataclass(frozen=True, kw_only=True)
class VoiceChannelLeft(Event):
    """Parley left a voice channel. ``reason``: "command", "idle" (nothing spoken for
    ``PARLEY_VOICE_IDLE_S``), "moved", "disconnected" (kicked, or the connection was lost) or
    "unavailable" (it could not rejoin after a restart)."""

    type_name = "VoiceChannelLeft"
    source: str
    guild_id: str
    voice_channel_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class VoiceRepliesSwitched(Event):
    """Whether answers are spoken in this guild's voice channel (``voice on|off``)."""

    type_name = "VoiceRepliesSwitched"
    source: str
    guild_id: str
    on: bool
    by: str


@dataclass(frozen=True, kw_only=True)
class PlaybackStarted(AboutMessage):
    """An answer (to ``message_id``) began to play in a voice channel; ``utterance_id`` names it."""

    type_name = "PlaybackStarted"
    guild_id: str
    voice_channel_id: str
    utterance_id: str


@dataclass(frozen=True, kw_only=True)
class PlaybackFinished(Event):
    type_name = "PlaybackFinished"
    source: str
    guild_id: str
    utterance_id: str


@dataclass(frozen=True, kw_only=True)
class PlaybackInterrupted(Event):
    """Playback ended early, or never began: ``reason`` "stop", "skip", "disconnect", "restart" or "barge_in"
    (someone began to speak while Parley talked)."""

    type_name = "PlaybackInterrupted"
    source: str
    guild_id: str
    utterance_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class PlaybackPaused(Event):
    """Someone began to speak over Parley (not its own voice coming back): it paused at once, until the listening
    room says whether they took the turn (then ``PlaybackInterrupted``, "barge_in") or not (``PlaybackResumed``)."""

    type_name = "PlaybackPaused"
    source: str
    guild_id: str
    utterance_id: str


@dataclass(frozen=True, kw_only=True)
class PlaybackResumed(Event):
    """What was paused goes on: ``reason`` "backchannel" ("mhm", "yeah", a laugh: not a turn) or "undecided"
    (nobody said what the speech over it was in time)."""

    type_name = "PlaybackResumed"
    source: str
    guild_id: str
    utterance_id: str
    reason: str


def voice_stream(source: str, guild_id: str) -> str:
    """A guild's voice session: joined and left channels, voice on/off, and what was played."""
    return f"voice:{source}:{guild_id}"
