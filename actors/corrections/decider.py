"""The CorrectionLog's domain: corrections and votes about one of Parley's answers, as a pure decider
over that answer's stream (``answer:<source>:<question id>``).

The shell finds what was answered (``Answered``: the question, the answer, where) and hands it in;
without it (the message is not one of Parley's answers) the command is refused with a reason.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from actors.access import NOT_ALLOWED, REFUSAL_TEXT, may_act_on
from actors.commands import InvokeCommand, VoteAnswer
from actors.learning.examples import normalise
from events.catalog.corrections import CorrectionRecorded, CorrectionReviewed, FeedbackRecorded
from events.catalog.messages import CommandAnswered, CommandRejected
from events.model import Event
from events.scopes import OPERATORS

MAX_CORRECTION_CHARS = 4000
REVIEW_BUTTONS = 10  # suggestions offered as approve/reject buttons in one review (Discord: 5 rows of 5)
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
    scope: str | None = OPERATORS  # whose question it was (``events.scopes``; None read as the operators')


@dataclass(frozen=True)
class AnswerLog:
    version: int = 0
    voters: frozenset[str] = frozenset()  # who rated this answer (one vote each)
    corrections: int = 0
    pending: frozenset[str] = frozenset()  # members' corrections (their command ids) waiting for an admin
    seen: tuple[str, ...] = ()  # command and interaction ids already handled


def evolve(state: AnswerLog, event: Event) -> AnswerLog:
    state = replace(state, version=state.version + 1)
    message_id = getattr(event, "message_id", "")
    if message_id:
        state = replace(state, seen=(state.seen + (message_id,))[-KEEP_SEEN:])
    if isinstance(event, FeedbackRecorded) and event.rating:
        return replace(state, voters=state.voters | {event.by})
    if isinstance(event, CorrectionRecorded):
        pending = state.pending if event.approved else state.pending | {event.message_id}
        return replace(state, corrections=state.corrections + 1, pending=pending)
    if isinstance(event, CorrectionReviewed):
        return replace(state, pending=state.pending - {event.correction_id})
    return state


def _common(c: InvokeCommand | VoteAnswer, name: str) -> dict:
    return dict(conversation_id=c.conversation_id, message_id=c.message_id, channel_id=c.channel_id,
                author_id=c.author_id, source=c.source, command=name)


def _rejected(c: InvokeCommand | VoteAnswer, name: str, reason: str, text: str) -> list[Event]:
    return [CommandRejected(**_common(c, name), reason=reason, reply_text=text)]


def _answered(c: InvokeCommand | VoteAnswer, name: str, text: str, choices: tuple[str, ...] = ()) -> CommandAnswered:
    return CommandAnswered(**_common(c, name), text=text, choices=choices)


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
    scope = answered.scope or OPERATORS
    if scope != c.scope and not c.is_operator:  # an answer given in another server (named by its id or link)
        return _rejected(c, "correct", "other_scope", NOT_FOUND_TEXT["unknown"])
    teaches = may_act_on(scope, where=c.scope, is_admin=c.is_admin, is_operator=c.is_operator)
    thanks = ("Thanks, noted: when I'm asked something like this again, I'll answer like your correction (and not "
              "like my first answer)." if teaches else
              "Thanks: your correction is recorded and shown to this server's admins. It teaches my answers once "
              "one of them approves it.")
    return [CorrectionRecorded(source=answered.source, conversation_id=answered.conversation_id,
                               channel_id=answered.channel_id, question_message_id=answered.question_message_id,
                               asker_id=answered.asker_id, question=answered.question, original=answered.answer,
                               corrected=text, by=c.author_id, by_name=c.author_name, via=c.via or "reply",
                               message_id=c.message_id, scope=scope, approved=teaches),
            _answered(c, "correct", thanks)]


@dataclass(frozen=True)
class Suggestion:
    """A member's correction waiting for review, as the read model lists it."""

    position: int
    source: str
    question_message_id: str
    scope: str
    correction_id: str  # the command that recorded it


def decide_review(state: AnswerLog, c: InvokeCommand, suggestion: Suggestion, approve: bool) -> list[Event]:
    """An admin of the suggestion's scope approves it (it teaches from now on) or rejects it."""
    if c.message_id in state.seen:
        return []
    verb = "approve" if approve else "reject"
    if not may_act_on(suggestion.scope, where=c.scope, is_admin=c.is_admin, is_operator=c.is_operator):
        return _rejected(c, "corrections", "not_admin", f"Only this server's admins can {verb} corrections.")
    if suggestion.correction_id not in state.pending:
        return _rejected(c, "corrections", "already_reviewed", f"Correction {suggestion.position} was already reviewed.")
    return [CorrectionReviewed(source=suggestion.source, question_message_id=suggestion.question_message_id,
                               correction_id=suggestion.correction_id, scope=suggestion.scope, approved=approve,
                               by=c.author_id, message_id=c.message_id),
            _answered(c, "corrections", f"Correction {suggestion.position} "
                                        + ("approved: it teaches my answers from now on." if approve else
                                           "rejected: it will not teach my answers."))]


def decide_vote(state: AnswerLog, v: VoteAnswer, answered: Answered | None, why_not: str) -> list[Event]:
    if (refused := _refused(state, v, "vote", answered, why_not)) is not None:
        return [] if v.silent else refused
    assert answered is not None
    if v.author_id in state.voters:
        return [] if v.silent else _rejected(v, "vote", "already_voted", "You have already rated this answer: one "
                                                                        "vote per person.")
    vote = FeedbackRecorded(source=answered.source, channel_id=answered.channel_id,
                            question_message_id=answered.question_message_id, rating=v.rating, text="",
                            by=v.author_id, by_name=v.author_name, via="button", message_id=v.message_id,
                            scope=answered.scope or OPERATORS)
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
                             message_id=c.message_id, scope=answered.scope or OPERATORS if answered else c.scope),
            _answered(c, "feedback", "Thanks for the feedback: it is recorded for the people who run me.")]


def review_refusal(c: InvokeCommand) -> list[Event] | None:
    if c.refusal:
        return _rejected(c, "corrections", c.refusal, REFUSAL_TEXT.get(c.refusal, REFUSAL_TEXT[NOT_ALLOWED]))
    if not may_act_on(c.scope, where=c.scope, is_admin=c.is_admin, is_operator=c.is_operator):
        return _rejected(c, "corrections", "not_admin", "Only this server's admins review members' corrections.")
    return None


def listing(c: InvokeCommand, waiting: list[dict]) -> CommandAnswered:
    if not waiting:
        return _answered(c, "corrections", "No corrections are waiting for review here.")
    lines = [f"**{w['position']}** by {w['by_name'] or 'someone'}: to “{_short(w['question'])}” I said “"
             f"{_short(w['original'])}”; they suggest “{_short(w['corrected'])}”" for w in waiting]
    choices = tuple(f"corrections {verb} {w['position']}" for w in waiting[:REVIEW_BUTTONS]
                    for verb in ("approve", "reject"))
    return _answered(c, "corrections", "Corrections waiting for review (`corrections approve N` teaches it, "
                                       "`corrections reject N` drops it):\n" + "\n".join(lines), choices)


def usage(c: InvokeCommand, text: str) -> CommandRejected:
    return CommandRejected(**_common(c, "corrections"), reason="usage", reply_text=text)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
