"""Every event Parley records, named in the past tense.

Events carry ids, text and decisions; never secrets (tokens, keys) and never audio bytes.
Changing a field means a new ``version`` and an upcaster in ``events.codec`` for the old one.
"""
from __future__ import annotations

from dataclasses import dataclass

from events.model import Event


@dataclass(frozen=True, kw_only=True)
class AboutMessage(Event):
    """Fields shared by events about one user message: where it was and which conversation it is in."""

    conversation_id: str
    message_id: str  # the user's message (on Discord, its snowflake)
    channel_id: str
    source: str  # the transport: "discord", "console", ...


@dataclass(frozen=True, kw_only=True)
class MessageReceived(AboutMessage):
    """A person wrote (or said) something to Parley. v2 added ``source`` (which transport it came from);
    v3 added ``heard``: the transcript, when the turn came as audio (``text`` then holds it too)."""

    type_name = "MessageReceived"
    version = 3
    author_id: str
    author_name: str
    text: str
    reply_to_message_id: str | None = None
    heard: str = ""


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
class CommandAnswered(AboutMessage):
    """v2 added ``attachment``: a file sent with the answer, relative to the data dir ("" for none)."""

    type_name = "CommandAnswered"
    version = 2
    author_id: str
    command: str
    text: str
    attachment: str = ""


@dataclass(frozen=True, kw_only=True)
class CommandRejected(AboutMessage):
    type_name = "CommandRejected"
    author_id: str
    command: str
    reason: str
    reply_text: str


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


@dataclass(frozen=True, kw_only=True)
class ActorRestarted(Event):
    """An actor raised; its supervisor started a fresh one, which rebuilt its state from the log."""

    type_name = "ActorRestarted"
    actor: str
    error: str
    restarts: int


@dataclass(frozen=True, kw_only=True)
class TransportConnected(Event):
    """Parley connected to a platform. ``mark`` is a platform id of that moment (a Discord snowflake),
    so a later catch-up knows from when to read channels it has never answered in."""

    type_name = "TransportConnected"
    source: str
    mark: str


@dataclass(frozen=True, kw_only=True)
class CatchUpFinished(Event):
    """After (re)connecting, Parley read what was written while it was away."""

    type_name = "CatchUpFinished"
    source: str
    channels_read: int
    messages_offered: int  # messages read from history and offered to the actors (recorded ones are ignored)
    failures: int  # messages or channels that could not be read or parsed
    channels_at_limit: tuple[str, ...] = ()  # channels with more missed messages than PARLEY_CATCH_UP_LIMIT


@dataclass(frozen=True, kw_only=True)
class AudioReceived(AboutMessage):
    """A person sent audio (a voice message or an audio file). The bytes are a content-addressed file in
    the data dir (``audio/<audio_hash>``); ``audio_hash`` is "" when the clip was refused before it was
    stored (too large)."""

    type_name = "AudioReceived"
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
    """Reason: no_model, too_large, too_long, undecodable, silent, internal."""

    type_name = "TranscriptionFailed"
    audio_hash: str
    reason: str
    reply_text: str


@dataclass(frozen=True, kw_only=True)
class AudioPurged(Event):
    """An audio file was deleted (retention); its transcript stays in the log."""

    type_name = "AudioPurged"
    audio_hash: str
    reason: str


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
class VoiceChannelJoined(Event):
    """Parley joined a guild's voice channel. ``reason``: "command" (someone asked, ``by``), "rejoined"
    (after a restart, from the log) or "moved" (a moderator dragged it here)."""

    type_name = "VoiceChannelJoined"
    source: str
    guild_id: str
    voice_channel_id: str
    voice_channel_name: str
    reason: str
    by: str = ""


@dataclass(frozen=True, kw_only=True)
class VoiceChannelLeft(Event):
    """Parley left a voice channel. ``reason``: "command", "idle" (nothing spoken for
    ``PARLEY_VOICE_IDLE_S``), "moved", "disconnected" (kicked, or the connection was lost) or
    "unavailable" (it could not rejoin after a restart)."""

    type_name = "VoiceChannelLeft"
    source: str
    guild_id: str
    voice_channel_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class VoiceRepliesSwitched(Event):
    """Whether answers are spoken in this guild's voice channel (``voice on|off``)."""

    type_name = "VoiceRepliesSwitched"
    source: str
    guild_id: str
    on: bool
    by: str


