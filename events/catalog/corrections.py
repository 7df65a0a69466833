"""Corrections and feedback, in the streams ``answer:<source>:<question id>``, owned by the CorrectionLog."""
from __future__ import annotations

from dataclasses import dataclass

from events.model import Event
from events.scopes import OPERATORS, read_before_scopes


@dataclass(frozen=True, kw_only=True)
class CorrectionRecorded(Event):
    """Someone gave a better answer to one of Parley's answers (the answer to ``question_message_id``).
    ``via``: reply, slash, menu, button or console; ``message_id``: the command or interaction.
    v2 added ``scope`` (the answer's) and ``approved``: an admin's correction teaches at once; a member's is a
    suggestion until an admin of that scope approves it (``CorrectionReviewed``)."""

    type_name = "CorrectionRecorded"
    version = 2
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
    scope: str = OPERATORS
    approved: bool = True


@dataclass(frozen=True, kw_only=True)
class CorrectionReviewed(Event):
    """An admin of the correction's scope approved (it teaches from now on) or rejected a member's correction
    (the one recorded by command ``correction_id``)."""

    type_name = "CorrectionReviewed"
    source: str
    question_message_id: str
    correction_id: str
    scope: str
    approved: bool
    by: str
    message_id: str  # the review command or button


@dataclass(frozen=True, kw_only=True)
class FeedbackRecorded(Event):
    """A vote (``rating`` "up" or "down") on one of Parley's answers, or written feedback (``text``;
    about an answer when ``question_message_id`` is set). v2 added ``scope``: the answer's, else where it was said."""

    type_name = "FeedbackRecorded"
    version = 2
    source: str
    channel_id: str
    question_message_id: str
    rating: str
    text: str
    by: str
    by_name: str
    via: str
    message_id: str
    scope: str = OPERATORS


def answer_stream(source: str, question_message_id: str) -> str:
    """Corrections and votes about one of Parley's answers (the answer to ``question_message_id``)."""
    return f"answer:{source}:{question_message_id}"


read_before_scopes("CorrectionRecorded", 1, approved=True)  # the operators', and teaching, as it did then
read_before_scopes("FeedbackRecorded", 1)
