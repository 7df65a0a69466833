"""One audio clip, as a pure decider: received, then transcribed or failed, maybe purged later."""
from __future__ import annotations

from dataclasses import dataclass, replace

from actors.access import RATE_LIMITED, REFUSAL_TEXT
from actors.commands import CompleteTranscription, FailTranscription, ReceiveAudio
from events.catalog.hearing import AudioPurged, AudioReceived, TranscriptionCompleted, TranscriptionFailed
from events.model import Event

MODEL_LIST_URL = "https://alphacephei.com/vosk/models"

FAILURE_TEXT = {
    "no_model": ("I can't listen to audio yet: no speech model is installed. The bot's operator can download "
                 f"one for your language from {MODEL_LIST_URL} and set VOSK_MODEL_PATH to its folder."),
    "too_large": "That audio file is too large for me (at most {max_mb} MB). Please send a shorter clip.",
    "too_long": "That recording is too long for me (at most {max_seconds} seconds). Please send a shorter one.",
    "undecodable": "I could not read that file as audio: it is not audio I can read (or it is damaged).",
    "silent": "I could not hear anything in that.",
    "busy": ("Sorry, I'm busy listening to many recordings right now and could not take yours: please send it "
             "again in a minute."),
    "no_space": ("I could not keep that recording: my disk is full. The bot's operator has been told; please send "
                 "it again later."),
    "internal": "Sorry, something went wrong on my side while listening to that. It has been logged.",
    "rate_limited": REFUSAL_TEXT[RATE_LIMITED],
}


@dataclass(frozen=True)
class Clip:
    version: int = 0
    received: AudioReceived | None = None
    finished: bool = False  # transcribed or failed
    purged: bool = False


@dataclass(frozen=True)
class AudioLimits:
    max_mb: int = 25
    max_seconds: int = 300


def evolve(state: Clip, event: Event) -> Clip:
    state = replace(state, version=state.version + 1)
    if isinstance(event, AudioReceived):
        return replace(state, received=event)
    if isinstance(event, (TranscriptionCompleted, TranscriptionFailed)):
        return replace(state, finished=True)
    if isinstance(event, AudioPurged):
        return replace(state, purged=True)
    return state


def decide(state: Clip, command: object, limits: AudioLimits = AudioLimits()) -> list[Event]:
    if isinstance(command, ReceiveAudio):
        if state.received is not None:
            return []  # a redelivery, or catch-up meeting a clip it has
        c = command
        received = AudioReceived(
            conversation_id=c.conversation_id, message_id=c.message_id, channel_id=c.channel_id, source=c.source,
            author_id=c.author_id, author_name=c.author_name, audio_hash=c.audio_hash, content_type=c.content_type,
            size_bytes=c.size_bytes, declared_duration_s=c.declared_duration_s, filename=c.filename[:200],
            text=c.text, voice_message=c.voice_message, reply_to_message_id=c.reply_to_message_id, scope=c.scope)
        if c.refused:
            return [received, _failed(received, c.refused, limits)]
        return [received]
    if state.received is None or state.finished:
        return []
    r = state.received
    if isinstance(command, CompleteTranscription):
        if not command.text.strip():
            return [_failed(r, "silent", limits)]
        return [TranscriptionCompleted(
            conversation_id=r.conversation_id, message_id=r.message_id, channel_id=r.channel_id, source=r.source,
            audio_hash=r.audio_hash, text=command.text.strip(), words=command.words, duration_s=command.duration_s,
            model=command.model, decode_s=command.decode_s, recognize_s=command.recognize_s, speaker_id=r.author_id)]
    if isinstance(command, FailTranscription):
        return [_failed(r, command.reason, limits)]
    raise TypeError(f"the Transcriber does not handle {type(command).__name__}")


def purge(state: Clip) -> list[Event]:
    if state.received is None or state.purged or not state.received.audio_hash:
        return []
    return [AudioPurged(audio_hash=state.received.audio_hash, reason="retention")]


def purge_heard(state: Clip, audio_hash: str) -> list[Event]:
    """The audio of an utterance heard in a voice channel (``UtteranceHeard``, recorded by the listening room)
    deleted by retention: recorded once, in the clip stream of the utterance's id."""
    return [] if state.purged else [AudioPurged(audio_hash=audio_hash, reason="retention")]


def _failed(r: AudioReceived, reason: str, limits: AudioLimits) -> TranscriptionFailed:
    text = FAILURE_TEXT.get(reason, FAILURE_TEXT["internal"]).format(max_mb=limits.max_mb,
                                                                     max_seconds=limits.max_seconds)
    return TranscriptionFailed(conversation_id=r.conversation_id, message_id=r.message_id, channel_id=r.channel_id,
                               source=r.source, audio_hash=r.audio_hash,
                               reason=reason if reason in FAILURE_TEXT else "internal", reply_text=text)


def turn_text(received: AudioReceived, transcript: str) -> str:
    """The person's turn: what they typed with the audio, then what they said."""
    return f"{received.text.strip()}\n{transcript}".strip() if received.text.strip() else transcript
