"""Bot commands (``hi``, ``help``, ``status``) as a pure decider.

The same commands arrive from Discord (prefix and slash) and from the console, and produce the same
events. ``status`` needs facts from outside (store position, actors alive, model); the shell passes
them in as a ``StatusReport`` so this stays pure.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from actors.access import NOT_ALLOWED, REFUSAL_TEXT
from actors.commands import InvokeCommand
from actors.learning.decider import COMMANDS as LEARNING
from actors.tuning.decider import COMMANDS as TUNING
from events.catalog.messages import CommandAnswered, CommandRejected
from events.model import Event

COMMANDS = {
    "hi": "say hello",
    "help": "list what I can do",
    "status": "store position, actors alive, model in use, how fast the last spoken turns went",
    "join": "join your voice channel and speak my answers there",
    "leave": "leave the voice channel",
    "stop": "stop speaking and clear what waits to be said",
    "skip": "skip what I'm saying now",
    "voice": "`voice on` or `voice off`: whether I speak my answers in voice here",
    "listen": "`listen on` / `listen off` (admins): hear this server's voice channels; `listen me off`: never hear you",
}
VOICE_COMMANDS = ("join", "leave", "stop", "skip", "voice", "listen")


@dataclass(frozen=True)
class StatusReport:
    store: str
    position: int
    actors_alive: int
    actors_total: int
    restarts: int
    model: str
    voice_turns: str = ""  # the stages of the last spoken turns (actors.listening.timing), "" when none


KEEP_SEEN = 200  # command message ids remembered, to recognise a redelivery


@dataclass(frozen=True)
class CommandLog:
    version: int = 0
    seen: tuple[str, ...] = ()  # recent command message ids (a tuple: cheap to copy while folding)


def evolve(state: CommandLog, event: Event) -> CommandLog:
    message_id = getattr(event, "message_id", None)
    seen = (state.seen + (message_id,))[-KEEP_SEEN:] if message_id else state.seen
    return replace(state, version=state.version + 1, seen=seen)


APOLOGY = "Sorry, something went wrong on my side with that command. It has been logged."


def abandoned(state: CommandLog, c: InvokeCommand) -> list[Event]:
    """The Desk failed on this command again and again (a bug): its author is told, once."""
    if c.message_id in state.seen:
        return []
    return [CommandAnswered(conversation_id=c.conversation_id, message_id=c.message_id, channel_id=c.channel_id,
                            author_id=c.author_id, source=c.source, command=c.name.strip().lower()[:40], text=APOLOGY)]


def decide(state: CommandLog, c: InvokeCommand, status: StatusReport | None, prefix: str = "!") -> list[Event]:
    if c.message_id in state.seen:
        return []
    name = c.name.strip().lower()
    common = dict(conversation_id=c.conversation_id, message_id=c.message_id, channel_id=c.channel_id,
                  author_id=c.author_id, source=c.source, command=name[:40])
    if c.refusal:
        return [CommandRejected(**common, reason=c.refusal,
                                reply_text=REFUSAL_TEXT.get(c.refusal, REFUSAL_TEXT[NOT_ALLOWED]))]
    if name == "hi":
        text = f"Hi {c.author_name or 'there'}! I'm Parley. Mention me or reply to me and I'll answer."
    elif name == "help":
        lines = [f"`{prefix}{n}` ({'/' + n} too): {what}" for n, what in COMMANDS.items()]
        lines += [f"`{prefix}{n}` (admins): {what}" for n, what in {**LEARNING, **TUNING}.items()]
        text = "Talk to me by mentioning me, replying to my answers, or in a DM.\nCommands:\n" + "\n".join(lines)
    elif name == "status" and status is not None:
        healthy = status.actors_alive == status.actors_total
        if c.is_operator:  # where the data lives and how the actors fare is for the bot's operators, not guilds
            text = (f"Event store: {status.store}, position {status.position}\n"
                    f"Actors alive: {status.actors_alive}/{status.actors_total} (restarts: {status.restarts})\n"
                    f"Model: {status.model}")
        else:
            text = f"I'm {'up and answering' if healthy else 'partly down, recovering'}. Model: {status.model}"
        if status.voice_turns:
            text += f"\n{status.voice_turns}"
    elif name in VOICE_COMMANDS:  # the console, or a DM: no voice channel to speak in
        return [CommandRejected(**common, reason="no_voice_here",
                                reply_text=f"Voice channels are on Discord servers: use `{prefix}{name}` in a "
                                           "server's text channel while you're in one of its voice channels.")]
    else:
        shown = name[:40] or "(nothing)"
        return [CommandRejected(**common, reason="unknown_command",
                                reply_text=f"I don't know the command `{prefix}{shown}`. Try `{prefix}help`.")]
    return [CommandAnswered(**common, text=text)]
