"""The shape every domain event shares.

An event is a frozen dataclass with a stable ``type_name`` (what the log stores, never the Python
class path, so classes can move without rewriting history) and a ``version`` that grows when its
fields change; older versions are upcast on read (see ``events.codec``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar

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
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Event:
        names = {f.name for f in fields(cls)}
        # Lists come back from JSON; events hold tuples so they stay immutable.
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """An event whose type this build does not know: kept readable so replay never loses a line."""

    stored_type: str
    stored_version: int
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        return dict(self.data)


@dataclass(frozen=True)
class RecordedEvent:
    """An event as the log holds it: where it sits globally and in its stream, and when it was recorded."""

    position: int | None  # global order; None when read by stream (the library's stream read has no position)
    stream: str
    stream_version: int
    recorded_at: datetime
    event: Event

    @property
    def type_name(self) -> str:
        if isinstance(self.event, UnknownEvent):
            return self.event.stored_type
        return self.event.type_name


def event_class(type_name: str) -> type[Event] | None:
    return _TYPES.get(type_name)


def registered_types() -> dict[str, type[Event]]:
    return dict(_TYPES)
