"""Fuzzing what people type as commands (issue 16): any name, any arguments, to the running system.
Every command gets exactly one reply, no actor raises (none is restarted), and the next question is still
answered."""
from __future__ import annotations

import dataclasses
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.corrections.actor import CORRECTION_COMMANDS
from actors.desk.decider import VOICE_COMMANDS
from actors.learning.actor import LEARNING_COMMANDS
from actors.tuning.actor import TUNING_COMMANDS
from actors.privacy.actor import PRIVACY_COMMANDS
from events.catalog.delivery import ReplySent
from events.catalog.desk import ActorRestarted
from run import build
from tests.helpers import CapturedConsole, console_command, console_message, settings_for, wait_for

NAMES = sorted(LEARNING_COMMANDS | TUNING_COMMANDS | CORRECTION_COMMANDS | PRIVACY_COMMANDS | set(VOICE_COMMANDS)
               | {"help", "hi", "status", "model", "clear"})
WORDS = st.sampled_from(["show", "export", "start", "use", "list", "default", "me", "on", "off", "--skip-long",
                         "=>", "Q:", "A:", "A-:", "sft", "dpo", "gpt-4o-mini", "-1", "0", "99999999999999999999",
                         "../../etc/passwd", "`", "```", "\n", "\u200b", "@everyone", "<@123>", "é", "名前"])
ARGS = st.one_of(st.text(max_size=300), st.lists(st.one_of(WORDS, st.text(max_size=12)), max_size=8).map(" ".join))


def test_any_command_with_any_arguments_gets_one_reply_and_breaks_nothing(tmp_path, llm_server):
    console = CapturedConsole(files_root=tmp_path / "data")
    system = build(settings_for(tmp_path / "data", llm_server.base_url), {"console": console})
    numbers = itertools.count(1)

    def replies_to(message_id: str) -> list:
        return [r for r in system.store.read_all(types=["ReplySent"])
                if isinstance(r.event, ReplySent) and r.event.message_id == message_id]

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(name=st.one_of(st.sampled_from(NAMES), st.text(min_size=1, max_size=20)), args=ARGS, admin=st.booleans())
    def one_command(name: str, args: str, admin: bool) -> None:
        n = next(numbers)
        console.expect(f"m{n}")
        command = console_command(n, name.strip() or "help")
        system.router.dispatch(dataclasses.replace(command, args=args, is_admin=admin))
        wait_for(lambda: replies_to(f"m{n}"), timeout=20, what=f"a reply to !{name} {args!r}")
        assert system.settle(20)
        assert len(replies_to(f"m{n}")) == 1

    try:
        one_command()
        restarted = [r.event for r in system.store.read_all(types=["ActorRestarted"])
                     if isinstance(r.event, ActorRestarted)]
        assert restarted == []
        status = system.status()
        assert status.actors_alive == status.actors_total
        n = next(numbers)
        console.expect(f"m{n}")
        system.router.dispatch(console_message(n, "still there?", conversation="console:after"))
        wait_for(lambda: any(line.startswith("echo: still there?") for line in console.lines()),
                 what="the question after the fuzzing")
    finally:
        system.stop()


def test_a_command_the_desk_keeps_failing_on_is_answered_with_an_apology_once():
    from actors.desk import decider as desk

    command = dataclasses.replace(console_command(7, "help"), args="x")
    [told] = desk.abandoned(desk.CommandLog(), command)
    assert told.message_id == "m7" and "went wrong on my side" in told.text
    assert desk.abandoned(desk.evolve(desk.CommandLog(), told), command) == []  # already answered: not twice


def test_a_command_any_actor_keeps_failing_on_gets_one_apology(tmp_path, llm_server, monkeypatch):
    from actors.corrections import decider as corrections
    from actors.desk import decider as desk

    def broken(*args, **kwargs):
        raise RuntimeError("a planted bug")
    monkeypatch.setattr(desk, "decide", broken)  # the Desk and the CorrectionLog both fail on every command
    monkeypatch.setattr(corrections, "decide_feedback", broken)
    console = CapturedConsole(files_root=tmp_path / "data")
    system = build(settings_for(tmp_path / "data", llm_server.base_url), {"console": console})
    try:
        for n, name in enumerate(("hi", "feedback"), start=1):
            console.expect(f"m{n}")
            system.router.dispatch(dataclasses.replace(console_command(n, name), args="nice", is_admin=True,
                                                       is_operator=True))
        wait_for(lambda: len(console.lines()) == 2, timeout=30, what="an apology for each command")
        assert all("went wrong on my side with that command" in line for line in console.lines())
        assert system.settle(10) and len(console.lines()) == 2
    finally:
        system.stop()
