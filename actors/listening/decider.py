"""Listening in a guild's voice channels, as a pure decider: consent (admins turn it on and off, anyone opts
out) and which utterances are recorded as heard. The shell (``actors.listening.actor``) recognizes speech
and hands the transcript in as a fact."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from actors.commands import ControlListening
from events.catalog.listening import ListeningOptOutChanged, ListeningTurnedOff, ListeningTurnedOn, UtteranceHeard
from events.catalog.messages import CommandAnswered, CommandRejected
from events.model import Event

KEEP_SEEN = 200
ANNOUNCEMENT = ("👂 I'm listening in this server's voice channels now: when you talk to me there, I transcribe "
                "what you say (offline, on this machine), write the answer here with your words quoted, and say it "
                "aloud. `!listen me off` keeps your voice out; an admin can `!listen off`.")
USAGE = "Use `!listen on` or `!listen off` (admins), or `!listen me off` / `!listen me on` for yourself."


@dataclass(frozen=True)
class Consent:
    version: int = 0
    on: bool = False
    channel_id: str = ""  # where answers to what was heard are written
    opted_out: frozenset[str] = frozenset()
    seen: tuple[str, ...] = ()  # recent command and utterance ids, to recognise a redelivery


@dataclass(frozen=True)
class Heard:
    """What the shell recognized in one utterance."""

    source: str
    guild_id: str
    voice_channel_id: str
    utterance_id: str
    speaker_id: str
    speaker_name: str
    transcript: str
    duration_s: float
    audio_hash: str
    model: str


def evolve(state: Consent, event: Event) -> Consent:
    state = replace(state, version=state.version + 1)
    if isinstance(event, (CommandAnswered, CommandRejected, UtteranceHeard)):
        return replace(state, seen=(state.seen + (event.message_id,))[-KEEP_SEEN:])
    if isinstance(event, ListeningTurnedOn):
        return replace(state, on=True, channel_id=event.channel_id)
    if isinstance(event, ListeningTurnedOff):
        return replace(state, on=False)
    if isinstance(event, ListeningOptOutChanged):
        people = state.opted_out | {event.person} if event.opted_out else state.opted_out - {event.person}
        return replace(state, opted_out=people)
    return state


def consents(events: Iterable[Event]) -> dict[tuple[str, str], Consent]:
    """Every guild's consent, from its consent events in log order: (source, guild id) -> consent."""
    out: dict[tuple[str, str], Consent] = {}
    for e in events:
        key = (getattr(e, "source"), getattr(e, "guild_id"))
        out[key] = evolve(out.get(key, Consent()), e)
    return out


def hears(state: Consent, person: str) -> bool:
    return state.on and person not in state.opted_out


def decide(state: Consent, c: ControlListening) -> list[Event]:
    if c.message_id in state.seen:
        return []  # a redelivery (a catch-up after a restart)
    about = dict(conversation_id=c.conversation_id, message_id=c.message_id, channel_id=c.channel_id, source=c.source)

    def answer(text: str) -> CommandAnswered:
        return CommandAnswered(**about, author_id=c.author_id, command="listen", text=text)

    def reject(reason: str, text: str) -> list[Event]:
        return [CommandRejected(**about, author_id=c.author_id, command="listen", reason=reason, reply_text=text)]

    action = " ".join(c.action.lower().split())
    if action in ("on", "off") and not c.is_admin:
        return reject("not_admin", "Only this server's admins can turn listening on or off.")
    if action == "on":
        if state.on:
            return [answer("I'm already listening in this server's voice channels.")]
        return [ListeningTurnedOn(source=c.source, guild_id=c.guild_id, channel_id=c.channel_id, by=c.author_id),
                answer(ANNOUNCEMENT)]
    if action == "off":
        if not state.on:
            return [answer("I'm not listening here.")]
        return [ListeningTurnedOff(source=c.source, guild_id=c.guild_id, by=c.author_id),
                answer("🔇 I've stopped listening in this server's voice channels.")]
    if action in ("me off", "me on"):
        out = action == "me off"
        text = ("I won't hear you in this server's voice channels: your audio is dropped before it is decoded."
                if out else "I can hear you again in this server's voice channels (when listening is on).")
        if (c.author_id in state.opted_out) == out:
            return [answer(text)]
        return [ListeningOptOutChanged(source=c.source, guild_id=c.guild_id, person=c.author_id, opted_out=out),
                answer(text)]
    if action in ("", "status"):
        where = f" (answers are written in <#{state.channel_id}>)" if state.on and state.channel_id else ""
        mine = " You have opted out." if c.author_id in state.opted_out else ""
        return [answer((f"👂 I'm listening in this server's voice channels{where}." if state.on
                        else "I'm not listening here.") + mine)]
    return reject("usage", USAGE)


def decide_heard(state: Consent, heard: Heard) -> list[Event]:
    """An utterance is recorded only while listening is on, for someone who has not opted out, and once."""
    if not hears(state, heard.speaker_id) or not heard.transcript.strip() or heard.utterance_id in state.seen:
        return []
    return [UtteranceHeard(conversation_id=f"{heard.source}:voice:{heard.voice_channel_id}",
                           message_id=heard.utterance_id, channel_id=state.channel_id, source=heard.source,
                           guild_id=heard.guild_id, voice_channel_id=heard.voice_channel_id,
                           speaker_id=heard.speaker_id, speaker_name=heard.speaker_name,
                           transcript=heard.transcript.strip(), duration_s=heard.duration_s,
                           audio_hash=heard.audio_hash, model=heard.model)]
