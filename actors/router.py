"""The Router: a table from command type to the actor that owns it, and from event type to subscribers.

``dispatch`` only enqueues (pykka ``tell``), so the asyncio loop can call it and never wait. ``wire`` fills
both tables from the capabilities the composition root declares (``run.CAPABILITIES``).
"""
from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from actors.commands import InvokeCommand
from events import RecordedEvent

log = logging.getLogger("parley.router")
ALL = "*"


class UnroutedCommand(LookupError):
    pass


class Router:
    def __init__(self) -> None:
        self._handlers: dict[type, Callable[[object], None]] = {}
        self._subscribers: dict[str, list[Callable[[RecordedEvent], None]]] = defaultdict(list)

    def route(self, command_type: type, handler: Callable[[object], None]) -> None:
        self._handlers[command_type] = handler

    def dispatch(self, command: object) -> None:
        try:
            handler = self._handlers[type(command)]
        except KeyError:
            raise UnroutedCommand(f"no actor handles {type(command).__name__}") from None
        handler(command)

    def subscribe(self, handler: Callable[[RecordedEvent], None], *event_types: str) -> None:
        for name in event_types or (ALL,):
            self._subscribers[name].append(handler)

    def publish(self, recorded: list[RecordedEvent]) -> None:
        for r in recorded:
            for handler in self._subscribers.get(r.type_name, []) + self._subscribers.get(ALL, []):
                try:
                    handler(r)
                except Exception:  # one broken subscriber must not stop the others hearing the event
                    log.exception("subscriber %r failed on %s", handler, r.type_name)


class Handler(Protocol):
    def tell(self, command: object) -> None: ...


Deps = TypeVar("Deps")
Reaction = Callable[[Deps, RecordedEvent], object]  # the command an event asks for, or None


@dataclass(frozen=True)
class Capability(Generic[Deps]):
    """One room as the composition root declares it: how to start its actor (or pool) from the
    dependencies, the commands it owns, what it does on events of other rooms, and the bot commands
    (``!train`` ...) it answers by name."""

    start: Callable[[Deps], Handler]
    commands: tuple[type, ...]
    reactions: Mapping[type | tuple[type, ...], Reaction] = field(default_factory=dict)
    named: Collection[str] = ()
    everywhere: Mapping[type, Reaction] = field(default_factory=dict)  # also to events other processes append


def wire(router: Router, capabilities: Mapping[str, Capability[Deps]], deps: Deps, answers_the_rest: str,
         follow_log: Callable[[Mapping[str, list[Callable[[RecordedEvent], None]]]], None] | None = None
         ) -> dict[str, Handler]:
    """Start every capability's actors, then route commands and events to them; a bot command that no
    capability names goes to ``answers_the_rest``. Reactions ``everywhere`` hear this process's events at
    once and, through ``follow_log``, every other process's too."""
    started = {name: capability.start(deps) for name, capability in capabilities.items()}
    for name, capability in capabilities.items():
        for command_type in capability.commands:
            router.route(command_type, started[name].tell)
        for event_types, reaction in capability.reactions.items():
            types = event_types if isinstance(event_types, tuple) else (event_types,)
            router.subscribe(functools.partial(_react, router, reaction, deps), *(t.type_name for t in types))
    from_the_log: dict[str, list[Callable[[RecordedEvent], None]]] = defaultdict(list)
    for capability in capabilities.values():
        for event_type, reaction in capability.everywhere.items():
            react = functools.partial(_react, router, reaction, deps)
            router.subscribe(react, event_type.type_name)
            from_the_log[event_type.type_name].append(react)
    if follow_log is not None and from_the_log:
        follow_log(dict(from_the_log))
    owners = {command: started[name] for name, c in capabilities.items() for command in c.named}
    fallback = started[answers_the_rest]
    router.route(InvokeCommand, lambda c: owners.get(c.name.strip().lower(), fallback).tell(c))  # type: ignore[attr-defined]
    return started


def _react(router: Router, reaction: Reaction, deps: object, recorded: RecordedEvent) -> None:
    command = reaction(deps, recorded)
    if command is not None:
        router.dispatch(command)
