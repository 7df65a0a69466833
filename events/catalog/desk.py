"""Parley's own state: transports connected and caught up (stream ``transport:<source>``), actors restarted."""
from __future__ import annotations

from dataclasses import dataclass

from events.model import Event


@dataclass(frozen=True, kw_only=True)
class ActorRestarted(Event):
    """An actor raised; its supervisor started a fresh one, which rebuilt its state from the log."""

    type_name = "ActorRestarted"
    actor: str
    error: str
    restarts: int


@dataclass(frozen=True, kw_only=True)
class TransportConnected(Event):
    """Parley connected to a platform. ``mark`` is a platform id of that moment (a Discord snowflake),
    so a later catch-up knows from when to read channels it has never answered in."""

    type_name = "TransportConnected"
    source: str
    mark: str


@dataclass(frozen=True, kw_only=True)
class CatchUpFinished(Event):
    """After (re)connecting, Parley read what was written while it was away."""

    type_name = "CatchUpFinished"
    source: str
    channels_read: int
    messages_offered: int  # messages read from history and offered to the actors (recorded ones are ignored)
    failures: int  # messages or channels that could not be read or parsed
    channels_at_limit: tuple[str, ...] = ()  # channels with more missed messages than PARLEY_CATCH_UP_LIMIT


def transport_stream(source: str) -> str:
    return f"transport:{source}"
