"""The shape every domain event shares.

An event is a frozen dataclass with a stable ``type_name`` (what the log stores, never the Python
class path, so classes can move without rewriting history) and a ``version`` that grows when its
fields change; older versions are upcast on read (see ``events.codec``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar, NamedTuple

_TYPES: dict[str, type[Event]] = {}


@dataclass(frozen=True, kw_only=True)
class Event:
    type_name: ClassVar[str] = ""
    version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("type_name")
        if name:
            if name in _TYPES and _TYPES[name].__qualname__ != cls.__qualname__:
                raise TypeError(f"event type name {name!r} is taken by {_TYPES[name]!r}")
            _TYPES[name] = cls

    def to_data(self) -> dict[str, Any]:
        # The instance dict holds exactly the fields (no slots, no extras); JSON writes tuples as lists.
        return dict(self.__dict__)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Event:
        """Build the event from its stored fields. Takes ownership of ``data`` (it may become the
        event's instance dict)."""
        names, required, defaults, tuples = cls.__dict__.get("_shape") or _shape(cls)
        for name in tuples:  # JSON gives lists; events hold tuples so they stay immutable
            if name in data:
                data[name] = tuple(data[name])
        # Reading the log is the hot path: no frozen-dataclass __init__ (one object.__setattr__ per
        # field); what the current version wrote (every field, nothing else) becomes the instance dict.
        event = object.__new__(cls)
        if data.keys() != names:
            if not data.keys() <= names:
                data = {k: v for k, v in data.items() if k in names}
            if not required <= data.keys():
                return cls(**data)  # raises a TypeError that names the missing fields
            data = defaults | data
        object.__setattr__(event, "__dict__", data)
        return event


def _shape(cls: type[Event]) -> tuple[frozenset[str], frozenset[str], dict[str, Any], tuple[str, ...]]:
    all_fields = fields(cls)
    names = frozenset(f.name for f in all_fields)
    # Fields with a default_factory count as required here, so the fast path never shares a mutable default.
    defaults = {f.name: f.default for f in all_fields if f.default is not dataclasses.MISSING}
    tuples = tuple(f.name for f in all_fields if str(f.type).startswith(("tuple", "Tuple")))
    shape = (names, names - defaults.keys(), defaults, tuples)
    type.__setattr__(cls, "_shape", shape)
    return shape


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """An event whose type this build does not know: kept readable so replay never loses a line."""

    stored_type: str
    stored_version: int
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        return dict(self.data)


@dataclass(frozen=True, kw_only=True)
class DamagedEvent(Event):
    """A stored row that cannot be read as an event (damaged, or written by something else): kept in its
    place with why, so replay and the read models go on past it and nothing after it is lost."""

    stored_type: str
    error: str


class DamagedRecord(ValueError):
    """A stored event that cannot be decoded; the message says which type and why."""


class RecordedEvent(NamedTuple):
    """An event as the log holds it: where it sits globally and in its stream, and when it was recorded."""

    position: int | None  # global order; None when read by stream (the library's stream read has no position)
    stream: str
    stream_version: int
    recorded_at: datetime
    event: Event

    @property
    def type_name(self) -> str:
        if isinstance(self.event, (UnknownEvent, DamagedEvent)):
            return self.event.stored_type
        return self.event.type_name


def event_class(type_name: str) -> type[Event] | None:
    return _TYPES.get(type_name)


def registered_types() -> dict[str, type[Event]]:
    return dict(_TYPES)
