"""The CorrectionLog shell: runs ``actors.corrections.decider`` over one answer's stream. It looks up what
Parley answered (a read model that may lag the log by a moment, or an answer still being written: then
it asks again shortly, a bounded number of times)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from actors.corrections import decider as corrections
from actors.commands import InvokeCommand, VoteAnswer
from actors.corrections.decider import AnswerLog, Answered
from actors.streams import DecidedStreams, Publish
from actors.supervisor import Supervised, SupervisedActor
from events import EventStore
from events.catalog.corrections import answer_stream

CORRECTION_COMMANDS = frozenset({"correct", "feedback", "corrections"})
FindAnswer = Callable[[str, str, bool], tuple[Answered | None, str]]  # (source, message id, by question id)
Suggestions = Callable[[str | None], list[dict]]  # scope (None: every scope) -> members' corrections to review
REVIEW_USAGE = "Use `corrections review`, then `corrections approve N` or `corrections reject N`."


@dataclass(frozen=True)
class LookAgain:
    """The answer was not found yet (still being written, or not yet in the read model)."""

    message: object
    attempt: int


class CorrectionLogActor(SupervisedActor):
    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish, find: FindAnswer,
                 later: Callable[[float, object], None], suggestions: Suggestions = lambda scope: [],
                 attempts: int = 40, every_s: float = 0.25):
        super().__init__(supervisor)
        self.find = find
        self.suggestions = suggestions
        self.later = later
        self.attempts = attempts
        self.every_s = every_s
        self.answers = DecidedStreams(store, publish, AnswerLog(), corrections.evolve, lambda key: key)

    def handle(self, message: object) -> None:
        attempt = 0
        if isinstance(message, LookAgain):
            message, attempt = message.message, message.attempt
        if isinstance(message, InvokeCommand) and message.name.strip().lower() == "corrections":
            self._review(message)
            return
        if isinstance(message, VoteAnswer):
            target = message.target_message_id
        elif isinstance(message, InvokeCommand):
            target = message.target_message_id
        else:
            raise TypeError(f"the CorrectionLog cannot handle {type(message).__name__}")
        answered, why = self.find(message.source, target, getattr(message, "via", "") == "console")
        if why in ("pending", "unknown") and attempt < self.attempts:
            self.later(self.every_s, LookAgain(message, attempt + 1))
            return
        key = answer_stream(message.source, answered.question_message_id if answered else target or message.message_id)
        if isinstance(message, VoteAnswer):
            self.answers.execute(key, lambda s: corrections.decide_vote(s, message, answered, why))
        elif message.name.strip().lower() == "correct":
            self.answers.execute(key, lambda s: corrections.decide_correction(s, message, answered, why, message.args))
        elif not target:  # feedback about Parley in general
            self.answers.execute(answer_stream(message.source, "feedback-" + message.message_id),
                                 lambda s: corrections.decide_feedback(s, message, None, message.args))
        else:
            self.answers.execute(key, lambda s: corrections.decide_feedback(s, message, answered, message.args))

    def _review(self, c: InvokeCommand) -> None:
        """``corrections review``: members' corrections waiting in the asker's scope; ``approve|reject N``."""
        words = c.args.split()
        action = words[0].lower() if words else "review"
        refused = corrections.review_refusal(c)
        waiting = self.suggestions(None if c.is_operator else c.scope) if refused is None else []
        if refused is not None or action in ("review", "list") or action not in ("approve", "reject"):
            reply = refused or ([corrections.listing(c, waiting)] if action in ("review", "list") else
                                [corrections.usage(c, REVIEW_USAGE)])
            self.answers.execute(f"review:{c.source}:{c.message_id}", lambda s: reply if not s.seen else [])
            return
        wanted = words[1] if len(words) > 1 else ""
        found = next((w for w in waiting if str(w["position"]) == wanted), None)
        if found is None:
            text = f"There is no correction `{wanted[:20]}` waiting for review here; `corrections review` lists them."
            self.answers.execute(f"review:{c.source}:{c.message_id}",
                                 lambda s: [] if s.seen else [corrections.usage(c, text)])
            return
        suggestion = corrections.Suggestion(found["position"], found["source"], found["question_id"], found["scope"],
                                            found["message_id"])
        self.answers.execute(answer_stream(found["source"], found["question_id"]),
                             lambda s: corrections.decide_review(s, c, suggestion, action == "approve"))
