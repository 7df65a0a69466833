"""What the actors need from the outside world, as small interfaces the adapters implement."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

ChatMessages = list[dict[str, str]]


class LLMError(Exception):
    """The language model could not answer. ``reason`` is a short code recorded in the event."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Completion:
    """An answer from the language model. ``cut`` says why it is incomplete, if it is: ``"length"`` (it
    reached the answer-token limit) or ``"stalled"`` (the model stopped making progress mid-answer)."""

    text: str
    cut: str = ""


class ChatModel(Protocol):
    def complete(self, messages: ChatMessages, model: str,
                 on_text: Callable[[str], None] | None = None) -> Completion:
        """Return the answer; call ``on_text`` with the text so far while it streams (if given)."""


@dataclass(frozen=True)
class Reply:
    """A reply the outbox must deliver once: the answer to one user message."""

    source: str
    conversation_id: str
    channel_id: str
    message_id: str  # the user message it answers
    text: str
    kind: str  # the event type that carries it
    part: str = ""  # "" the written reply; "voice" a voice-message reply to the same message
    voice_hash: str = ""  # the voice-message file (speech/<hash>.ogg), for part "voice"
    duration_s: float = 0.0
    waveform: str = ""
    attachment: str = ""  # a file to send with the text, relative to the data dir (exports, archives)
    choices: tuple[str, ...] = ()  # commands offered with the reply (buttons on Discord), e.g. "corrections approve 3"

    @property
    def key(self) -> tuple[str, str, str]:
        return self.source, self.message_id, self.part


@dataclass(frozen=True)
class Draft:
    """The answer so far while the LLM streams it, or a long job's progress (not an event: only a preview for the
    transport, which may drop it to respect a rate limit, unless it is ``final``)."""

    source: str
    channel_id: str
    message_id: str  # the user message it answers
    text: str
    conversation_id: str = ""
    part: str = ""  # "" the answer being written; "ft" the progress of the fine-tuning job that message started
    final: bool = False  # the last one of its part (the job ended): shown whatever the rate limit


@dataclass(frozen=True)
class Delivered:
    sent_message_ids: tuple[str, ...]


@dataclass(frozen=True)
class NotDelivered:
    reason: str
    permanent: bool  # True: retrying cannot help (channel gone, no permission)


DeliveryResult = Delivered | NotDelivered


class ReplyTransport(Protocol):
    wants_drafts: bool

    def deliver(self, reply: Reply, done: Callable[[DeliveryResult], None]) -> None:
        """Start delivering without blocking; call ``done`` (from any thread) when it is settled."""

    def draft(self, draft: Draft) -> None:
        """Show the answer so far (optional; transports that cannot, ignore it)."""


@dataclass(frozen=True)
class Transcript:
    text: str
    words: tuple[dict, ...]  # {"word", "start", "end", "conf"}
    duration_s: float
    model: str
    decode_s: float
    recognize_s: float


def disk_full(error: BaseException) -> bool:
    """The data dir's disk (or the person's quota, or a file-size limit) has no room for what was written: the
    person is told so, not "something went wrong", and the operator's log says which folder."""
    import errno

    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


DISK_FULL = "no_space"  # the reason recorded when a write found no room


class TranscriptionError(Exception):
    """The clip could not be transcribed. ``reason``: too_long, undecodable, silent, internal."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class SpeechToText(Protocol):
    model_name: str

    def transcribe(self, path: str) -> Transcript:
        """Transcribe the audio file at ``path`` (blocking; raises ``TranscriptionError``)."""


class SpeechStream(Protocol):
    """One live utterance being recognized as it is spoken."""

    def accept(self, pcm: bytes) -> bool:
        """Feed 16 kHz mono 16-bit PCM; True where the recognizer's endpointing says the utterance ended."""

    def finish(self) -> str:
        """The text heard (may be empty), and start over."""


class StreamingSpeechToText(SpeechToText, Protocol):
    def stream(self) -> SpeechStream: ...


class AudioFiles(Protocol):
    """Content-addressed audio files in the data dir."""

    def path(self, audio_hash: str) -> str | None:
        """The file of ``audio_hash``, or None if it is not there."""

    def delete(self, audio_hash: str) -> bool: ...


class TextToSpeech(Protocol):
    voice_name: str

    def synthesize(self, text: str) -> Iterator:
        """Yield chunks (``.pcm``: 16-bit mono bytes, ``.sample_rate``), one per sentence (blocking)."""


class VoiceUnavailable(Exception):
    """Voice cannot work here; the message says why, in words for the person who asked."""