@dataclass(frozen=True, kw_only=True)
class PlaybackStarted(AboutMessage):
    """An answer (to ``message_id``) began to play in a voice channel; ``utterance_id`` names it."""

    type_name = "PlaybackStarted"
    guild_id: str
    voice_channel_id: str
    utterance_id: str


@dataclass(frozen=True, kw_only=True)
class PlaybackFinished(Event):
    type_name = "PlaybackFinished"
    source: str
    guild_id: str
    utterance_id: str


@dataclass(frozen=True, kw_only=True)
class PlaybackInterrupted(Event):
    """Playback ended early, or never began: ``reason`` "stop", "skip", "disconnect" or "restart"."""

    type_name = "PlaybackInterrupted"
    source: str
    guild_id: str
    utterance_id: str
    reason: str


# -- learning: datasets, examples, evaluation, fine-tuning (all in the ``learning`` stream) ------------
@dataclass(frozen=True, kw_only=True)
class DatasetCreated(Event):
    type_name = "DatasetCreated"
    dataset_id: str
    name: str
    by: str


@dataclass(frozen=True, kw_only=True)
class DatasetDeleted(Event):
    """Its examples no longer teach nor export; the events that added them stay in the log."""

    type_name = "DatasetDeleted"
    dataset_id: str
    name: str
    by: str


@dataclass(frozen=True, kw_only=True)
class DatasetSelected(Event):
    """``!train`` in ``channel`` (``source:channel_id``) adds to this dataset from now on."""

    type_name = "DatasetSelected"
    dataset_id: str
    name: str
    channel: str
    by: str


@dataclass(frozen=True, kw_only=True)
class DatasetUsed(Event):
    """This dataset's examples teach the answers in ``channel`` (few-shot), instead of the selected one."""

    type_name = "DatasetUsed"
    dataset_id: str
    name: str
    channel: str
    by: str


@dataclass(frozen=True, kw_only=True)
class ExamplesAdded(Event):
    """Examples from one ``!train`` or one attached file, all or none. Each example is
    ``{"prompt", "answer", "positive"}``; its provenance is this event (its position), ``author_id``,
    ``source`` and ``message_id``. ``duplicates``: examples left out because the dataset had them.
    v2 added ``subject_id``: whose question the examples hold when it is not the author's (a correction's
    pair holds the asker's question): forgetting either of them makes the examples unreadable."""

    type_name = "ExamplesAdded"
    version = 2
    dataset_id: str
    examples: tuple[dict, ...]
    duplicates: int
    author_id: str
    source: str
    message_id: str
    filename: str = ""
    subject_id: str = ""


@dataclass(frozen=True, kw_only=True)
class ExamplesRefused(Event):
    """An import (or ``!train``) that added nothing, and why: every bad record is named."""

    type_name = "ExamplesRefused"
    dataset_id: str
    reason: str
    problems: tuple[str, ...]
    author_id: str
    source: str
    message_id: str
    filename: str = ""


@dataclass(frozen=True, kw_only=True)
class DatasetExported(Event):
    type_name = "DatasetExported"
    dataset_id: str
    name: str
    format: str  # "sft" | "dpo"
    file: str  # relative to the data dir
    sha256: str
    records: int
    by: str


@dataclass(frozen=True, kw_only=True)
class DatasetArchived(Event):
    type_name = "DatasetArchived"
    dataset_id: str
    name: str
    file: str
    sha256: str
    files: tuple[dict, ...]  # {"name", "sha256", "records"} per export inside
    first_position: int
    last_position: int
    by: str


@dataclass(frozen=True, kw_only=True)
class FileRefused(Event):
    """``!getfile`` asked for something outside ``exports/`` and ``archives/`` (or missing)."""

    type_name = "FileRefused"
    requested: str
    reason: str
    by: str
    source: str


@dataclass(frozen=True, kw_only=True)
class EvaluationCompleted(Event):
    type_name = "EvaluationCompleted"
    dataset_id: str
    name: str
    model: str
    questions: int
    holdout: float
    exact_match: float
    token_f1: float
    exact_match_few_shot: float
    token_f1_few_shot: float
    failures: int
    by: str


@dataclass(frozen=True, kw_only=True)
class FineTuneRejected(Event):
    """A fine-tuning job was not started: the dataset breaks the provider's rules, or the provider refused."""

    type_name = "FineTuneRejected"
    dataset_id: str
    method: str
    reason: str
    problems: tuple[str, ...]
    by: str


