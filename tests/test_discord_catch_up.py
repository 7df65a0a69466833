"""Catch-up after downtime under live traffic: the Discord emulator keeps posting while the bot is
SIGKILLed and restarted, as Discord does, and messages arrive over the gateway right after IDENTIFY."""
from __future__ import annotations

import threading
import time

from tests.conftest import replay_json
from tests.test_discord_e2e import Bot, final_reply  # noqa: F401  (fixtures below)
from tests.test_discord_e2e import bot_env, discord_emulator  # noqa: F401
from tests.helpers import wait_for


def test_every_message_is_answered_exactly_once_across_kills_under_traffic(bot_env, discord_emulator, llm_server):
    llm_server.answer_delay = 0.3
    bot_env["PARLEY_RATE_LIMIT"] = "0"  # 30 questions a person in 12 s: traffic to catch up on, not a flood
    general = discord_emulator.general
    people = [discord_emulator.user(f"User{i}") for i in range(4)]
    posted: list[dict] = []
    stop = threading.Event()

    def traffic() -> None:  # 120 mentions, one every 0.1 s, whether the bot is there or not
        for n in range(120):
            if stop.is_set():
                return
            posted.append(discord_emulator.user_says(general, people[n % 4], f"question {n}", mention_bot=True))
            time.sleep(0.1)

    running = Bot(bot_env, discord_emulator).start()
    writer = threading.Thread(target=traffic, daemon=True)
    writer.start()
    def caught_up() -> list[dict]:
        return [e["data"] for e in replay_json(bot_env) if e["type"] == "CatchUpFinished"]

    try:
        for kill in range(3):  # three kills, each after the bot caught up and answered for a while
            wait_for(lambda: len(caught_up()) == kill + 1, timeout=30, what="the catch-up after (re)start")
            time.sleep(1.0)
            running.kill()
            time.sleep(1.5)
            running = Bot(bot_env, discord_emulator).start()
        writer.join(60)
        assert len(posted) == 120

        def unanswered() -> list[str]:
            return [m["content"] for m in posted if not discord_emulator.replies_to(m)]
        wait_for(lambda: not unanswered(), timeout=60, what="every message answered")
        time.sleep(1.0)  # anything doubled would show up by now
        doubled = [m["content"] for m in posted if len(discord_emulator.replies_to(m)) != 1]
        assert doubled == []
        for m in posted:
            text = m["content"].split("> ", 1)[1]
            assert discord_emulator.replies_to(m)[0]["content"] == f"echo: {text} [turns=1]"
        events = replay_json(bot_env)
        catch_ups = [e["data"] for e in events if e["type"] == "CatchUpFinished"]
        assert len(catch_ups) == 4 and all(c["messages_offered"] > 0 for c in catch_ups[1:])
        assert sum(e["type"] == "TransportConnected" for e in events) == 4
    finally:
        stop.set()
        running.stop()


def test_a_mention_in_a_channel_never_used_posted_while_down_is_answered(bot_env, discord_emulator, llm_server):
    quiet = discord_emulator.text_channel("quiet")
    thread = discord_emulator.thread(discord_emulator.general, "a thread")
    mia = discord_emulator.user("Mia")
    running = Bot(bot_env, discord_emulator).start()
    first = discord_emulator.user_says(discord_emulator.general, mia, "hello", mention_bot=True)
    final_reply(discord_emulator, first, "echo: hello [turns=1]")
    running.kill()
    in_quiet = discord_emulator.user_says(quiet, mia, "anyone here?", mention_bot=True, deliver=False)
    in_thread = discord_emulator.user_says(thread, mia, "and in the thread?", mention_bot=True, deliver=False)
    not_for_us = discord_emulator.user_says(quiet, mia, "just chatting", deliver=False)
    restarted = Bot(bot_env, discord_emulator).start()
    try:
        final_reply(discord_emulator, in_quiet, "echo: anyone here? [turns=1]")
        final_reply(discord_emulator, in_thread, "echo: and in the thread? [turns=1]")
        assert discord_emulator.replies_to(not_for_us) == []
        assert len(discord_emulator.replies_to(first)) == 1
    finally:
        restarted.stop()


def test_catch_up_pages_through_history_up_to_the_limit(bot_env, discord_emulator, llm_server):
    bot_env["PARLEY_CATCH_UP_LIMIT"] = "150"
    bot_env["PARLEY_RATE_LIMIT"] = "0"  # one person's 130 messages to catch up on (the limit is tested elsewhere)
    nora = discord_emulator.user("Nora")
    running = Bot(bot_env, discord_emulator).start()
    first = discord_emulator.user_says(discord_emulator.general, nora, "start", mention_bot=True)
    final_reply(discord_emulator, first, "echo: start [turns=1]")
    running.kill()
    missed = [discord_emulator.user_says(discord_emulator.general, nora, f"missed {n}", mention_bot=True,
                                         deliver=False) for n in range(130)]  # more than one page of 100
    restarted = Bot(bot_env, discord_emulator).start()
    try:
        wait_for(lambda: all(discord_emulator.replies_to(m) for m in missed), timeout=60, what="all 130 answered")
        caught = wait_for(lambda: [e["data"] for e in replay_json(bot_env) if e["type"] == "CatchUpFinished"][1:],
                          what="the catch-up recorded")
        assert caught[0]["messages_offered"] >= 130 and caught[0]["channels_at_limit"] == []
    finally:
        restarted.stop()


def test_a_new_session_without_a_restart_catches_up_too(bot_env, discord_emulator, llm_server):
    """The gateway drops the bot; it connects again (a new READY, same process) and reads what it missed."""
    uma = discord_emulator.user("Uma")
    running = Bot(bot_env, discord_emulator).start()
    try:
        first = discord_emulator.user_says(discord_emulator.general, uma, "before the drop", mention_bot=True)
        final_reply(discord_emulator, first, "echo: before the drop [turns=1]")
        discord_emulator.identified.clear()
        discord_emulator.disconnect_all()
        missed = discord_emulator.user_says(discord_emulator.general, uma, "during the drop", mention_bot=True,
                                            deliver=False)
        assert discord_emulator.identified.wait(30), "the bot did not connect again"
        final_reply(discord_emulator, missed, "echo: during the drop [turns=1]")
        assert running.process.poll() is None and len(discord_emulator.replies_to(first)) == 1
        wait_for(lambda: sum(e["type"] == "TransportConnected" for e in replay_json(bot_env)) == 2,
                 what="the second connection recorded")
    finally:
        running.stop()
