"""The Speaker's events, in the stream ``speech:<source>:<message id>``: an answer synthesized as speech."""
from __future__ import annotations

from dataclasses import dataclass

from events.catalog.messages import AboutMessage


@dataclass(frozen=True, kw_only=True)
class SpeechSynthesized(AboutMessage):
    """Text was spoken with a Piper voice; the audio is a content-addressed file (``audio_hash``)."""

    type_name = "SpeechSynthesized"
    voice: str
    sentences: int
    duration_s: float
    audio_hash: str
    spoken_chars: int


@dataclass(frozen=True, kw_only=True)
class VoiceReplyPrepared(AboutMessage):
    """The answer to a voice message, spoken into a voice-message file (``speech/<audio_hash>.ogg``),
    to be sent as a voice message of its own (reply part "voice")."""

    type_name = "VoiceReplyPrepared"
    voice: str
    audio_hash: str
    duration_s: float
    waveform: str  # base64, one byte of amplitude per point, at most 256


@dataclass(frozen=True, kw_only=True)
class VoiceReplySkipped(AboutMessage):
    """The answer to a voice message went out in writing only: ``reason`` "busy" (more voice replies were
    waiting for the Speaker than ``PARLEY_MAX_WAITING_SPEECH``)."""

    type_name = "VoiceReplySkipped"
    reason: str


def speech_stream(source: str, message_id: str) -> str:
    return f"speech:{source}:{message_id}"
