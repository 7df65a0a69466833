"""Events to bytes and back, with upcasting of older versions.

Stored form (compact UTF-8 JSON): ``{"v": <version>, "at": <ISO time>, "data": {...}}``; the type name is the
library's ``topic`` column. Reading applies upcasters one version at a time until the data matches
the class's current version.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from events.model import _TYPES, Event, UnknownEvent
from events.personal import PERSONAL, Keys, seal, unseal

_loads = orjson.loads
_types_get = _TYPES.get

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function turning ``type_name`` data of ``from_version`` into ``from_version + 1``."""

    def register(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(type_name, from_version)] = fn
        return fn

    return register


def encode(event: Event, at: datetime | str, keys: Keys | None = None) -> bytes:
    """``at`` may be given already formatted (one ISO string for a whole batch). With ``keys``, people's
    words are stored encrypted with their keys (``events.personal``)."""
    when = at if isinstance(at, str) else at.isoformat()
    data = event.__dict__
    if keys is not None and event.type_name in PERSONAL:
        data = seal(event.type_name, data, keys)
    # orjson: compact UTF-8 JSON, several times faster than the standard library on this hot path.
    return orjson.dumps({"v": event.version, "at": when, "data": data})


@lru_cache(maxsize=4096)
def decode_time(text: str) -> datetime:
    return datetime.fromisoformat(text)  # events appended together share one time


def decode(type_name: str, state: bytes, keys: Keys | None = None) -> tuple[Event, datetime]:
    return decode_parsed(type_name, _loads(state), keys)


def decode_parsed(type_name: str, doc: dict[str, Any], keys: Keys | None = None) -> tuple[Event, datetime]:
    """``decode`` for a stored document already parsed from JSON."""
    cls = _types_get(type_name)
    if type_name in PERSONAL:
        unseal(type_name, doc.get("data", {}), keys)
    if cls is not None and doc.get("v") == cls.version:  # the common case, kept short
        return cls.from_data(doc["data"]), decode_time(doc["at"])
    version, data = int(doc.get("v", 1)), doc.get("data", {})
    if cls is None:
        return UnknownEvent(stored_type=type_name, stored_version=version, data=data), decode_time(doc["at"])
    while version < cls.version:
        step = _UPCASTERS.get((type_name, version))
        if step is None:
            raise ValueError(f"no upcaster for {type_name} v{version} -> v{version + 1}")
        data, version = step(dict(data)), version + 1
    return cls.from_data(data), decode_time(doc["at"])


@upcaster("MessageReceived", 1)
def _message_received_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    # v1 was written when Discord was the only transport.
    data.setdefault("source", "discord")
    return data


@upcaster("ResponseGenerated", 1)
def _response_generated_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("cut", "")  # v1 answers were never cut, nor answers to audio
    data.setdefault("heard", "")
    return data


@upcaster("MessageReceived", 2)
def _message_received_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("heard", "")  # v2 messages were all typed
    return data


@upcaster("ReplySent", 1)
def _reply_sent_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("part", "")  # v1 replies were all written ones
    return data


@upcaster("ReplyDeliveryFailed", 1)
def _reply_delivery_failed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("part", "")
    return data


@upcaster("CommandAnswered", 1)
def _command_answered_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("attachment", "")  # v1 answers were text only
    return data


@upcaster("ResponseGenerated", 2)
def _response_generated_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("asker_id", "")  # not recorded before v3
    return data


@upcaster("TranscriptionCompleted", 1)
def _transcription_completed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("speaker_id", "")
    return data


@upcaster("ExamplesAdded", 1)
def _examples_added_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("subject_id", "")  # v1 examples were all their author's words
    return data
