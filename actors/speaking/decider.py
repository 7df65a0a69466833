"""Speaking into a file (``!say``), as a pure decider: what is recorded, and what the person is told."""
from __future__ import annotations

from dataclasses import dataclass

from actors.commands import Say, SpeakAnswer, Spoken, VoiceNote
from actors.access import BUSY
from actors.ports import DISK_FULL
from events.catalog.messages import CommandAnswered, CommandRejected
from events.catalog.speaking import SpeechSynthesized, VoiceReplyPrepared, VoiceReplySkipped
from events.model import Event


@dataclass(frozen=True)
class Utterance:
    version: int = 0


def evolve(state: Utterance, event: Event) -> Utterance:
    return Utterance(state.version + 1)


def decide(state: Utterance, command: Say, outcome: Spoken | str | None) -> list[Event]:
    """``outcome``: what was spoken, or why nothing was (``DISK_FULL``, or the voice's trouble in words), or
    None for empty text."""
    if state.version:
        return []  # a redelivery
    common = dict(conversation_id=command.conversation_id, message_id=command.message_id,
                  channel_id=command.channel_id, source=command.source)
    if command.refused == BUSY:
        return [CommandRejected(**common, author_id=command.author_id, command="say", reason=BUSY,
                                reply_text="Sorry, I'm busy speaking many answers right now and could not take "
                                           "yours: please ask again in a minute.")]
    if outcome is None:
        return [CommandRejected(**common, author_id=command.author_id, command="say", reason="empty",
                                reply_text="Say what? Write the text after the command: `!say Hello there`.")]
    if outcome == DISK_FULL:
        return [CommandRejected(**common, author_id=command.author_id, command="say", reason=DISK_FULL,
                                reply_text="I could not save the speech: my disk is full. The bot's operator has been "
                                           "told; please ask again later.")]
    if isinstance(outcome, str):
        return [CommandRejected(**common, author_id=command.author_id, command="say", reason="no_voice",
                                reply_text=f"I cannot speak right now: {outcome}. The bot's operator can set "
                                           "PIPER_VOICE to a Piper .onnx voice.")]
    return [SpeechSynthesized(**common, voice=outcome.voice, sentences=outcome.sentences,
                              duration_s=outcome.duration_s, audio_hash=outcome.audio_hash,
                              spoken_chars=outcome.spoken_chars),
            CommandAnswered(**common, author_id=command.author_id, command="say",
                            text=f"Spoken ({outcome.duration_s:.1f} s): {outcome.location}")]


def decide_voice_reply(state: Utterance, command: SpeakAnswer, note: VoiceNote | None) -> list[Event]:
    """The voice-message answer, once; nothing when there was nothing to speak or no voice to speak it
    (the written answer has gone out either way); a refused one (the Speaker busy) recorded as skipped."""
    if state.version:
        return []
    if command.refused:
        return [VoiceReplySkipped(conversation_id=command.conversation_id, message_id=command.message_id,
                                  channel_id=command.channel_id, source=command.source, reason=command.refused)]
    if note is None:
        return []
    return [VoiceReplyPrepared(conversation_id=command.conversation_id, message_id=command.message_id,
                               channel_id=command.channel_id, source=command.source, voice=note.voice,
                               audio_hash=note.audio_hash, duration_s=note.duration_s, waveform=note.waveform)]
