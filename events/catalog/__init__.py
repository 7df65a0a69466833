"""Every event Parley records, one module per capability, and the one registry of their types and upcasters.

Events are named in the past tense and carry ids, text and decisions; never secrets (tokens, keys) and never
audio bytes. Changing a field means a new ``version`` and an upcaster for the old one
(``@events.codec.upcaster``), written beside the event type.

| module | the events of |
| --- | --- |
| ``messages`` | every capability: an event about one user message; a command answered or refused |
| ``conversation`` | the Responder: messages received or rejected, answers generated or failed |
| ``delivery`` | the outbox: replies sent or refused for good; which events carry a reply |
| ``desk`` | Parley itself: transports connected and caught up, actors restarted |
| ``hearing`` | the Transcriber: clips received, transcribed or not, purged |
| ``speaking`` | the Speaker: answers synthesized, voice messages prepared |
| ``voice`` | a guild's voice channel: joined, left, voice on/off, playback |
| ``listening`` | listening in a guild's voice channels: consent, and what people were heard saying |
| ``learning`` | the Trainer: datasets, examples, evaluations, fine-tuning jobs, models activated |
| ``corrections`` | the CorrectionLog: corrections and feedback |
| ``privacy`` | forget-me: requests, people forgotten |
"""
from __future__ import annotations

from types import ModuleType

from events.catalog import (conversation, corrections, delivery, desk, hearing, learning, listening, messages,
                            privacy, speaking, voice)
from events.codec import Upcaster, registered_upcasters
from events.model import Event

CAPABILITIES: tuple[ModuleType, ...] = (messages, conversation, delivery, desk, hearing, speaking, voice, listening,
                                        learning, corrections, privacy)


def _types_of(module: ModuleType) -> list[type[Event]]:
    return [value for value in vars(module).values() if isinstance(value, type) and issubclass(value, Event)
            and value.__module__ == module.__name__ and value.__dict__.get("type_name")]


# Every event type by the name the log stores, and every upcaster by (type name, version it upgrades).
EVENT_TYPES: dict[str, type[Event]] = {cls.type_name: cls for module in CAPABILITIES for cls in _types_of(module)}
UPCASTERS: dict[tuple[str, int], Upcaster] = registered_upcasters()
