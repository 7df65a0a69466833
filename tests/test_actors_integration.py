"""The actors on a real store and a real LLM client: supervision, outbox recovery, concurrency."""
from __future__ import annotations

from adapters.llm import LLMLimits, OpenAIChat
from events.catalog.conversation import ResponseGenerated
from events.catalog.delivery import ReplySent
from events.catalog.desk import ActorRestarted
from run import build
from tests.helpers import CapturedConsole, console_command, console_message, crash, settings_for, wait_for


class FlakyModel:
    """The real client, with a bug injected: it raises a non-LLM error for chosen prompts."""

    def __init__(self, real: OpenAIChat, fail_times: int = 1, only: str | None = None):
        self.real, self.fail_times, self.only = real, fail_times, only

    def complete(self, messages, model, on_text=None):
        if (self.only is None or messages[-1]["content"] == self.only) and self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError("injected fault")
        return self.real.complete(messages, model, on_text)


def events_of(system, cls):
    return [r.event for r in system.store.read_all() if isinstance(r.event, cls)]


def test_an_actor_that_raises_is_restarted_recorded_and_the_message_still_answered(tmp_path, llm_server):
    settings = settings_for(tmp_path, llm_server.base_url, responders=1)
    console = CapturedConsole()
    llm = FlakyModel(OpenAIChat(llm_server.base_url, "k", LLMLimits(first_token_timeout=10, retries=0)), fail_times=1)
    system = build(settings, {"console": console}, llm=llm)
    try:
        console.expect("m1")
        console.expect("m2")
        system.router.dispatch(console_message(1, "are you there?"))
        system.router.dispatch(console_message(2, "still there?"))
        wait_for(lambda: len(console.lines()) == 2, what="both answers")
        assert console.lines() == ["echo: are you there? [turns=1]", "echo: still there? [turns=3]"]
        [restart] = events_of(system, ActorRestarted)
        assert restart.actor == "responder-0" and "injected fault" in restart.error
        status = system.status()
        assert status.restarts == 1 and status.actors_alive == status.actors_total
    finally:
        system.stop()


def test_a_message_that_always_crashes_the_actor_is_answered_with_an_apology(tmp_path, llm_server):
    settings = settings_for(tmp_path, llm_server.base_url, responders=1)
    console = CapturedConsole()
    llm = FlakyModel(OpenAIChat(llm_server.base_url, "k", LLMLimits(first_token_timeout=10, retries=0)), fail_times=99, only="boom")
    system = build(settings, {"console": console}, llm=llm)
    try:
        for n, text in enumerate(["boom", "after the storm"], start=1):
            console.expect(f"m{n}")
            system.router.dispatch(console_message(n, text))
        wait_for(lambda: len(console.lines()) == 2, what="both replies")
        assert "something went wrong on my side" in console.lines()[0]
        assert console.lines()[1].startswith("echo: after the storm")
        assert len(events_of(system, ActorRestarted)) == 3
    finally:
        system.stop()


class BlackHole:
    """A transport that takes replies and never confirms them: the process 'dies' before Discord answers."""

    wants_drafts = False

    def __init__(self) -> None:
        self.taken = []

    def deliver(self, reply, done):
        self.taken.append(reply)

    def draft(self, draft):
        pass


def test_answers_generated_but_not_sent_are_sent_once_after_a_restart(tmp_path, llm_server):
    settings = settings_for(tmp_path, llm_server.base_url)
    dead = BlackHole()
    first = build(settings, {"console": dead})
    first.router.dispatch(console_message(1, "remember to answer me"))
    first.router.dispatch(console_command(2, "hi"))
    wait_for(lambda: len(dead.taken) == 2, what="two replies handed to the transport")
    first.stop()

    console = CapturedConsole()
    second = build(settings, {"console": console})
    try:
        assert len(second.pending_replies.pending("console")) == 2
        second.resume("console")
        wait_for(lambda: len(events_of(second, ReplySent)) == 2, what="two ReplySent")
        assert "echo: remember to answer me [turns=1]" in console.lines()
        assert len(console.lines()) == 2
        second.resume("console")  # a second resume sends nothing again
    finally:
        second.stop()
    third_console = CapturedConsole()
    third = build(settings, {"console": third_console})
    try:
        third.resume("console")
        assert third.pending_replies.pending() == []
        assert third_console.lines() == []
        assert len(events_of(third, ResponseGenerated)) == 1  # the LLM was asked once
        assert len(llm_server.requests) == 1
    finally:
        third.stop()


def test_messages_received_but_not_answered_are_answered_after_a_restart(tmp_path, llm_server):
    from tests.fakes.openai_server import Scripted

    settings = settings_for(tmp_path, llm_server.base_url, llm_timeout=2)
    llm_server.script.append(Scripted(delay=3))  # the LLM is slow; the process stops mid-answer
    first = build(settings, {"console": BlackHole()})
    first.router.dispatch(console_message(1, "slow question"))
    wait_for(lambda: llm_server.requests, what="the LLM request")
    crash(first)  # drop the actors without letting them finish (no graceful stop)

    console = CapturedConsole()
    second = build(settings, {"console": console})
    try:
        second.resume("console")
        wait_for(lambda: events_of(second, ReplySent), what="the reply after restart")
        assert console.lines() == ["echo: slow question [turns=1]"]
    finally:
        second.stop()


def test_conversations_are_answered_in_parallel_each_in_order(tmp_path, llm_server):
    settings = settings_for(tmp_path, llm_server.base_url, responders=4)
    console = CapturedConsole()
    system = build(settings, {"console": console})
    try:
        n = 0
        for turn in range(5):
            for conv in range(8):
                n += 1
                console.expect(f"m{n}")
                system.router.dispatch(console_message(n, f"c{conv} t{turn}", conversation=f"console:{conv}"))
        wait_for(lambda: len(events_of(system, ReplySent)) == 40, what="40 replies")
        for conv in range(8):
            answers = [e.text for e in events_of(system, ResponseGenerated) if e.conversation_id == f"console:{conv}"]
            assert answers == [f"echo: c{conv} t{t} [turns={2 * t + 1}]" for t in range(5)]
    finally:
        system.stop()

