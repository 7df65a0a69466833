"""Commands: what transports ask the actors to do. Imperative names; nothing here has happened yet."""
from __future__ import annotations

from dataclasses import dataclass

from events.scopes import OPERATORS


@dataclass(frozen=True, kw_only=True)
class FromPerson:
    """Who said something, where, and in which conversation."""

    source: str
    conversation_id: str
    channel_id: str
    message_id: str
    author_id: str
    author_name: str
    scope: str = OPERATORS  # whose place it was said in (``events.scopes``): the transport always says


@dataclass(frozen=True, kw_only=True)
class ReceiveMessage(FromPerson):
    """A person wrote something Parley should answer."""

    text: str
    reply_to_message_id: str | None = None
    refusal: str = ""  # the access policy refused this person here (``actors.access``): say so, don't answer
    heard: str = ""  # the transcript, when this turn came as audio
    sent_at: float = 0.0  # when the person sent it (POSIX seconds), where the transport knows; for rate limits
    counted: bool = False  # already counted against the person's rate limit (the audio it was heard from was)


@dataclass(frozen=True, kw_only=True)
class InvokeCommand(FromPerson):
    """A person used a bot command (``!hi``, ``/status``, ...)."""

    name: str
    args: str = ""
    refusal: str = ""
    is_admin: bool = False  # an admin of ``scope``: decided by the transport with ``actors.access``
    is_operator: bool = False  # acts on every scope (``PARLEY_ADMIN_IDS``, the console)
    attachment_hash: str = ""  # a file sent with the command, stored in the data dir's imports/
    attachment_name: str = ""
    attachment_refused: str = ""  # "too_large" | "unreadable" | "outside_data_dir" | "no_such_file": not stored
    target_message_id: str = ""  # the message the command is about (a reply's reference, a message link)
    via: str = ""  # how it came: "reply", "slash", "menu", "button", "console"


@dataclass(frozen=True, kw_only=True)
class VoteAnswer(FromPerson):
    """A 👍 or 👎 on one of Parley's answers (``target_message_id``: the message that carries it)."""

    target_message_id: str
    rating: str  # "up" | "down"
    refusal: str = ""
    silent: bool = False  # no reply (a 👎 answers with the correction form instead)


@dataclass(frozen=True)
class PollFineTune:
    """Ask the training endpoint how a fine-tuning job is doing (the Trainer schedules these)."""

    job_id: str


@dataclass(frozen=True)
class ResumeFineTunes:
    """After a start: poll every job the log says is still running."""


@dataclass(frozen=True)
class AnswerPending:
    """Answer every message of a conversation that was received but not answered (after a restart)."""

    conversation_id: str


@dataclass(frozen=True)
class CompleteResponse:
    conversation_id: str
    message_id: str
    text: str
    model: str
    cut: str = ""  # "length" | "stalled" when the answer is incomplete


@dataclass(frozen=True)
class FailResponse:
    conversation_id: str
    message_id: str
    reason: str


@dataclass(frozen=True)
class AbandonMessage:
    """The actor failed on this message repeatedly: tell the user, record it, and move on."""

    source: str
    conversation_id: str
    channel_id: str
    message_id: str
    author_id: str
    error: str


@dataclass(frozen=True)
class RecordConnection:
    """A transport connected; ``mark`` is the platform's id for that moment."""

    source: str
    mark: str


@dataclass(frozen=True)
class RecordCatchUp:
    source: str
    channels_read: int
    messages_offered: int
    failures: int
    channels_at_limit: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ReceiveAudio(FromPerson):
    """A person sent audio. The transport has stored it (``audio_hash``), or refused it before storing
    (``refused``: "too_large")."""

    audio_hash: str
    content_type: str
    size_bytes: int
    declared_duration_s: float | None = None
    filename: str = ""
    text: str = ""
    voice_message: bool = False
    reply_to_message_id: str | None = None
    refused: str = ""


@dataclass(frozen=True)
class TranscribePending:
    """Finish a clip that was received but not transcribed (after a restart)."""

    source: str
    message_id: str


@dataclass(frozen=True)
class CompleteTranscription:
    source: str
    message_id: str
    text: str
    words: tuple[dict, ...]
    duration_s: float
    model: str
    decode_s: float
    recognize_s: float


@dataclass(frozen=True)
class FailTranscription:
    source: str
    message_id: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class PurgeAudio:
    """Delete the audio of clips received before ``before`` (ISO time), keeping their transcripts."""

    before: str


@dataclass(frozen=True, kw_only=True)
class Say(FromPerson):
    """Speak ``text`` into a file (the console's ``!say``)."""

    text: str
    refused: str = ""  # "busy": too many waiting for the Speaker; say so, speak nothing


@dataclass(frozen=True)
class Spoken:
    """What the text-to-speech engine made of a ``Say``: the facts the decider records."""

    voice: str
    sentences: int
    duration_s: float
    audio_hash: str
    spoken_chars: int
    location: str  # where the person finds the file


