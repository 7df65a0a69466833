"""The Responder's events, in the stream ``conversation:<id>``: what people wrote or said, and the answers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events.catalog.messages import AboutMessage
from events.codec import upcaster
from events.scopes import OPERATORS, read_before_scopes


@dataclass(frozen=True, kw_only=True)
class MessageReceived(AboutMessage):
    """A person wrote (or said) something to Parley. v2 added ``source`` (which transport it came from);
    v3 added ``heard``: the transcript, when the turn came as audio (``text`` then holds it too); v4 added
    ``scope`` (``events.scopes``): the guild, or the person's DMs, where it was said."""

    type_name = "MessageReceived"
    version = 4
    author_id: str
    author_name: str
    text: str
    reply_to_message_id: str | None = None
    heard: str = ""
    scope: str = OPERATORS


@dataclass(frozen=True, kw_only=True)
class MessageRejected(AboutMessage):
    """A message Parley will not answer with the LLM (empty, too long, ...); the user is told why."""

    type_name = "MessageRejected"
    author_id: str
    reason: str
    reply_text: str


@dataclass(frozen=True, kw_only=True)
class ResponseGenerated(AboutMessage):
    """The LLM answered. v2 added ``cut``: why the answer is incomplete ("" when it is not):
    "length" (it reached the answer-token limit) or "stalled" (the model stopped progressing); and
    ``heard``: what was heard when the question was audio."""

    type_name = "ResponseGenerated"
    version = 3
    text: str
    model: str
    cut: str = ""
    heard: str = ""  # the transcript of the spoken question, quoted above the answer
    asker_id: str = ""  # v3: who asked; the answer is theirs to have forgotten (it may repeat their words)


@dataclass(frozen=True, kw_only=True)
class ResponseFailed(AboutMessage):
    type_name = "ResponseFailed"
    reason: str
    reply_text: str


@dataclass(frozen=True, kw_only=True)
class AnswerCutOff(AboutMessage):
    """An answer said aloud was cut off: someone spoke over it (``reason`` "barge_in"). ``said`` is what had been
    said of it (by sentence: those begun); the conversation remembers that, not the whole answer, so the next answer
    neither repeats nor contradicts what was never heard."""

    type_name = "AnswerCutOff"
    said: str
    reason: str
    asker_id: str = ""  # whose answer it was (``said`` may repeat their words): sealed with their key


def conversation_stream(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


@upcaster("MessageReceived", 1)
def _message_received_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    # v1 was written when Discord was the only transport.
    data.setdefault("source", "discord")
    return data


@upcaster("ResponseGenerated", 1)
def _response_generated_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("cut", "")  # v1 answers were never cut, nor answers to audio
    data.setdefault("heard", "")
    return data


@upcaster("MessageReceived", 2)
def _message_received_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("heard", "")  # v2 messages were all typed
    return data


@upcaster("ResponseGenerated", 2)
def _response_generated_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("asker_id", "")  # not recorded before v3
    return data


read_before_scopes("MessageReceived", 3)  # the operators': no server inherits what was said before scopes
