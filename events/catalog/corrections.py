"""Corrections and feedback, in the streams ``answer:<source>:<question id>``, owned by the CorrectionLog."""
from __future__ import annotations

from dataclasses import dataclass

from events.model import Event


@dataclass(frozen=True, kw_only=True)
class CorrectionRecorded(Event):
    """Someone gave a better answer to one of Parley's answers (the answer to ``question_message_id``).
    ``via``: reply, slash, menu, button or console; ``message_id``: the command or interaction."""

    type_name = "CorrectionRecorded"
    source: str
    conversation_id: str  # the answer's conversation
    channel_id: str
    question_message_id: str
    asker_id: str  # whose question it was
    question: str
    original: str
    corrected: str
    by: str
    by_name: str
    via: str
    message_id: str


@dataclass(frozen=True, kw_only=True)
class FeedbackRecorded(Event):
    """A vote (``rating`` "up" or "down") on one of Parley's answers, or written feedback (``text``;
    about an answer when ``question_message_id`` is set)."""

    type_name = "FeedbackRecorded"
    source: str
    channel_id: str
    question_message_id: str
    rating: str
    text: str
    by: str
    by_name: str
    via: str
    message_id: str


def answer_stream(source: str, question_message_id: str) -> str:
    """Corrections and votes about one of Parley's answers (the answer to ``question_message_id``)."""
    return f"answer:{source}:{question_message_id}"
