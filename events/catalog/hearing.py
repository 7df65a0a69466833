"""The Transcriber's events, in the stream ``clip:<source>:<message id>``: an audio clip received, transcribed or
not, and purged. An utterance heard in a voice channel (``UtteranceHeard``, the listening room's) has a clip
stream under its utterance id too, holding only its ``AudioPurged``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events.catalog.messages import AboutMessage
from events.codec import upcaster
from events.model import Event
from events.scopes import OPERATORS, read_before_scopes


@dataclass(frozen=True, kw_only=True)
class AudioReceived(AboutMessage):
    """A person sent audio (a voice message or an audio file). The bytes are a content-addressed file in
    the data dir (``audio/<audio_hash>``); ``audio_hash`` is "" when the clip was refused before it was
    stored (too large). v2 added ``scope``: where it was sent (``events.scopes``)."""

    type_name = "AudioReceived"
    version = 2
    author_id: str
    author_name: str
    audio_hash: str
    content_type: str
    size_bytes: int
    declared_duration_s: float | None = None
    filename: str = ""
    text: str = ""  # text sent with the audio: it joins the transcript in one turn
    voice_message: bool = False
    reply_to_message_id: str | None = None
    scope: str = OPERATORS


@dataclass(frozen=True, kw_only=True)
class TranscriptionCompleted(AboutMessage):
    type_name = "TranscriptionCompleted"
    version = 2
    audio_hash: str
    text: str
    words: tuple[dict, ...]  # {"word", "start", "end", "conf"} per word
    duration_s: float
    model: str
    decode_s: float
    recognize_s: float
    speaker_id: str = ""  # v2: who spoke (the transcript is their words)


@dataclass(frozen=True, kw_only=True)
class TranscriptionFailed(AboutMessage):
    """Reason: no_model, too_large, too_long, undecodable, silent, busy, no_space, internal."""

    type_name = "TranscriptionFailed"
    audio_hash: str
    reason: str
    reply_text: str


@dataclass(frozen=True, kw_only=True)
class AudioPurged(Event):
    """An audio file was deleted (retention): a clip's or an utterance's; its transcript stays in the log."""

    type_name = "AudioPurged"
    audio_hash: str
    reason: str


def clip_stream(source: str, message_id: str) -> str:
    """The stream of one audio clip: received, then transcribed or failed, maybe purged."""
    return f"clip:{source}:{message_id}"


@upcaster("TranscriptionCompleted", 1)
def _transcription_completed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("speaker_id", "")
    return data


read_before_scopes("AudioReceived", 1)
