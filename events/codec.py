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

from events.model import _TYPES, DamagedRecord, Event, UnknownEvent
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


def registered_upcasters() -> dict[tuple[str, int], Upcaster]:
    """Every upcaster registered so far (the event catalog registers them all when it is imported)."""
    return dict(_UPCASTERS)


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
    """The event stored as ``state``; ``DamagedRecord`` (one clear message) when it cannot be one."""
    try:
        return _decode(type_name, _loads(state), keys)
    except Exception as e:  # noqa: BLE001  (whatever the bytes: not JSON, the wrong shape, a missing field)
        raise damaged(type_name, e) from e


def decode_parsed(type_name: str, doc: dict[str, Any], keys: Keys | None = None) -> tuple[Event, datetime]:
    """``decode`` for a stored document already parsed from JSON."""
    try:
        return _decode(type_name, doc, keys)
    except Exception as e:  # noqa: BLE001
        raise damaged(type_name, e) from e


def damaged(type_name: str, error: BaseException) -> DamagedRecord:
    if isinstance(error, DamagedRecord):
        return error
    detail = f"{type(error).__name__}: {error}"[:300]
    return DamagedRecord(f"a stored {type_name or '(untyped)'} event that cannot be read ({detail})")


def _decode(type_name: str, doc: dict[str, Any], keys: Keys | None = None) -> tuple[Event, datetime]:
    if not isinstance(doc, dict) or not isinstance(doc.get("data", {}), dict) or not isinstance(doc.get("at"), str):
        raise ValueError('not a stored event: {"v": version, "at": time, "data": {...}} expected')
    cls = _types_get(type_name)
    if type_name in PERSONAL:
        unseal(type_name, doc.get("data", {}), keys)
    version = doc.get("v", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"version {version!r} is not a version")
    if cls is not None and version == cls.version:  # the common case, kept short
        return cls.from_data(doc["data"]), decode_time(doc["at"])
    data = doc.get("data", {})
    if cls is None:
        return UnknownEvent(stored_type=type_name, stored_version=version, data=data), decode_time(doc["at"])
    while version < cls.version:
        step = _UPCASTERS.get((type_name, version))
        if step is None:
            raise ValueError(f"no upcaster for {type_name} v{version} -> v{version + 1}")
        data, version = step(dict(data)), version + 1
    return cls.from_data(data), decode_time(doc["at"])
