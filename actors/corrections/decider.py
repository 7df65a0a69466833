"""The CorrectionLog's domain: corrections and votes about one of Parley's answers, as a pure decider
over that answer's stream (``answer:<source>:<question id>``).

The shell finds what was answered (``Answered``: the question, the answer, where) and hands it in;
without it (the message is not one of Parley's answers) the command is refused with a reason.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from actors.access import NOT_ALLOWED, REFUSAL_TEXT
from actors.commands import InvokeCommand, VoteAnswer
from actors.learning.examples import normalise
from events.catalog.corrections import CorrectionRecorded, FeedbackRecorded
from events.catalog.messages import CommandAnswered, CommandRejected
from events.model import Event

MAX_CORRECTION_CHARS = 4000
KEEP_SEEN = 200

NOT_FOUND_TEXT = {
    "not_parleys": "Only my answers can be corrected or rated: reply to one of my answers (or name it by its "
                   "link or id).",
    "unknown": "I can't find that message among my answers. Reply to one of my answers, or give its link or id.",
    "no_target": "Which answer? Reply to one of my answers with `correct BETTER ANSWER` (in the console: right "
                 "after an answer, or `correct N BETTER ANSWER` for the Nth answer back).",
    "pending": "That question has not been answered yet; correct the answer once it is there.",
}


@dataclass(frozen=True)
class Answered:
    """One of Parley's answers: what it answered, in which conversation and channel."""

    source: str
    conversation_id: str
    channel_id: str
    question_message_id: str
    question: str
    answer: str
    asker_id: str = ""


@dataclass(frozen=True)
class AnswerLog:
    version: int = 0
    voters: frozenset[str] = frozenset()  # who rated this answer (one vote each)
    corrections: int = 0
    seen: tuple[str, ...] = ()  # command and interaction ids already handled


def evolve(state: AnswerLog, event: Event) -> AnswerLog:
    state = replace(state, version=state.version + 1)
    message_id = getattr(event, "message_id", "")
    if message_id:
        state = replace(state, seen=(state.seen + (message_id,))[-KEEP_SEEN:])
    if isinstance(event, FeedbackRecorded) and event.rating:
        return replace(state, voters=state.voters | {event.by})
    if isinstance(event, CorrectionRecorded):
        return replace(state, corrections=state.corrections + 1)
    return state


def _common(c: InvokeCommand | VoteAnswer, name: str) -> dict:
    return dict(conversation_id=c.conversation_id, message_id=c.message_id, channel_id=c.channel_id,
                author_id=c.author_id, source=c.source, command=name)


def _rejected(c: InvokeCommand | VoteAnswer, name: str, reason: str, text: str) -> list[Event]:
    return [CommandRejected(**_common(c, name), reason=reason, reply_text=text)]


def _answered(c: InvokeCommand | VoteAnswer, name: str, text: str) -> CommandAnswered:
    return CommandAnswered(**_common(c, name), text=text)


def _refused(state: AnswerLog, c: InvokeCommand | VoteAnswer, name: str, answered: Answered | None,
             why_not: str) -> list[Event] | None:
    if c.message_id in state.seen:
        return []
    refusal = getattr(c, "refusal", "")
    if refusal:
        return _rejected(c, name, refusal, REFUSAL_TEXT.get(refusal, REFUSAL_TEXT[NOT_ALLOWED]))
    if answered is None:
        return _rejected(c, name, why_not or "unknown", NOT_FOUND_TEXT.get(why_not, NOT_FOUND_TEXT["unknown"]))
    return None


def _text_problem(c: InvokeCommand, name: str, text: str, what: str, example: str) -> list[Event]:
    if not text:
        return _rejected(c, name, f"empty_{'correction' if name == 'correct' else name}",
                         f"Write {what} after `{name}`, e.g. `{name} {example}`")
    if len(text) > MAX_CORRECTION_CHARS:
        return _rejected(c, name, "too_long", f"Keep it to {MAX_CORRECTION_CHARS:,} characters.")
    return []


def decide_correction(state: AnswerLog, c: InvokeCommand, answered: Answered | None, why_not: str,
                      text: str) -> list[Event]:
    if (refused := _refused(state, c, "correct", answered, why_not)) is not None:
        return refused
    assert answered is not None
    text = text.strip()
    if problem := _text_problem(c, "correct", text, "the better answer", "The office opens at nine."):
        return problem
    if normalise(text) == normalise(answered.answer):
        return _rejected(c, "correct", "same_answer", "That is the answer I gave: nothing to correct.")
    return [CorrectionRecorded(source=answered.source, conversation_id=answered.conversation_id,
                               channel_id=answered.channel_id, question_message_id=answered.question_message_id,
                               asker_id=answered.asker_id, question=answered.question, original=answered.answer,
                               corrected=text, by=c.author_id, by_name=c.author_name, via=c.via or "reply",
                               message_id=c.message_id),
            _answered(c, "correct", "Thanks, noted: when I'm asked something like this again, I'll answer like "
                                    "your correction (and not like my first answer).")]


def decide_vote(state: AnswerLog, v: VoteAnswer, answered: Answered | None, why_not: str) -> list[Event]:
    if (refused := _refused(state, v, "vote", answered, why_not)) is not None:
        return [] if v.silent else refused
    assert answered is not None
    if v.author_id in state.voters:
        return [] if v.silent else _rejected(v, "vote", "already_voted", "You have already rated this answer: one "
                                                                        "vote per person.")
    vote = FeedbackRecorded(source=answered.source, channel_id=answered.channel_id,
                            question_message_id=answered.question_message_id, rating=v.rating, text="",
                            by=v.author_id, by_name=v.author_name, via="button", message_id=v.message_id)
    if v.silent:
        return [vote]
    return [vote, _answered(v, "vote", "Thanks for the 👍!" if v.rating == "up" else "Thanks for telling me.")]


def decide_feedback(state: AnswerLog, c: InvokeCommand, answered: Answered | None, text: str) -> list[Event]:
    """Written feedback: about an answer when the command names one, else about Parley in general."""
    if c.message_id in state.seen:
        return []
    if c.refusal:
        return _rejected(c, "feedback", c.refusal, REFUSAL_TEXT.get(c.refusal, REFUSAL_TEXT[NOT_ALLOWED]))
    text = text.strip()
    if problem := _text_problem(c, "feedback", text, "your feedback", "The answers are too long."):
        return problem
    return [FeedbackRecorded(source=c.source, channel_id=c.channel_id,
                             question_message_id=answered.question_message_id if answered else "", rating="",
                             text=text, by=c.author_id, by_name=c.author_name, via=c.via or "command",
                             message_id=c.message_id),
            _answered(c, "feedback", "Thanks for the feedback: it is recorded for the people who run me.")]
