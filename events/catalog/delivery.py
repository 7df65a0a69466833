"""The outbox's events: each reply delivered once (stream ``reply:<source>:<message id>[:<part>]``), and
which events carry a reply and what text each one delivers."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from events.catalog.conversation import AnswerCutOff, MessageRejected, ResponseFailed, ResponseGenerated
from events.catalog.hearing import TranscriptionFailed
from events.catalog.learning import FineTuneFinished
from events.catalog.messages import AboutMessage, CommandAnswered, CommandRejected
from events.catalog.speaking import VoiceReplyPrepared
from events.codec import upcaster
from events.model import Event


@dataclass(frozen=True, kw_only=True)
class ReplySent(AboutMessage):
    """The transport confirmed a reply; ``sent_message_ids`` are its ids there (Discord's message ids).
    v2 added ``part``: "" for the written reply, "voice" for the voice-message reply to the same message."""

    type_name = "ReplySent"
    version = 2
    sent_message_ids: tuple[str, ...]
    part: str = ""


@dataclass(frozen=True, kw_only=True)
class ReplyDeliveryFailed(AboutMessage):
    """The transport refused a reply for good (channel gone, no permission); it will not be retried."""

    type_name = "ReplyDeliveryFailed"
    version = 2
    reason: str
    part: str = ""  # v2, as in ReplySent


# Events that carry a reply the outbox must deliver, and the text each one delivers.
REPLY_EVENTS = (ResponseGenerated, ResponseFailed, CommandAnswered, CommandRejected, MessageRejected,
                TranscriptionFailed, VoiceReplyPrepared, FineTuneFinished, AnswerCutOff)


def reply_part(event: Event) -> str:
    """Which of a message's replies an event carries: "" the written one, "voice" the voice message,
    "ft" the outcome of the fine-tuning job the message started (told later), "cut" the note that the answer
    was cut off aloud."""
    if isinstance(event, VoiceReplyPrepared):
        return "voice"
    if isinstance(event, AnswerCutOff):
        return "cut"  # a note on the written answer: the transport adds it to that message
    return "ft" if isinstance(event, FineTuneFinished) else ""


CUT_NOTES = {
    "length": "*(cut short: the answer reached its length limit)*",
    "stalled": "*(cut short: the language model stopped answering)*",
}


def reply_text(event: Event) -> str:
    if isinstance(event, ResponseGenerated):
        text = event.text
        if event.cut:
            text = f"{text.rstrip()}…\n\n{CUT_NOTES.get(event.cut, '*(cut short)*')}"
        if event.heard:  # what was heard first, so the person can tell a misheard question
            quoted = "\n".join(f"> {line}" for line in event.heard.splitlines())
            text = f"{quoted}\n\n{text}"
        return text
    if isinstance(event, CommandAnswered):
        return event.text
    if isinstance(event, VoiceReplyPrepared):
        return ""  # a voice message has no text
    if isinstance(event, AnswerCutOff):
        last = re.split(r"(?<=[.!?。])\s+", event.said.strip())[-1]  # the last sentence said
        last = last if len(last) <= 120 else last[:119] + "…"
        return (f"*(said aloud up to “{last}”, then cut off: someone spoke; the rest was only written)*" if last
                else "*(cut off aloud before a sentence was said: someone spoke; the answer was only written)*")
    return getattr(event, "reply_text")


def reply_stream(source: str, message_id: str, part: str = "") -> str:
    """The stream that records the one delivery of a reply (or of one part of it) to a user message."""
    return f"reply:{source}:{message_id}" + (f":{part}" if part else "")


@upcaster("ReplySent", 1)
def _reply_sent_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("part", "")  # v1 replies were all written ones
    return data


@upcaster("ReplyDeliveryFailed", 1)
def _reply_delivery_failed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("part", "")
    return data
