"""The Responder shell: runs ``actors.conversation.decider`` for its conversations and calls the LLM.

Conversations are spread over a pool of actors by a stable hash, so each conversation is answered in
order while different conversations are answered in parallel.
"""
from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from actors.fair_share import FairShare
from actors.conversation import decider as conversation
from actors.access import BUSY, QUIET, RateLimit
from actors.commands import (AbandonMessage, AnswerPending, ClearMemory, CompleteResponse, FailResponse,
                             ReceiveMessage, RecordCutOff)
from actors.ports import ChatModel, Draft, LLMError
from actors.streams import DecidedStreams, Publish
from actors.supervisor import Supervised, SupervisedActor
from actors.learning.teaching import few_shot_messages
from events import EventStore
from events.catalog.conversation import conversation_stream

log = logging.getLogger("parley.responder")


@dataclass(frozen=True)
class ResponderConfig:
    system_prompt: str
    context_turns: int
    limits: conversation.Limits
    max_prompt_chars: int = 0  # 0: no limit
    few_shot: int = 0  # similar examples of the channel's dataset given with each question


Lookup = Callable[[str, str, str, int], list]  # (scope, channel "source:channel_id", question, limit) -> examples


class ResponderActor(SupervisedActor):
    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish, llm: ChatModel,
                 config: ResponderConfig, model: Callable[[str], str],
                 drafts: Callable[[Draft], None] | None, wants_drafts: Callable[[str], bool],
                 similar: Lookup | None = None):
        super().__init__(supervisor)
        self.similar = similar
        self.llm = llm
        self.config = config
        self.model = model
        self.drafts = drafts
        self.wants_drafts = wants_drafts
        self.conversations = DecidedStreams(store, publish, conversation.Conversation(), conversation.evolve,
                                            conversation_stream)

    def handle(self, message: object) -> None:
        if isinstance(message, ReceiveMessage):
            self.conversations.execute(
                message.conversation_id, lambda s: conversation.decide(s, message, self.config.limits))
            # Also when it was recorded before: a redelivery after a crash still needs its answer.
            self._answer(message.conversation_id, message.message_id)
        elif isinstance(message, AnswerPending):
            for message_id in self.conversations.load(message.conversation_id).pending:
                self._answer(message.conversation_id, message_id)
        elif isinstance(message, ClearMemory):
            self.conversations.forget_all()
        elif isinstance(message, (CompleteResponse, FailResponse, AbandonMessage, RecordCutOff)):
            self.conversations.execute(message.conversation_id, lambda s: conversation.decide(s, message))
        else:
            raise TypeError(f"Responder cannot handle {type(message).__name__}")

    def _answer(self, conversation_id: str, message_id: str) -> None:
        state = self.conversations.load(conversation_id)
        if message_id not in state.pending:
            return
        channel = f"{state.source}:{state.channel_id}"
        teaching: list[dict[str, str]] = []
        if self.similar is not None and self.config.few_shot:
            question = next((t.text for t in state.turns if t.role == "user" and t.message_id == message_id), "")
            teaching = few_shot_messages(self.similar(state.scope, channel, question, self.config.few_shot))
        messages = conversation.prompt(state, message_id, self.config.system_prompt, self.config.context_turns,
                                       self.config.max_prompt_chars, teaching)
        model = self.model(channel, state.scope)
        on_text = None
        if self.drafts is not None and self.wants_drafts(state.source):
            drafts, source, channel = self.drafts, state.source, state.channel_id
            on_text = lambda text: drafts(Draft(source, channel, message_id, text, conversation_id))  # noqa: E731
        try:
            answer = self.llm.complete(messages, model, on_text)
            outcome: object = CompleteResponse(conversation_id, message_id, answer.text, model, answer.cut)
        except LLMError as e:
            log.warning("LLM failed for %s/%s: %s", conversation_id, message_id, e)
            outcome = FailResponse(conversation_id, message_id, e.reason)
        if isinstance(outcome, CompleteResponse) and not outcome.text.strip():
            log.warning("the LLM gave an empty answer for %s/%s: a local model whose context window is full "
                        "answers nothing; set PARLEY_LLM_CONTEXT_TOKENS to its context size", conversation_id,
                        message_id)
        self.conversations.execute(conversation_id, lambda s: conversation.decide(s, outcome))


def give_up(message: object, error: str) -> object | None:
    """What to do with a message the Responder failed on repeatedly: tell its author."""
    if isinstance(message, ReceiveMessage):
        return AbandonMessage(message.source, message.conversation_id, message.channel_id, message.message_id,
                              message.author_id, error)
    return None


class ResponderPool:
    """The Responders, a conversation always to the same one; a person over the rate limit (if any) is told
    once and then not answered until the minute is over (the console is never limited; a transcript's turn
    was counted as the audio it came from). A question for a Responder that already has ``max_waiting``
    waiting is refused as busy (recorded, and the person told at once by ``reception``, a Responder kept for
    that, instead of after the queue; never in the console). Generation is shared fairly between people
    (``actors.fair_share``): one person's questions never queue ahead of everyone else's."""

    def __init__(self, members: list[Supervised], rate: RateLimit | None = None, max_waiting: int = 0,
                 reception: Supervised | None = None, share: FairShare | None = None):
        self.members = members
        self.rate = rate
        self.max_waiting = max_waiting
        self.reception = reception
        self.share = share or FairShare()

    def tell(self, command: object) -> None:
        if self.rate is not None and isinstance(command, ReceiveMessage) and command.source != "console" \
                and not command.refusal and not command.counted:
            verdict = self.rate.verdict(command.author_id, command.sent_at or time.time())
            if verdict == QUIET:
                log.info("not answering %s from %s: over the rate limit", command.message_id, command.author_id)
                return
            if verdict:
                command = replace(command, refusal=verdict, text="")
        if isinstance(command, ClearMemory):
            for member in self.members:
                member.tell(command)
            return
        key = getattr(command, "conversation_id")
        member = self.members[zlib.crc32(key.encode()) % len(self.members)]
        if self.max_waiting and self.reception is not None and isinstance(command, ReceiveMessage) \
                and command.source != "console" \
                and member.waiting + self.share.waiting(command.author_id) >= self.max_waiting:
            log.warning("busy: %d questions wait for %s; refusing %s", member.waiting, member.name, command.message_id)
            self.reception.tell(replace(command, refusal=BUSY, text=""))
            return
        if isinstance(command, ReceiveMessage) and command.source != "console" and not command.refusal:
            self.share.submit(command.author_id, lambda done: member.tell(command, on_done=done))
            return
        member.tell(command)
