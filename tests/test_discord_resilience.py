"""What a real Discord-compatible server (with bugs) sends: each costs at most itself."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, replay_json
from tests.fakes.openai_server import Scripted
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot, final_reply  # noqa: F401
from tests.test_discord_e2e import bot, bot_env, discord_emulator  # noqa: F401  (fixtures)


def test_a_malformed_gateway_event_costs_only_itself(bot, discord_emulator):
    olga = discord_emulator.user("Olga")
    broken = discord_emulator._message(discord_emulator.general, olga, "broken")
    broken["author"] = None  # a field null where discord.py expects a value
    discord_emulator.send_raw("MESSAGE_CREATE", broken)
    discord_emulator.send_raw("GUILD_UPDATE", {"id": discord_emulator.guild_id, "roles": None})
    after = discord_emulator.user_says(discord_emulator.general, olga, "still there?", mention_bot=True)
    final_reply(discord_emulator, after, "echo: still there? [turns=1]")
    assert bot.process.poll() is None
    log = bot.stop()
    assert "skipped a malformed MESSAGE_CREATE gateway event" in log and "Traceback" not in log


def test_a_first_connection_failing_inside_discord_py_is_a_clear_error(bot_env, discord_emulator):
    discord_emulator.malformed_hello = True
    out = subprocess.run([sys.executable, str(ROOT / "run.py")], env=bot_env, cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "cannot reach Discord" in out.stderr and "Traceback" not in out.stderr


def test_a_malformed_message_in_history_costs_only_itself(bot_env, discord_emulator, llm_server):
    paul = discord_emulator.user("Paul")
    other = discord_emulator.text_channel("other")
    running = Bot(bot_env, discord_emulator).start()
    first = discord_emulator.user_says(discord_emulator.general, paul, "first", mention_bot=True)
    final_reply(discord_emulator, first, "echo: first [turns=1]")
    running.kill()
    before = discord_emulator.user_says(discord_emulator.general, paul, "before the bad one", mention_bot=True,
                                        deliver=False)
    bad = discord_emulator._message(discord_emulator.general, paul, "bad")
    bad["author"] = None
    discord_emulator.store_raw(discord_emulator.general, bad)
    after = discord_emulator.user_says(discord_emulator.general, paul, "after the bad one", mention_bot=True,
                                       deliver=False)
    elsewhere = discord_emulator.user_says(other, paul, "in another channel", mention_bot=True, deliver=False)
    restarted = Bot(bot_env, discord_emulator).start()
    try:
        for message, text in ((before, "before the bad one"), (after, "after the bad one"),
                              (elsewhere, "in another channel")):
            final_reply(discord_emulator, message, f"echo: {text} [turns=1]")
        caught = wait_for(lambda: [e["data"] for e in replay_json(bot_env) if e["type"] == "CatchUpFinished"][1:],
                          what="the catch-up recorded")
        assert caught[0]["failures"] == 1
    finally:
        restarted.stop()


def test_an_answer_to_a_deleted_question_is_sent_without_the_reference(bot, discord_emulator, bot_env, llm_server):
    discord_emulator.strict_references = True  # the server ignores fail_if_not_exists, as Spacebar does
    llm_server.script.append(Scripted(delay=2))
    rita = discord_emulator.user("Rita")
    asked = discord_emulator.user_says(discord_emulator.general, rita, "never mind", mention_bot=True)
    wait_for(lambda: llm_server.requests, what="the LLM request")
    discord_emulator.delete(discord_emulator.general, asked)
    answer = wait_for(lambda: [m for m in discord_emulator.bot_messages(discord_emulator.general)
                               if m["content"] == "echo: never mind [turns=1]"], what="the answer")
    assert answer[0].get("message_reference") is None
    wait_for(lambda: any(e["type"] == "ReplySent" for e in replay_json(bot_env)), what="ReplySent")
    assert not any(e["type"] == "ReplyDeliveryFailed" for e in replay_json(bot_env))


def test_a_slash_command_sync_that_fails_oddly_leaves_the_bot_running(bot_env, discord_emulator):
    discord_emulator.broken_command_sync = True
    running = Bot(bot_env, discord_emulator).start()
    try:
        sam = discord_emulator.user("Sam")
        hi = discord_emulator.user_says(discord_emulator.general, sam, "!hi")
        assert "Hi Sam" in wait_for(lambda: discord_emulator.replies_to(hi), what="!hi answered")[0]["content"]
    finally:
        log = running.stop()
    assert "could not register slash commands" in log and "Traceback" not in log


def test_the_gateway_closing_with_resumable_and_fresh_session_codes_is_recovered_from(bot, discord_emulator, bot_env):
    olga = discord_emulator.user("Olga")
    for n, (code, reason) in enumerate(((4000, "Unknown error"), (4009, "Session timed out"), (1001, "Going away"))):
        sessions = len(discord_emulator.identifies)
        discord_emulator.disconnect_all(code, reason)
        wait_for(lambda: len(discord_emulator.identifies) > sessions, timeout=30, what=f"a new session after {code}")
        asked = discord_emulator.user_says(discord_emulator.general, olga, f"after {code}", mention_bot=True)
        final_reply(discord_emulator, asked, f"echo: after {code} [turns=1]")
    assert bot.process.poll() is None
    assert "Traceback" not in bot.stop()


def test_the_gateway_refusing_the_intents_is_one_clear_line_and_exit_2(bot, discord_emulator):
    discord_emulator.disconnect_all(4014, "Disallowed intent(s)")
    assert bot.process.wait(30) == 2
    log = bot.log()
    assert "enable the Message Content intent" in log and "Traceback" not in log