class VoiceChannels(Protocol):
    """A transport's voice channels, one connection and one playback queue per guild. Calls block
    until done (never call them on the transport's own event loop); playback is reported back as
    commands (``ReportPlayback``, ``ReportVoiceLost``)."""

    def connect(self, guild_id: str, channel_id: str) -> None:
        """Join (or move to) a voice channel; raise ``VoiceUnavailable`` when that cannot be done."""

    def disconnect(self, guild_id: str) -> None: ...

    def busy(self, guild_id: str) -> bool:
        """Something plays or waits to be played in this guild."""

    def enqueue(self, guild_id: str, utterance_id: str, chunks: Iterator) -> None:
        """Play speech after what is queued; ``chunks`` yield (16-bit mono PCM, sample rate) lazily,
        so that playback starts after the first sentence."""

    def stop(self, guild_id: str) -> None:
        """Stop what plays and clear the queue."""

    def skip(self, guild_id: str) -> None:
        """Stop what plays; the queue goes on."""

    def resume(self, guild_id: str) -> None:
        """What was paused because someone spoke over it goes on (they did not take the turn)."""

    def interrupt(self, guild_id: str) -> None:
        """What was paused because someone spoke over it stops (they took the turn); the queue goes on."""

    def listening_guild(self, channel_id: str, message_id: str) -> str | None:
        """The guild whose voice channel has both Parley and the author of ``message_id`` in it."""

    def listen(self, guild_id: str, on: bool, opted_out: frozenset[str]) -> None:
        """Whether to hear this guild's voice channel, and whom never to hear (their audio is dropped before
        it is decoded). Safe from any thread."""


@dataclass(frozen=True)
class TrainingJob:
    job_id: str
    status: str  # validating_files, queued, running, succeeded, failed, cancelled
    fine_tuned_model: str = ""
    error: str = ""
    training_file: str = ""
    step: int = 0  # progress, where the backend reports it (the local one does)
    steps: int = 0
    loss: float | None = None
    eta_s: float | None = None
    adapter_hash: str = ""  # the tuned model's weights, content-addressed (a local LoRA adapter)
    held_out: int = 0  # examples kept out of training to show what it learned, and how (where the backend says):
    score: str = ""  # "opens_as_taught" (SFT: share of answers that begin as the example's) or "logp_margin" (DPO)
    base_score: float | None = None
    tuned_score: float | None = None


class TrainingRefused(Exception):
    """The training endpoint said no. ``reason``: "refused" (HTTP 403/404: no fine-tuning for this
    account or service), "unauthorized", "rejected" (the request or file was invalid), "unreachable"."""

    def __init__(self, reason: str, detail: str = "", status: int | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.status = status


class FineTuning(Protocol):
    """A service with OpenAI's fine-tuning API (files with purpose ``fine-tune``, ``fine_tuning/jobs``).
    Calls block; failures raise ``TrainingRefused``."""

    endpoint: str

    def upload(self, filename: str, data: bytes) -> str:
        """Upload a training file; return its file id."""

    default_holdout: float  # the share of a dataset kept out of training unless the command says (0: none)

    def create(self, base_model: str, file_id: str, method: str, suffix: str, tag: str = "",
               held_out: bytes = b"") -> TrainingJob:
        """Start a job, tagged (job metadata) with ``tag``: the command that asked for it. ``held_out``: records
        (as the training file's) kept out of training, on which a backend that can compares the tuned model with
        its base when the job ends."""

    def find(self, tag: str) -> TrainingJob | None:
        """A job already started with ``tag`` (the same command, before a crash), if the service lists one."""

    def retrieve(self, job_id: str) -> TrainingJob: ...

    def cancel(self, job_id: str) -> TrainingJob: ...


class TrainingFiles(Protocol):
    """The Trainer's files in the data dir: imports, exports, archives, instructions."""

    def read_import(self, digest: str) -> bytes | None: ...

    def path(self, relative: str) -> object: ...

    def write_jsonl(self, relative: str, records: Iterator[dict]) -> object:
        """Write one JSON record per line, atomically; return a ``training.Written``."""

    def write_archive(self, name: str, files: list, manifest: dict) -> object: ...

    def sendable(self, requested: str, folder: str, everywhere: bool = False) -> tuple[str, str]:
        """(path relative to the data dir, "") for a file of the scope's ``folder`` in exports/ or archives/
        (any there, ``everywhere``), else ("", why)."""

    def instructions(self, prefix: str) -> str: ...
