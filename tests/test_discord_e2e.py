"""End to end on Discord: the real discord.py bot (`python run.py`) against a Discord API emulator
(gateway websocket + REST) and an OpenAI-compatible server, both on 127.0.0.1."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import ROOT, parley_env, replay_json
from tests.fakes.discord_server import BOT_TOKEN, DiscordEmulator
from tests.fakes.openai_server import Scripted
from tests.helpers import wait_for


@pytest.fixture
def discord_emulator():
    with DiscordEmulator() as emulator:
        yield emulator


class Bot:
    """``python run.py`` as a process of its own. Its stderr is read as it is written (a full pipe would stop
    every thread of the bot at its next log line) and kept for ``log``."""

    def __init__(self, env: dict[str, str], emulator: DiscordEmulator):
        self.env, self.emulator, self.process = env, emulator, None
        self._log: list[str] = []
        self._reader: threading.Thread | None = None

    def start(self) -> "Bot":
        self.emulator.identified.clear()
        self.process = subprocess.Popen([sys.executable, str(ROOT / "run.py")], env=self.env, cwd=ROOT,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._log = []
        self._reader = threading.Thread(target=lambda: self._log.extend(self.process.stderr), daemon=True)
        self._reader.start()
        assert self.emulator.identified.wait(30), "the bot never identified on the gateway"
        return self

    def log(self) -> str:
        """What the bot has written to stderr so far (all of it once it has exited)."""
        if self.process.poll() is not None and self._reader is not None:
            self._reader.join(10)
        return "".join(self._log)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.log()


@pytest.fixture
def bot_env(tmp_path, llm_server, discord_emulator):
    return parley_env(tmp_path / "data", llm_server, DISCORD_TOKEN=BOT_TOKEN,
                      DISCORD_API_BASE=discord_emulator.api_base, DISCORD_GATEWAY_URL=discord_emulator.gateway_url,
                      PARLEY_STREAM_EDIT_INTERVAL="1.0",
                      PARLEY_MAX_ANSWER_TOKENS="2000")  # room for the 4,700-character answer below


@pytest.fixture
def bot(bot_env, discord_emulator):
    running = Bot(bot_env, discord_emulator).start()
    yield running
    running.stop()


def final_reply(emulator: DiscordEmulator, message: dict, text: str) -> dict:
    def found():
        replies = emulator.replies_to(message)
        return replies[0] if replies and replies[0]["content"] == text else None
    return wait_for(found, what=f"the reply {text!r}")  # type: ignore[return-value]


def test_a_mention_is_answered_as_a_reply_and_recorded(bot, discord_emulator, bot_env, llm_server):
    alice = discord_emulator.user("Alice")
    asked = discord_emulator.user_says(discord_emulator.general, alice, "what is Parley?", mention_bot=True)
    reply = final_reply(discord_emulator, asked, "echo: what is Parley? [turns=1]")
    assert reply["message_reference"]["message_id"] == asked["id"]
    assert discord_emulator.general in discord_emulator.typing  # typing was shown while it thought
    assert llm_server.requests[-1]["stream"] is True
    wait_for(lambda: any(e["type"] == "ReplySent" for e in replay_json(bot_env)), what="ReplySent")
    events = replay_json(bot_env)
    received = next(e for e in events if e["type"] == "MessageReceived")["data"]
    assert received["text"] == "what is Parley?" and received["author_name"] == "Alice"
    assert received["source"] == "discord"
    sent = next(e for e in events if e["type"] == "ReplySent")["data"]
    assert sent["sent_message_ids"] == [reply["id"]]


def test_replies_continue_the_conversation_and_other_mentions_start_their_own(bot, bot_env, discord_emulator):
    alice, bob = discord_emulator.user("Alice"), discord_emulator.user("Bob")
    general = discord_emulator.general
    first = discord_emulator.user_says(general, alice, "my favourite colour is green", mention_bot=True)
    answer = final_reply(discord_emulator, first, "echo: my favourite colour is green [turns=1]")
    other = discord_emulator.user_says(general, bob, "unrelated question", mention_bot=True)
    final_reply(discord_emulator, other, "echo: unrelated question [turns=1]")  # a context of its own
    wait_for(lambda: sum(e["type"] == "ReplySent" for e in replay_json(bot_env)) == 2, what="both recorded")
    follow = discord_emulator.user_says(general, alice, "what is my favourite colour?", reply_to=answer)
    reply = final_reply(discord_emulator, follow, "echo: what is my favourite colour? [turns=3]")
    assert reply["message_reference"]["message_id"] == follow["id"]


def test_dms_threads_and_listening_channels(bot_env, discord_emulator, llm_server):
    chat = discord_emulator.text_channel("chat")
    thread = discord_emulator.thread(chat, "a thread")
    bot_env["PARLEY_CHANNELS"] = chat
    running = Bot(bot_env, discord_emulator).start()
    try:
        carol = discord_emulator.user("Carol")
        dm = discord_emulator.dm_channel(carol)
        in_dm = discord_emulator.user_says(dm, carol, "hello in private")
        final_reply(discord_emulator, in_dm, "echo: hello in private [turns=1]")
        in_chat = discord_emulator.user_says(chat, carol, "no mention needed here")
        final_reply(discord_emulator, in_chat, "echo: no mention needed here [turns=1]")
        in_thread = discord_emulator.user_says(thread, carol, "threads have their own context")
        final_reply(discord_emulator, in_thread, "echo: threads have their own context [turns=1]")
        again = discord_emulator.user_says(chat, carol, "second in chat")
        final_reply(discord_emulator, again, "echo: second in chat [turns=3]")
        ignored = discord_emulator.user_says(discord_emulator.general, carol, "not for the bot")
        robot = discord_emulator.user("Robot", bot=True)
        from_bot = discord_emulator.user_says(chat, robot, "bots are ignored")
        last = discord_emulator.user_says(chat, carol, "last")
        final_reply(discord_emulator, last, "echo: last [turns=5]")
        assert discord_emulator.replies_to(ignored) == [] and discord_emulator.replies_to(from_bot) == []
    finally:
        running.stop()


def test_commands_with_the_prefix(bot, discord_emulator):
    dave = discord_emulator.user("Dave")
    general = discord_emulator.general
    hi = discord_emulator.user_says(general, dave, "!hi")
    assert "Hi Dave" in wait_for(lambda: discord_emulator.replies_to(hi))[0]["content"]
    status = discord_emulator.user_says(general, discord_emulator.owner, "!status")  # its admin, not an operator
    text = wait_for(lambda: discord_emulator.replies_to(status))[0]["content"]
    assert "up and answering" in text and "Model: test-model" in text and "sqlite" not in text
    public = discord_emulator.user_says(general, dave, "!status")  # anyone else: no paths, no internals
    text = wait_for(lambda: discord_emulator.replies_to(public))[0]["content"]
    assert "up and answering" in text and "sqlite" not in text and "/" not in text
    unknown = discord_emulator.user_says(general, dave, "!dance")
    assert "don't know the command `!dance`" in wait_for(lambda: discord_emulator.replies_to(unknown))[0]["content"]
    wait_for(lambda: {c["name"] for c in discord_emulator.commands} == {
        "hi", "help", "status", "join", "leave", "stop", "skip", "voice", "train", "dataset", "getfile",
        "instruction", "test", "finetune", "model", "correct", "feedback", "corrections", "forget-me", "listen",
            "Correct this answer"},
             what="slash commands registered")


def test_the_invite_link_is_printed_at_start(bot, discord_emulator):
    hi = discord_emulator.user_says(discord_emulator.general, discord_emulator.user("Zoe"), "!hi")
    wait_for(lambda: discord_emulator.replies_to(hi), what="the bot ready")
    log = bot.stop()
    link = next(line for line in log.splitlines() if "invite it to a server with" in line)
    assert f"client_id={discord_emulator.app_id}" in link and "scope=bot+applications.commands" in link
    # view channels, send messages, send in threads, read history, attach files, connect and speak in voice
    assert f"permissions={(1 << 10) | (1 << 11) | (1 << 38) | (1 << 16) | (1 << 15) | (1 << 20) | (1 << 21)}" in link


def test_long_answers_are_split_and_streamed_with_limited_edits(bot, discord_emulator, llm_server):
    paragraph = "Parley keeps every action as an event, @everyone. " * 16
    long_answer = "\n".join([paragraph] * 6)  # about 4,700 characters, pinging everyone were mentions allowed
    llm_server.script.append(Scripted(text=long_answer, chunk_delay=0.005))
    erin = discord_emulator.user("Erin")
    asked = discord_emulator.user_says(discord_emulator.general, erin, "tell me everything", mention_bot=True)

    def all_parts():
        parts = discord_emulator.bot_messages(discord_emulator.general)
        return parts if "\n".join(p["content"] for p in parts) == long_answer else None
    parts = wait_for(all_parts, what="the whole long answer")
    assert len(parts) == 3 and all(len(p["content"]) <= 2000 for p in parts)
    assert parts[0]["message_reference"]["message_id"] == asked["id"]
    # ~600 chunks were streamed over a few seconds; edits are throttled to one per second (plus the
    # final edit that puts the finished first part in place).
    streaming_time = llm_server.stream_seconds[-1]
    assert 1 <= discord_emulator.edits[parts[0]["id"]] <= streaming_time + 2
    # Every edit, like the post, mentions nobody: the text the LLM wrote cannot ping a server.
    assert discord_emulator.edit_bodies and all(b.get("allowed_mentions", {}).get("parse") == []
                                                for b in discord_emulator.edit_bodies + discord_emulator.posts)


def test_a_lost_discord_response_does_not_post_twice(bot, discord_emulator, bot_env):
    discord_emulator.lose_next_responses = 1
    frank = discord_emulator.user("Frank")
    hi = discord_emulator.user_says(discord_emulator.general, frank, "!hi")
    wait_for(lambda: any(e["type"] == "ReplySent" for e in replay_json(bot_env)), what="ReplySent after the retry")
    assert len(discord_emulator.replies_to(hi)) == 1  # the retry carried the same nonce
    assert len(discord_emulator.posts) == 2


def test_after_a_crash_missed_messages_are_answered_and_nothing_twice(bot_env, discord_emulator, llm_server):
    general = discord_emulator.general
    grace = discord_emulator.user("Grace")
    running = Bot(bot_env, discord_emulator).start()
    first = discord_emulator.user_says(general, grace, "before the crash", mention_bot=True)
    final_reply(discord_emulator, first, "echo: before the crash [turns=1]")
    wait_for(lambda: any(e["type"] == "ReplySent" for e in replay_json(bot_env)))
    running.kill()
    missed = discord_emulator.user_says(general, grace, "while you were down", mention_bot=True, deliver=False)
    chatter = discord_emulator.user_says(general, grace, "not addressed to the bot", deliver=False)
    restarted = Bot(bot_env, discord_emulator).start()
    try:
        final_reply(discord_emulator, missed, "echo: while you were down [turns=1]")
        assert len(discord_emulator.replies_to(first)) == 1
        assert discord_emulator.replies_to(chatter) == []
        assert len(llm_server.requests) == 2
    finally:
        restarted.stop()


def test_a_bad_token_is_a_clear_error(bot_env, discord_emulator):
    bot_env["DISCORD_TOKEN"] = "wrong"
    out = subprocess.run([sys.executable, str(ROOT / "run.py")], env=bot_env, cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "Discord refused DISCORD_TOKEN" in out.stderr


def test_slash_commands_are_deferred_then_answered_by_follow_up(bot, discord_emulator, bot_env):
    wait_for(lambda: {c["name"] for c in discord_emulator.commands} == {
        "hi", "help", "status", "join", "leave", "stop", "skip", "voice", "train", "dataset", "getfile",
        "instruction", "test", "finetune", "model", "correct", "feedback", "corrections", "forget-me", "listen",
            "Correct this answer"},
             what="slash commands registered")
    henry = discord_emulator.user("Henry")
    interaction = discord_emulator.user_slash(discord_emulator.general, henry, "hi")
    wait_for(lambda: discord_emulator.followups, what="the follow-up")
    assert discord_emulator.interaction_callbacks[0] == (interaction, {"type": 5})  # deferred at once
    assert "Hi Henry" in discord_emulator.followups[0]["content"]
    wait_for(lambda: any(e["type"] == "ReplySent" and e["data"]["message_id"] == interaction
                         for e in replay_json(bot_env)), what="ReplySent for the interaction")


def test_the_bot_keeps_answering_while_the_llm_is_slow(bot, discord_emulator, llm_server):
    llm_server.script.append(Scripted(delay=4))
    ivy = discord_emulator.user("Ivy")
    slow = discord_emulator.user_says(discord_emulator.general, ivy, "a slow question", mention_bot=True)
    wait_for(lambda: llm_server.requests, what="the slow LLM request")
    hi = discord_emulator.user_says(discord_emulator.general, ivy, "!hi")
    wait_for(lambda: discord_emulator.replies_to(hi), what="the answer to !hi")
    assert discord_emulator.replies_to(slow) == []  # answered while the LLM was still thinking
    final_reply(discord_emulator, slow, "echo: a slow question [turns=1]")


def test_a_reply_posted_just_before_a_crash_is_not_posted_again(bot_env, discord_emulator, llm_server):
    general = discord_emulator.general
    jane = discord_emulator.user("Jane")
    running = Bot(bot_env, discord_emulator).start()
    discord_emulator.hang_next_responses = 1  # Discord posts it; the bot dies before hearing back
    hi = discord_emulator.user_says(general, jane, "!hi")
    wait_for(lambda: discord_emulator.replies_to(hi), what="the reply posted")
    running.kill()
    assert not any(e["type"] == "ReplySent" for e in replay_json(bot_env))
    restarted = Bot(bot_env, discord_emulator).start()
    try:
        wait_for(lambda: any(e["type"] == "ReplySent" for e in replay_json(bot_env)), what="ReplySent after restart")
        assert len(discord_emulator.replies_to(hi)) == 1  # resent with the same nonce: Discord kept one
        sent = next(e for e in replay_json(bot_env) if e["type"] == "ReplySent")["data"]
        assert sent["sent_message_ids"] == [discord_emulator.replies_to(hi)[0]["id"]]
    finally:
        restarted.stop()


def test_transient_send_errors_are_retried_and_permanent_ones_recorded(bot, discord_emulator, bot_env):
    kate = discord_emulator.user("Kate")
    discord_emulator.fail_next_posts = [500, 502]
    first = discord_emulator.user_says(discord_emulator.general, kate, "!hi")
    wait_for(lambda: discord_emulator.replies_to(first), what="the reply after two server errors")
    discord_emulator.fail_next_posts = [403]
    second = discord_emulator.user_says(discord_emulator.general, kate, "!help")
    wait_for(lambda: any(e["type"] == "ReplyDeliveryFailed" for e in replay_json(bot_env)), what="ReplyDeliveryFailed")
    failed = next(e for e in replay_json(bot_env) if e["type"] == "ReplyDeliveryFailed")["data"]
    assert failed["message_id"] == second["id"] and "Forbidden" in failed["reason"]
    assert discord_emulator.replies_to(second) == []


def test_rate_limited_sends_per_route_and_global_are_waited_out_and_sent_once(bot, discord_emulator, bot_env):
    kate = discord_emulator.user("Kate")
    discord_emulator.fail_next_posts = [429, "429-global", 429]
    asked = discord_emulator.user_says(discord_emulator.general, kate, "!hi")
    wait_for(lambda: discord_emulator.replies_to(asked), what="the reply after three rate limits")
    assert len(discord_emulator.posts) == 4  # three refused, then the one that was posted
    time.sleep(0.5)
    assert len(discord_emulator.replies_to(asked)) == 1
    sent = [e["data"] for e in replay_json(bot_env) if e["type"] in ("ReplySent", "ReplyDeliveryFailed")]
    assert [s["message_id"] for s in sent] == [asked["id"]] and "sent_message_ids" in sent[0]


def test_an_unreachable_discord_is_a_clear_error(bot_env):
    # waited for (a line an attempt: tests/test_discord_network.py), then exit 75, which an init system restarts
    bot_env.update(DISCORD_API_BASE="http://127.0.0.1:9/api/v10", PARLEY_CONNECT_GIVE_UP_S="1",
                   PARLEY_RECONNECT_MAX_S="0.3")
    out = subprocess.run([sys.executable, str(ROOT / "run.py")], env=bot_env, cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 75 and "cannot reach Discord" in out.stderr and "Traceback" not in out.stderr


def test_a_reply_to_an_answer_still_streaming_continues_its_conversation(bot, discord_emulator, llm_server):
    llm_server.script.append(Scripted(text="counting: " + " ".join(str(n) for n in range(200)), chunk_delay=0.02))
    lea = discord_emulator.user("Lea")
    asked = discord_emulator.user_says(discord_emulator.general, lea, "count for me", mention_bot=True)
    draft = wait_for(lambda: (discord_emulator.replies_to(asked) or [None])[0], what="the streaming draft")
    follow = discord_emulator.user_says(discord_emulator.general, lea, "and then?", reply_to=draft)
    final_reply(discord_emulator, follow, "echo: and then? [turns=3]")


def test_allow_and_block_lists_and_the_dm_switch(bot_env, discord_emulator, llm_server):
    admin, member, stranger, blocked = (discord_emulator.user(n) for n in ("Admin", "Member", "Stranger", "Blocked"))
    bot_env.update(PARLEY_ADMIN_IDS=admin["id"], PARLEY_ALLOW_USERS=member["id"], PARLEY_BLOCK_USERS=blocked["id"],
                   PARLEY_ALLOW_DMS="off")
    running = Bot(bot_env, discord_emulator).start()
    try:
        general = discord_emulator.general
        ok = discord_emulator.user_says(general, member, "allowed?", mention_bot=True)
        final_reply(discord_emulator, ok, "echo: allowed? [turns=1]")
        refused = discord_emulator.user_says(general, stranger, "me too?", mention_bot=True)
        assert "allow list" in wait_for(lambda: discord_emulator.replies_to(refused), what="the refusal")[0]["content"]
        ignored = discord_emulator.user_says(general, blocked, "hello?", mention_bot=True)
        in_dm = discord_emulator.user_says(discord_emulator.dm_channel(member), member, "in private")
        assert "direct messages" in wait_for(lambda: discord_emulator.replies_to(in_dm), what="DMs off")[0]["content"]
        status = discord_emulator.user_says(general, admin, "!status")
        assert "Event store" in wait_for(lambda: discord_emulator.replies_to(status))[0]["content"]
        assert discord_emulator.replies_to(ignored) == []  # quiet: no reply, and the LLM never asked
        prompts = [m["content"] for r in llm_server.requests for m in r["messages"]]
        assert not any(p in prompts for p in ("me too?", "hello?", "in private"))
        rejected = [e["data"] for e in replay_json(bot_env) if e["type"] == "MessageRejected"]
        assert sorted(r["reason"] for r in rejected) == ["dms_off", "not_allowed"]
    finally:
        running.stop()