@dataclass(frozen=True, kw_only=True)
class FineTuneStarted(AboutMessage):
    """A job was created at the training endpoint; its outcome is reported as a reply to ``message_id``."""

    type_name = "FineTuneStarted"
    job_id: str
    file_id: str
    base_model: str
    method: str
    dataset_id: str
    records: int
    scope: str  # "" global, else the channel (``source:channel_id``) the tuned model answers in
    by: str


@dataclass(frozen=True, kw_only=True)
class FineTuneStatusChanged(Event):
    type_name = "FineTuneStatusChanged"
    job_id: str
    status: str


@dataclass(frozen=True, kw_only=True)
class FineTuneFinished(AboutMessage):
    """The job ended (succeeded, failed or cancelled): told in the channel that started it."""

    type_name = "FineTuneFinished"
    job_id: str
    status: str
    fine_tuned_model: str
    error: str
    reply_text: str


@dataclass(frozen=True, kw_only=True)
class ModelActivated(Event):
    """The chat model from now on: everywhere (``channel`` "") or in one channel."""

    type_name = "ModelActivated"
    model: str
    channel: str
    by: str
    job_id: str = ""


# -- corrections and feedback (streams ``answer:<source>:<question id>``, owned by the CorrectionLog) --
@dataclass(frozen=True, kw_only=True)
class CorrectionRecorded(Event):
    """Someone gave a better answer to one of Parley's answers (the answer to ``question_message_id``).
    ``via``: reply, slash, menu, button or console; ``message_id``: the command or interaction."""

    type_name = "CorrectionRecorded"
    source: str
    conversation_id: str  # the answer's conversation
    channel_id: str
    question_message_id: str
    asker_id: str  # whose question it was
    question: str
    original: str
    corrected: str
    by: str
    by_name: str
    via: str
    message_id: str


@dataclass(frozen=True, kw_only=True)
class FeedbackRecorded(Event):
    """A vote (``rating`` "up" or "down") on one of Parley's answers, or written feedback (``text``;
    about an answer when ``question_message_id`` is set)."""

    type_name = "FeedbackRecorded"
    source: str
    channel_id: str
    question_message_id: str
    rating: str
    text: str
    by: str
    by_name: str
    via: str
    message_id: str


# -- forgetting a person (stream ``person:<id>``) ------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ForgetRequested(Event):
    """A person asked to be forgotten (``via``: "command" on a transport, "cli" by an operator)."""

    type_name = "ForgetRequested"
    person: str
    by: str
    via: str


@dataclass(frozen=True, kw_only=True)
class PersonForgotten(Event):
    """The person's key is deleted: their words in the log read as "(forgotten)" for good; their audio
    files and the exported files holding their words are gone."""

    type_name = "PersonForgotten"
    person: str
    audio_files_deleted: int
    files_changed: int


# Events that carry a reply the outbox must deliver, and the text each one delivers.
REPLY_EVENTS = (ResponseGenerated, ResponseFailed, CommandAnswered, CommandRejected, MessageRejected,
                TranscriptionFailed, VoiceReplyPrepared, FineTuneFinished)


def reply_part(event: Event) -> str:
    """Which of a message's replies an event carries: "" the written one, "voice" the voice message,
    "ft" the outcome of the fine-tuning job the message started (told later)."""
    if isinstance(event, VoiceReplyPrepared):
        return "voice"
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
    return getattr(event, "reply_text")


def reply_stream(source: str, message_id: str, part: str = "") -> str:
    """The stream that records the one delivery of a reply (or of one part of it) to a user message."""
    return f"reply:{source}:{message_id}" + (f":{part}" if part else "")


def clip_stream(source: str, message_id: str) -> str:
    """The stream of one audio clip: received, then transcribed or failed, maybe purged."""
    return f"clip:{source}:{message_id}"


def speech_stream(source: str, message_id: str) -> str:
    return f"speech:{source}:{message_id}"


def voice_stream(source: str, guild_id: str) -> str:
    """A guild's voice session: joined and left channels, voice on/off, and what was played."""
    return f"voice:{source}:{guild_id}"


def transport_stream(source: str) -> str:
    return f"transport:{source}"


def conversation_stream(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


# Datasets, examples, evaluations, jobs and model choices: one stream, owned by the Trainer.
LEARNING_STREAM = "learning"
DEFAULT_DATASET = "default"  # where examples go, and what teaches, until a dataset is chosen


def answer_stream(source: str, question_message_id: str) -> str:
    """Corrections and votes about one of Parley's answers (the answer to ``question_message_id``)."""
    return f"answer:{source}:{question_message_id}"


def person_stream(person: str) -> str:
    return f"person:{person}"
