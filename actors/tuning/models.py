"""Which chat model answers: the configured one until a model is activated for a scope (all of it, or one of its
channels), or by the operators for everyone."""
from __future__ import annotations

from dataclasses import dataclass, field

from events import RecordedEvent
from events.catalog.learning import ModelActivated
from events.scopes import OPERATORS


@dataclass
class ModelChoice:
    """The chat model in use where a person asks: the one activated in that channel, else for the asker's scope
    (a guild, a person's DMs), else the operators' model for everyone, else the configured one. Nothing one
    guild activates reaches another."""

    name: str
    activated: dict[tuple[str, str], str] = field(default_factory=dict)  # (scope, channel or "") -> model

    def __call__(self, channel: str = "", scope: str = OPERATORS) -> str:
        return (self.activated.get((scope, channel)) or self.activated.get((scope, ""))
                or self.activated.get((OPERATORS, "")) or self.name)

    def activate(self, recorded: RecordedEvent) -> None:
        event: ModelActivated = recorded.event  # type: ignore[assignment]
        self.activated[(event.scope, event.channel)] = event.model
