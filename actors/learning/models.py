"""Which chat model answers: the configured one until a model is activated, everywhere or in one channel."""
from __future__ import annotations

from dataclasses import dataclass, field

from events import RecordedEvent
from events.catalog.learning import ModelActivated


@dataclass
class ModelChoice:
    """The chat model in use: the configured one until a model is activated (``ModelActivated``: a
    fine-tuned one, or ``model use``), everywhere or in one channel (``source:channel_id``)."""

    name: str
    activated: dict[str, str] = field(default_factory=dict)  # channel ("" everywhere) -> model

    def __call__(self, channel: str = "") -> str:
        return self.activated.get(channel) or self.activated.get("") or self.name

    def activate(self, recorded: RecordedEvent) -> None:
        event: ModelActivated = recorded.event  # type: ignore[assignment]
        self.activated[event.channel] = event.model
