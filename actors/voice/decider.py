"""A guild's voice session as a pure decider: joining and leaving voice channels, voice on/off, and
what was played. The shell (``actors.voice.actor``) does the I/O and hands the outcomes in as facts.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from actors.commands import (ControlVoice, RecordSynthesis, ReportPlayback, ReportVoiceBack, ReportVoiceLost,
                             SpeakInVoice)
from events.catalog.messages import CommandAnswered, CommandRejected
from events.catalog.speaking import SpeechSynthesized
from events.catalog.voice import (PlaybackFinished, PlaybackInterrupted, PlaybackPaused, PlaybackResumed,
                                  PlaybackStarted, VoiceChannelJoined, VoiceChannelLeft, VoiceRepliesSwitched)
from events.model import Event

INTERRUPTIONS = ("stop", "skip", "disconnect", "barge_in")


@dataclass(frozen=True)
class VoiceSession:
    version: int = 0
    channel_id: str | None = None
    channel_name: str = ""
    speaking: bool = True  # answers are spoken here (``voice on|off``)
    playing: frozenset[str] = frozenset()  # utterances started and not ended (a crash leaves them here)
    seen: tuple[str, ...] = ()  # recent command message ids, to recognise a redelivery (a catch-up)


KEEP_SEEN = 200


def evolve(state: VoiceSession, event: Event) -> VoiceSession:
    state = replace(state, version=state.version + 1)
    if isinstance(event, (CommandAnswered, CommandRejected)):
        return replace(state, seen=(state.seen + (event.message_id,))[-KEEP_SEEN:])
    if isinstance(event, VoiceChannelJoined):
        return replace(state, channel_id=event.voice_channel_id, channel_name=event.voice_channel_name)
    if isinstance(event, VoiceChannelLeft):
        return replace(state, channel_id=None, channel_name="")
    if isinstance(event, VoiceRepliesSwitched):
        return replace(state, speaking=event.on)
    if isinstance(event, PlaybackStarted):
        return replace(state, playing=state.playing | {event.utterance_id})
    if isinstance(event, (PlaybackFinished, PlaybackInterrupted)):
        return replace(state, playing=state.playing - {event.utterance_id})
    return state


def _about(command: ControlVoice) -> dict:
    return dict(conversation_id=command.conversation_id, message_id=command.message_id, channel_id=command.channel_id,
                source=command.source)


def _answer(command: ControlVoice, text: str) -> CommandAnswered:
    return CommandAnswered(**_about(command), author_id=command.author_id, command=command.action, text=text)


def _reject(command: ControlVoice, reason: str, text: str) -> CommandRejected:
    return CommandRejected(**_about(command), author_id=command.author_id, command=command.action, reason=reason,
                           reply_text=text)


def refuse(state: VoiceSession, command: ControlVoice, busy: bool) -> list[Event] | None:
    """What to answer without touching Discord, or None when the command needs the voice transport.
    ``busy``: something is playing or queued in this guild."""
    action = command.action
    if command.message_id in state.seen:
        return []
    if action == "join":
        if command.voice_channel_id is None:
            return [_reject(command, "not_in_voice", "Join a voice channel first, then ask me to `join` you there.")]
        if state.channel_id == command.voice_channel_id:
            return [_answer(command, f"I'm already in 🔊 {state.channel_name}.")]
        if state.channel_id is not None and busy:
            return [_reject(command, "busy", f"I'm speaking in 🔊 {state.channel_name} right now: `stop` or `leave` "
                                             "there first, or wait until I'm done.")]
        return None
    if action in ("leave", "stop", "skip") and state.channel_id is None:
        return [_reject(command, "not_in_voice", "I'm not in a voice channel.")]
    if action in ("stop", "skip") and not busy:
        return [_reject(command, "nothing_playing", "Nothing is playing.")]
    if action in ("on", "off"):
        on = action == "on"
        return [VoiceRepliesSwitched(source=command.source, guild_id=command.guild_id, on=on, by=command.author_id),
                _answer(command, "I'll speak my answers in voice here." if on else
                        "I'll only write my answers here (`voice on` to hear them again).")]
    if action not in ("join", "leave", "stop", "skip"):
        return [_reject(command, "unknown", "Use `voice on` or `voice off`.")]
    return None


def decide_control(state: VoiceSession, command: ControlVoice, error: str | None) -> list[Event]:
    """After the transport did what ``refuse`` let through; ``error`` says why it could not."""
    if command.action == "join":
        if error is not None:
            return [_reject(command, "voice_unavailable", f"I can't join voice: {error}")]
        events: list[Event] = []
        if state.channel_id is not None:
            events.append(VoiceChannelLeft(source=command.source, guild_id=command.guild_id,
                                           voice_channel_id=state.channel_id, reason="command"))
        assert command.voice_channel_id is not None
        return events + [
            VoiceChannelJoined(source=command.source, guild_id=command.guild_id,
                               voice_channel_id=command.voice_channel_id,
                               voice_channel_name=command.voice_channel_name, reason="command", by=command.author_id),
            _answer(command, f"Joined 🔊 {command.voice_channel_name}. I'll speak my answers to people here; "
                             "`stop`, `skip` and `leave` when you've heard enough."
                    + (f"\n👂 I'm listening in 🔊 {command.voice_channel_name}: I hear and answer what people say "
                       "there. `!listen me off` keeps your voice out." if command.listening else ""))]
    if command.action == "leave":
        assert state.channel_id is not None
        return [*_interrupted(state, command.source, command.guild_id, "disconnect"),
                VoiceChannelLeft(source=command.source, guild_id=command.guild_id, voice_channel_id=state.channel_id,
                                 reason="command"),
                _answer(command, f"Left 🔊 {state.channel_name}.")]
    if command.action == "stop":
        return [_answer(command, "Stopped, and cleared what was waiting to be said.")]
    if command.action == "skip":
        return [_answer(command, "Skipped.")]
    return []


def speaks(state: VoiceSession, command: SpeakInVoice, text: str) -> bool:
    """Whether an answer is played: Parley is in a channel here, voice is on, and there is prose to say."""
    return state.channel_id is not None and state.speaking and bool(text)


def decide_report(state: VoiceSession, report: ReportPlayback, about: SpeakInVoice | None) -> list[Event]:
    """What the player said happened to an utterance; each is recorded once."""
    common = dict(source=report.source, guild_id=report.guild_id, utterance_id=report.utterance_id)
    if report.what == "started":
        if about is None or report.utterance_id in state.playing:
            return []
        return [PlaybackStarted(conversation_id=about.conversation_id, message_id=about.message_id,
                                channel_id=about.channel_id, source=report.source, guild_id=report.guild_id,
                                voice_channel_id=state.channel_id or "", utterance_id=report.utterance_id)]
    if report.what == "finished":
        return [PlaybackFinished(**common)] if report.utterance_id in state.playing else []
    if report.what == "paused":
        return [PlaybackPaused(**common)] if report.utterance_id in state.playing else []
    if report.what == "resumed":
        return [PlaybackResumed(**common, reason=report.reason)] if report.utterance_id in state.playing else []
    if report.what in INTERRUPTIONS and (report.utterance_id in state.playing or about is not None):
        return [PlaybackInterrupted(**common, reason=report.what)]
    return []


def decide_synthesis(state: VoiceSession, command: RecordSynthesis, about: SpeakInVoice | None) -> list[Event]:
    if about is None:
        return []
    spoken = command.spoken
    return [SpeechSynthesized(conversation_id=about.conversation_id, message_id=about.message_id,
                              channel_id=about.channel_id, source=about.source, voice=spoken.voice,
                              sentences=spoken.sentences, duration_s=spoken.duration_s,
                              audio_hash=spoken.audio_hash, spoken_chars=spoken.spoken_chars)]


def decide_lost(state: VoiceSession, report: ReportVoiceLost) -> list[Event]:
    if state.channel_id is None:
        return []
    common = dict(source=report.source, guild_id=report.guild_id)
    if report.reason == "moved" and report.channel_id and report.channel_id != state.channel_id:
        return [VoiceChannelLeft(**common, voice_channel_id=state.channel_id, reason="moved"),
                VoiceChannelJoined(**common, voice_channel_id=report.channel_id,
                                   voice_channel_name=report.channel_name, reason="moved")]
    if report.reason == "moved":
        return []
    return [*_interrupted(state, report.source, report.guild_id, "disconnect"),
            VoiceChannelLeft(**common, voice_channel_id=state.channel_id, reason=report.reason)]


def decide_back(state: VoiceSession, report: ReportVoiceBack) -> list[Event]:
    """The connection recorded as lost is back: Parley is in that channel again (once, however often it says so)."""
    if state.channel_id == report.channel_id:
        return []
    common = dict(source=report.source, guild_id=report.guild_id)
    left = [VoiceChannelLeft(**common, voice_channel_id=state.channel_id, reason="moved")] if state.channel_id else []
    return [*left, VoiceChannelJoined(**common, voice_channel_id=report.channel_id,
                                      voice_channel_name=report.channel_name, reason="reconnected")]


def decide_rejoin(state: VoiceSession, source: str, guild_id: str, error: str | None) -> list[Event]:
    """After a restart: what was playing was cut off; the channel was rejoined, or could not be."""
    if state.channel_id is None:
        return []
    events: list[Event] = list(_interrupted(state, source, guild_id, "restart"))
    if error is None:
        return events + [VoiceChannelJoined(source=source, guild_id=guild_id, voice_channel_id=state.channel_id,
                                            voice_channel_name=state.channel_name, reason="rejoined")]
    return events + [VoiceChannelLeft(source=source, guild_id=guild_id, voice_channel_id=state.channel_id,
                                      reason="unavailable")]


def _interrupted(state: VoiceSession, source: str, guild_id: str, reason: str) -> list[Event]:
    return [PlaybackInterrupted(source=source, guild_id=guild_id, utterance_id=u, reason=reason)
            for u in sorted(state.playing)]
