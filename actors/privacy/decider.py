"""Forgetting a person, as a pure decider over their stream (``person:<id>``): asked once, done once;
the shell deletes their key and files in between (``Forgetting`` port) and reports what it did."""
from __future__ import annotations

from dataclasses import dataclass, replace

from actors.commands import InvokeCommand
from events.catalog.messages import CommandAnswered, CommandRejected
from events.catalog.privacy import ForgetRequested, PersonForgotten
from events.model import Event


@dataclass(frozen=True)
class Person:
    version: int = 0
    requested: bool = False
    forgotten: bool = False
    seen: tuple[str, ...] = ()


def evolve(state: Person, event: Event) -> Person:
    state = replace(state, version=state.version + 1)
    message_id = getattr(event, "message_id", "")
    if message_id:
        state = replace(state, seen=(state.seen + (message_id,))[-100:])
    if isinstance(event, ForgetRequested):
        return replace(state, requested=True)
    if isinstance(event, PersonForgotten):
        return replace(state, forgotten=True)
    return state


def _common(c: InvokeCommand) -> dict:
    return dict(conversation_id=c.conversation_id, message_id=c.message_id, channel_id=c.channel_id,
                author_id=c.author_id, source=c.source, command="forget-me")


def decide_request(state: Person, person: str, by: str, via: str, known: bool,
                   c: InvokeCommand | None = None) -> list[Event]:
    """``known``: something of theirs is recorded (a key). Refusals are replies only: nothing changes."""
    if c is not None and c.message_id in state.seen:
        return []
    if state.forgotten:
        return [CommandRejected(**_common(c), reason="already_forgotten",
                                reply_text="You are forgotten already: nothing of what you said can be read.")] if c else []
    if not known:
        return [CommandRejected(**_common(c), reason="nothing_recorded",
                                reply_text="I have nothing of yours recorded: there is nothing to forget.")] if c else []
    if state.requested:
        return []  # being done (a restart in the middle finishes it)
    return [ForgetRequested(person=person, by=by, via=via)]


def decide_done(state: Person, person: str, audio_deleted: int, files_changed: int,
                c: InvokeCommand | None = None) -> list[Event]:
    if state.forgotten:
        return []
    done: list[Event] = [PersonForgotten(person=person, audio_files_deleted=audio_deleted, files_changed=files_changed)]
    if c is not None:
        done.append(CommandAnswered(**_common(c), text=(
            "Done: everything you said to me is now unreadable, in my log too (its key is deleted); "
            f"{audio_deleted} audio file(s) and {files_changed} exported file(s) with your words are gone.")))
    return done
