"""What one actor's events ask of another: functions from an event to the next command (or None).

``run.CAPABILITIES`` subscribes these; actors never call each other.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from actors.commands import ReceiveMessage, SpeakAnswer, SpeakInVoice
from actors.hearing.decider import turn_text
from actors.learning.actor import LearnCorrection
from events import RecordedEvent
from events.catalog.conversation import ResponseGenerated
from events.catalog.hearing import AudioReceived, TranscriptionCompleted, clip_stream
from events.catalog.corrections import CorrectionRecorded, CorrectionReviewed, answer_stream
from events.catalog.listening import UtteranceHeard
from events.scopes import OPERATORS, guild_scope


def turn_heard(done: TranscriptionCompleted, read_stream: Callable[[str], Iterable[RecordedEvent]]
               ) -> ReceiveMessage | None:
    """The transcript of a clip becomes the person's turn (the clip's stream says who sent it, and where)."""
    clip = read_stream(clip_stream(done.source, done.message_id))
    received = next((r.event for r in clip if isinstance(r.event, AudioReceived)), None)
    return turn_from_transcript(received, done) if received is not None else None


def turn_from_transcript(received: AudioReceived, done: TranscriptionCompleted) -> ReceiveMessage:
    """A transcript becomes the person's turn, answered like a typed message (with what was typed)."""
    return ReceiveMessage(
        source=received.source, conversation_id=received.conversation_id, channel_id=received.channel_id,
        message_id=received.message_id, author_id=received.author_id, author_name=received.author_name,
        text=turn_text(received, done.text), reply_to_message_id=received.reply_to_message_id, heard=done.text,
        scope=received.scope, counted=True)


def approved_correction(reviewed: CorrectionReviewed, read_stream: Callable[[str], Iterable[RecordedEvent]]
                        ) -> LearnCorrection | None:
    """An approved suggestion teaches: the correction it approves, as recorded in its answer's stream."""
    if not reviewed.approved:
        return None
    recorded = read_stream(answer_stream(reviewed.source, reviewed.question_message_id))
    correction = next((r.event for r in recorded if isinstance(r.event, CorrectionRecorded)
                       and r.event.message_id == reviewed.correction_id), None)
    return LearnCorrection(replace(correction, approved=True)) if correction is not None else None


def turn_said(heard: UtteranceHeard) -> ReceiveMessage:
    """What a person said in a voice channel becomes their turn in that channel's conversation."""
    return ReceiveMessage(source=heard.source, conversation_id=heard.conversation_id, channel_id=heard.channel_id,
                          message_id=heard.message_id, author_id=heard.speaker_id, author_name=heard.speaker_name,
                          text=heard.transcript, heard=heard.transcript,
                          scope=guild_scope(heard.guild_id) if heard.guild_id else OPERATORS)


def speak_answer(answer: ResponseGenerated) -> SpeakAnswer | None:
    """An answer to something heard may go back as a voice message too (the Speaker checks that the
    question was a voice message, not an audio file)."""
    if not answer.heard:
        return None
    return SpeakAnswer(answer.source, answer.conversation_id, answer.channel_id, answer.message_id, answer.text)


def say_in_voice_channel(answer: ResponseGenerated, guild_id: str | None) -> SpeakInVoice | None:
    """An answer is said in the voice channel too when the person who asked is in Parley's (``guild_id``)."""
    if guild_id is None:
        return None
    return SpeakInVoice(answer.source, guild_id, answer.conversation_id, answer.channel_id, answer.message_id,
                        answer.text)
