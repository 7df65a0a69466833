"""The Responder's domain: one conversation, as a pure decider.

``decide(state, command) -> events`` and ``evolve(state, event) -> state`` do no I/O; the actor shell
(``actors.conversation.actor``) loads the state, calls the LLM with ``prompt(...)``, and appends what is decided.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from actors.access import NOT_ALLOWED, REFUSAL_TEXT
from actors.commands import AbandonMessage, CompleteResponse, FailResponse, ReceiveMessage, RecordCutOff
from events.catalog.conversation import (AnswerCutOff, MessageReceived, MessageRejected, ResponseFailed,
                                         ResponseGenerated)
from events.model import Event
from events.scopes import OPERATORS

KEEP_TURNS = 200  # turns kept in memory per conversation; the prompt uses the last `context_turns`
KEEP_REJECTED = 100  # rejected message ids remembered, to recognise a redelivery

FAILURE_TEXT = {
    "timeout": "Sorry, the language model did not answer in time. Please try again in a moment.",
    "unreachable": "Sorry, I cannot reach the language model right now. Please try again later.",
    "rate_limited": "Sorry, the language model is busy (rate limited). Please try again in a minute.",
    "rejected": "Sorry, the language model refused the request.",
    "unauthorized": "Sorry, the language model refused my credentials; the bot's operator needs to fix its API key.",
    "model_not_found": "Sorry, the configured language model does not exist; the bot's operator needs to fix it.",
    "adapter_unusable": "Sorry, the tuned model chosen here cannot be loaded (its file is missing or damaged); an "
                        "admin can switch back with `model use` or train it again.",
    "empty_answer": "Sorry, the language model gave an empty answer. Please rephrase and try again.",
    "malformed": "Sorry, the language model's server sent an answer I could not read. Please try again.",
    "internal_error": "Sorry, something went wrong on my side while answering. It has been logged.",
}


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    text: str
    message_id: str
    author_name: str = ""
    heard: str = ""  # the transcript, when the turn was spoken
    author_id: str = ""


@dataclass(frozen=True)
class Conversation:
    version: int = 0
    source: str = ""
    channel_id: str = ""
    scope: str = OPERATORS  # whose examples and model answer here (``events.scopes``)
    turns: tuple[Turn, ...] = ()
    rejected: tuple[str, ...] = ()  # recently rejected message ids
    pending: tuple[str, ...] = ()  # received, not yet answered or failed, oldest first
    cut_off: Mapping[str, str] = field(default_factory=dict)  # answers cut off aloud before they were recorded

    def has_seen(self, message_id: str) -> bool:
        """Recorded already (received or rejected)? Redeliveries and catch-up overlaps are recent, so
        bounded tuples are enough, and copying them per event stays cheap when folding long streams."""
        return (message_id in self.pending or message_id in self.rejected
                or any(t.message_id == message_id for t in self.turns if t.role == "user"))


CUT_OFF_NOTE = "[cut off here: the person spoke over this answer, and the rest of it was never said]"


def cut_off_text(said: str) -> str:
    """What the conversation remembers of an answer cut off aloud: what was said, and that it was cut off."""
    return f"{said.rstrip()} … {CUT_OFF_NOTE}" if said.strip() else CUT_OFF_NOTE


@dataclass(frozen=True)
class Limits:
    max_input_chars: int = 4000


def evolve(state: Conversation, event: Event) -> Conversation:
    state = replace(state, version=state.version + 1)
    if isinstance(event, MessageReceived):
        turn = Turn("user", event.text, event.message_id, event.author_name, event.heard, event.author_id)
        return replace(state, source=event.source, channel_id=event.channel_id, scope=event.scope,
                       turns=(state.turns + (turn,))[-KEEP_TURNS:], pending=state.pending + (event.message_id,))
    if isinstance(event, MessageRejected):
        return replace(state, rejected=(state.rejected + (event.message_id,))[-KEEP_REJECTED:])
    if isinstance(event, ResponseGenerated):
        said = state.cut_off.get(event.message_id)  # cut off aloud before it was all written
        turn = Turn("assistant", cut_off_text(said) if said is not None else event.text, event.message_id)
        return replace(state, turns=(state.turns + (turn,))[-KEEP_TURNS:],
                       pending=tuple(m for m in state.pending if m != event.message_id),
                       cut_off={k: v for k, v in state.cut_off.items() if k != event.message_id})
    if isinstance(event, AnswerCutOff):
        if any(t.role == "assistant" and t.message_id == event.message_id for t in state.turns):
            return replace(state, turns=tuple(replace(t, text=cut_off_text(event.said))
                                              if t.role == "assistant" and t.message_id == event.message_id else t
                                              for t in state.turns))
        return replace(state, cut_off={**dict(list(state.cut_off.items())[-KEEP_REJECTED:]),
                                       event.message_id: event.said})
    if isinstance(event, ResponseFailed):
        return replace(state, pending=tuple(m for m in state.pending if m != event.message_id))
    return state


def decide(state: Conversation, command: object, limits: Limits = Limits()) -> list[Event]:
    if isinstance(command, ReceiveMessage):
        return _receive(state, command, limits)
    if isinstance(command, CompleteResponse):
        if command.message_id not in state.pending:
            return []
        if not command.text.strip():
            return [_failed(state, command.conversation_id, command.message_id, "empty_answer")]
        asked = next((t for t in reversed(state.turns) if t.role == "user" and t.message_id == command.message_id),
                     None)
        return [ResponseGenerated(conversation_id=command.conversation_id, message_id=command.message_id,
                                  channel_id=state.channel_id, source=state.source, text=command.text,
                                  model=command.model, cut=command.cut, heard=asked.heard if asked else "",
                                  asker_id=asked.author_id if asked else "")]
    if isinstance(command, RecordCutOff):
        turn = next((t for t in state.turns if t.message_id == command.message_id and t.role == "user"), None)
        if turn is None or command.message_id in state.cut_off or any(
                t.role == "assistant" and t.message_id == command.message_id and t.text.endswith(CUT_OFF_NOTE)
                for t in state.turns):
            return []  # not this conversation's, or recorded already
        return [AnswerCutOff(conversation_id=command.conversation_id, message_id=command.message_id,
                             channel_id=state.channel_id, source=state.source, said=command.said,
                             reason=command.reason, asker_id=turn.author_id)]
    if isinstance(command, FailResponse):
        if command.message_id not in state.pending:
            return []
        return [_failed(state, command.conversation_id, command.message_id, command.reason)]
    if isinstance(command, AbandonMessage):
        if command.message_id in state.pending:
            return [_failed(state, command.conversation_id, command.message_id, "internal_error")]
        if state.has_seen(command.message_id):
            return []
        return [MessageRejected(conversation_id=command.conversation_id, message_id=command.message_id,
                                channel_id=command.channel_id, author_id=command.author_id, source=command.source,
                                reason="internal_error", reply_text=FAILURE_TEXT["internal_error"])]
    raise TypeError(f"the Responder does not handle {type(command).__name__}")


def _receive(state: Conversation, c: ReceiveMessage, limits: Limits) -> list[Event]:
    if state.has_seen(c.message_id):
        return []  # already recorded: a redelivery or a catch-up overlap, answered once
    text = c.text.strip()
    reason = reply = ""
    if c.refusal:
        reason, reply = c.refusal, REFUSAL_TEXT.get(c.refusal, REFUSAL_TEXT[NOT_ALLOWED])
    elif not text:
        reason, reply = "empty", "Your message was empty: write something and I will answer."
    elif len(text) > limits.max_input_chars:
        reason = "too_long"
        reply = (f"Your message is {len(text):,} characters long; I read at most {limits.max_input_chars:,}. "
                 "Please shorten it or split it into parts.")
    if reason:
        return [MessageRejected(conversation_id=c.conversation_id, message_id=c.message_id,
                                channel_id=c.channel_id, author_id=c.author_id, source=c.source,
                                reason=reason, reply_text=reply)]
    return [MessageReceived(conversation_id=c.conversation_id, message_id=c.message_id, channel_id=c.channel_id,
                            author_id=c.author_id, author_name=c.author_name, text=text, source=c.source,
                            reply_to_message_id=c.reply_to_message_id, heard=c.heard, scope=c.scope)]


def _failed(state: Conversation, conversation_id: str, message_id: str, reason: str) -> ResponseFailed:
    return ResponseFailed(conversation_id=conversation_id, message_id=message_id,
                          channel_id=state.channel_id, source=state.source, reason=reason,
                          reply_text=FAILURE_TEXT.get(reason, FAILURE_TEXT["internal_error"]))


def prompt(state: Conversation, message_id: str, system_prompt: str, context_turns: int,
           max_chars: int = 0, teaching: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """The chat messages for answering ``message_id``: the system prompt, the ``teaching`` (few-shot
    examples, see ``actors.learning.teaching``), then recent turns up to it.

    ``max_chars`` (0: no limit) bounds the whole prompt: older turns are left out first, so that a model
    with a small context window (a local one) has room left for its answer. The question itself is
    always sent."""
    turns = list(state.turns)
    end = next((i for i, t in enumerate(turns) if t.role == "user" and t.message_id == message_id), len(turns) - 1)
    window = turns[max(0, end + 1 - context_turns): end + 1] if context_turns else turns[end:end + 1]
    teaching = teaching or []
    if max_chars and window:
        room = max_chars - len(system_prompt) - len(window[-1].text)
        while teaching and room - sum(len(m["content"]) for m in teaching) < 0:
            teaching = teaching[:-2] if teaching[-1]["role"] == "assistant" else teaching[:-1]
        room -= sum(len(m["content"]) for m in teaching)
        kept = 1
        for t in reversed(window[:-1]):
            room -= len(t.text)
            if room < 0:
                break
            kept += 1
        window = window[-kept:]
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages += teaching
    messages += [{"role": t.role, "content": t.text} for t in window]
    return messages
