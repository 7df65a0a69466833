"""What one actor's events ask of another: pure functions from an event to the next command.

The Router subscribes these (``run.build`` wires them); actors never call each other.
"""
from __future__ import annotations

from actors.commands import ReceiveMessage, SpeakAnswer
from actors.hearing.decider import turn_text
from events.catalog.conversation import ResponseGenerated
from events.catalog.hearing import AudioReceived, TranscriptionCompleted


def turn_from_transcript(received: AudioReceived, done: TranscriptionCompleted) -> ReceiveMessage:
    """A transcript becomes the person's turn, answered like a typed message (with what was typed)."""
    return ReceiveMessage(
        source=received.source, conversation_id=received.conversation_id, channel_id=received.channel_id,
        message_id=received.message_id, author_id=received.author_id, author_name=received.author_name,
        text=turn_text(received, done.text), reply_to_message_id=received.reply_to_message_id, heard=done.text)


def speak_answer(answer: ResponseGenerated) -> SpeakAnswer | None:
    """An answer to something heard may go back as a voice message too (the Speaker checks that the
    question was a voice message, not an audio file)."""
    if not answer.heard:
        return None
    return SpeakAnswer(answer.source, answer.conversation_id, answer.channel_id, answer.message_id, answer.text)