@dataclass(frozen=True)
class SpeakAnswer:
    """Answer a voice message with a voice message too: speak ``text``, the written answer's prose."""

    source: str
    conversation_id: str
    channel_id: str
    message_id: str
    text: str
    refused: str = ""  # "busy": too many waiting for the Speaker; the written answer is enough


@dataclass(frozen=True)
class VoiceNote:
    """A voice-message file the Speaker made."""

    voice: str
    audio_hash: str
    duration_s: float
    waveform: str


@dataclass(frozen=True, kw_only=True)
class ControlVoice(FromPerson):
    """``join``, ``leave``, ``stop``, ``skip``, ``voice on|off`` from a person in a guild; for ``join``,
    the voice channel the person is in (None when they are in none)."""

    action: str
    guild_id: str
    voice_channel_id: str | None = None
    voice_channel_name: str = ""
    listening: bool = False  # the log says Parley listens in this guild (then a join says so)


@dataclass(frozen=True)
class SpeakInVoice:
    """Speak an answer in the guild's voice channel (its asker is listening there): ``text``, or, while it is
    being written, ``live`` (an ``actors.voice.live.LiveAnswer``: its sentences as they are complete)."""

    source: str
    guild_id: str
    conversation_id: str
    channel_id: str
    message_id: str
    text: str
    live: object = None


@dataclass(frozen=True)
class ReportPlayback:
    """From the voice transport: an utterance "started", "finished", ended early ("stop", "skip", "disconnect",
    "barge_in"), or "paused" (someone spoke over it) and "resumed"."""

    source: str
    guild_id: str
    utterance_id: str
    what: str
    reason: str = ""  # "resumed": why ("backchannel", "undecided")


@dataclass(frozen=True)
class RecordSynthesis:
    """An utterance was synthesized while it played; the audio is a content-addressed file."""

    source: str
    guild_id: str
    utterance_id: str
    spoken: Spoken


@dataclass(frozen=True)
class ReportVoiceLost:
    """From the voice transport: Parley is no longer (or should no longer be) where it was: "idle",
    "disconnected" (kicked, or the connection dropped), or "moved" (to ``channel_id``)."""

    source: str
    guild_id: str
    reason: str
    channel_id: str | None = None
    channel_name: str = ""


@dataclass(frozen=True)
class ReportVoiceBack:
    """From the voice transport: a dropped voice connection that was reported lost is back (the voice library
    reconnected, or the transport joined again after it gave up): Parley is in ``channel_id`` again."""

    source: str
    guild_id: str
    channel_id: str
    channel_name: str = ""


@dataclass(frozen=True)
class RejoinVoice:
    """After a restart: go back to the voice channel the log says Parley was in."""

    source: str
    guild_id: str


@dataclass(frozen=True)
class ForgetPerson:
    """An operator's ``forget USER_ID`` (a person's own ``forget-me`` is an ``InvokeCommand``)."""

    person: str
    by: str = "operator"


@dataclass(frozen=True)
class RecordCutOff:
    """The voice room: an answer said aloud was cut off after ``said`` (someone spoke over it)."""

    conversation_id: str
    message_id: str
    said: str
    reason: str = "barge_in"


@dataclass(frozen=True)
class ClearMemory:
    """Forget what is cached from the log (someone was forgotten): reload it when next needed."""


@dataclass(frozen=True)
class ApologizeFor:
    """An actor kept failing on this command (a bug) and gave up: the Desk tells its author, once."""

    command: InvokeCommand


@dataclass(frozen=True, kw_only=True)
class ControlListening(FromPerson):
    """``listen on|off`` (admins) and ``listen me off|me on`` (anyone) in a guild; ``listen`` alone: status."""

    action: str
    guild_id: str
    is_admin: bool = False


@dataclass(frozen=True)
class HearSpeech:
    """100 ms (or so) of one person's speech in a voice channel, 16 kHz mono 16-bit PCM, in the order heard."""

    source: str
    guild_id: str
    voice_channel_id: str
    user_id: str
    user_name: str
    utterance_id: str
    pcm: bytes


@dataclass(frozen=True)
class SpeechEnded:
    """The person paused (their client's silence frames, or no sound for a while): the listening room judges
    whether their turn is over."""

    source: str
    guild_id: str
    user_id: str
    utterance_id: str


@dataclass(frozen=True)
class SpokeOver:
    """The voice transport paused Parley's speech: this person began to speak over it (and it is not Parley's own
    voice coming back). The listening room says whether it was an interruption or a backchannel."""

    source: str
    guild_id: str
    user_id: str
    utterance_id: str


@dataclass(frozen=True)
class TurnWaitOver:
    """The listening room's own timer: the longest wait after a pause judged mid-turn is over."""

    who: tuple[str, str, str]
    utterance_id: str
    wait: int
