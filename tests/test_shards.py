"""One bot split into two shard processes on one PostgreSQL store (issue 16): Discord routes each guild to
one shard and DMs to shard 0; each message is answered once, by the shard that got it; a shard that was
down catches up its own channels only."""
from __future__ import annotations

import time

import pytest

from tests.conftest import parley_env, replay_json
from tests.fakes.discord_server import BOT_TOKEN
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot, discord_emulator, final_reply  # noqa: F401  (fixture)
from tests.test_hearing import model_path  # noqa: F401  (fixture)

VOICE_FLAG = 1 << 13


def shard_env(tmp_path, llm_server, emulator, store: str, shard: int) -> dict[str, str]:
    return parley_env(tmp_path / f"shard{shard}", llm_server, DISCORD_TOKEN=BOT_TOKEN,
                      DISCORD_API_BASE=emulator.api_base, DISCORD_GATEWAY_URL=emulator.gateway_url,
                      PARLEY_EVENT_STORE=store, PARLEY_SHARD_COUNT="2", PARLEY_SHARD_IDS=str(shard),
                      PARLEY_STREAM_EDIT_INTERVAL="1.0")


def test_two_shards_answer_their_own_guilds_once_and_a_restarted_one_catches_up_only_its_channels(
        tmp_path, llm_server, discord_emulator, postgres_url):
    em = discord_emulator
    zero = em.text_channel("general", em.add_guild("Guild Zero", shard=0, shard_count=2))
    one = em.text_channel("general", em.add_guild("Guild One", shard=1, shard_count=2))
    alice = em.user("Alice")
    dm = em.dm_channel(alice)
    envs = [shard_env(tmp_path, llm_server, em, postgres_url, shard) for shard in (0, 1)]
    shards = [Bot(envs[0], em).start(), Bot(envs[1], em).start()]
    try:
        assert sorted(em.identifies) == [(0, 2), (1, 2)]
        wait_for(lambda: sum(e["type"] == "CatchUpFinished" for e in replay_json(envs[0])) == 2,
                 what="both shards ready")
        asked = [em.user_says(zero, alice, "in guild zero", mention_bot=True),
                 em.user_says(one, alice, "in guild one", mention_bot=True),
                 em.user_says(dm, alice, "in a DM")]
        for message, text in zip(asked, ("in guild zero", "in guild one", "in a DM")):
            final_reply(em, message, f"echo: {text} [turns=1]")
        time.sleep(1.5)  # a second answer from the other shard would be here by now
        assert [len(em.replies_to(m)) for m in asked] == [1, 1, 1]

        shards[1].kill()  # shard 1 is down: Discord keeps its guild's messages for later
        wait_for(lambda: (1, 2) not in em._shard_of.values(), what="shard 1's gateway to close")
        while_down = em.user_says(one, alice, "while shard one was down", mention_bot=True)
        still_up = em.user_says(zero, alice, "shard zero still answers", mention_bot=True)
        final_reply(em, still_up, "echo: shard zero still answers [turns=1]")
        time.sleep(1.0)
        assert em.replies_to(while_down) == []  # no other shard took guild one's message

        em.history_reads.clear()
        shards[1] = Bot(envs[1], em).start()
        final_reply(em, while_down, "echo: while shard one was down [turns=1]")
        wait_for(lambda: sum(e["type"] == "CatchUpFinished" for e in replay_json(envs[0])) == 3,
                 what="shard 1's catch-up")
        guild_one_channels = {c for c, ch in em.channels.items()
                              if ch.get("guild_id") and (int(ch["guild_id"]) >> 22) % 2 == 1}
        assert one in set(em.history_reads) <= guild_one_channels  # neither guild zero's channels nor DMs
        time.sleep(1.0)
        assert [len(em.replies_to(m)) for m in (*asked, while_down, still_up)] == [1, 1, 1, 1, 1]
        marks = {e["data"]["source"] for e in replay_json(envs[0]) if e["type"] == "TransportConnected"}
        assert marks == {"discord:shard:0/2", "discord:shard:1/2"}  # each shard reads from its own mark
    finally:
        for bot in shards:
            bot.stop()


def read_model_rows(store_url: str, data_dir) -> tuple[int, int, dict[str, list]]:  # noqa: ANN001
    """(log head, position the read models applied, every read model's rows) as another process sees them."""
    from events import open_store
    from projections.registry import PROJECTIONS
    from projections.tracking import open_read_models

    store = open_store(store_url, data_dir, create=False)
    db = open_read_models(store, data_dir)
    try:
        rows = {t: sorted(map(repr, db.query(f"SELECT * FROM {t}"))) for p in PROJECTIONS for t in p.tables
                if not t.endswith("_fts")}  # SQLite's full-text index (PostgreSQL indexes a column instead)
        return store.head(), db.position(), rows
    finally:
        db.close()
        store.close()


def test_the_read_models_worker_can_stop_and_start_while_the_bot_runs(tmp_path, llm_server, discord_emulator,
                                                                       postgres_url):
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT, run_parley

    em = discord_emulator
    env = shard_env(tmp_path, llm_server, em, postgres_url, 0) | {"PARLEY_SHARD_COUNT": "", "PARLEY_SHARD_IDS": "",
                                                                     "PARLEY_READ_MODELS": "worker"}
    worker_env = env | {"PARLEY_DATA_DIR": str(tmp_path / "worker")}

    def start_worker() -> subprocess.Popen:
        worker = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "projections", "run"], env=worker_env,
                                  cwd=ROOT, stderr=subprocess.PIPE, text=True)
        assert "following the log" in worker.stderr.readline()
        return worker

    worker = start_worker()
    bot = Bot(env, em).start()
    alice = em.user("Alice")
    try:
        first = em.user_says(em.general, alice, "while the worker runs", mention_bot=True)
        final_reply(em, first, "echo: while the worker runs [turns=1]")
        wait_for(lambda: (lambda h, p, _: p == h)(*read_model_rows(postgres_url, tmp_path / "x")),
                 what="the worker to apply what the bot recorded")

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0 and "stopped at log position" in worker.stderr.read()
        _, stopped_at, _ = read_model_rows(postgres_url, tmp_path / "x")
        second = em.user_says(em.general, alice, "while the worker is stopped", mention_bot=True)
        final_reply(em, second, "echo: while the worker is stopped [turns=1]")  # the bot answers on its own
        head, position, _ = read_model_rows(postgres_url, tmp_path / "x")
        assert position == stopped_at < head  # and leaves the read models to the worker

        worker = start_worker()  # resumes where it stopped
        wait_for(lambda: (lambda h, p, _: p == h)(*read_model_rows(postgres_url, tmp_path / "x")),
                 what="the restarted worker to catch up")
    finally:
        bot.stop()
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
    _, _, fed = read_model_rows(postgres_url, tmp_path / "x")
    rebuilt = run_parley(["projections", "rebuild", "--all"], worker_env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert read_model_rows(postgres_url, tmp_path / "x")[2] == fed  # equal to a rebuild from zero


@pytest.mark.timeout(300)  # five starts of a process that loads the speech model
def test_two_shards_killed_in_turn_under_traffic_answer_everything_once(tmp_path, llm_server, discord_emulator,
                                                                         postgres_url, model_path):  # noqa: F811
    """SIGKILL three times, each shard in turn (the first in the middle of a transcription), while mentions,
    voice messages and ``!train`` commands keep arriving in both guilds (and while a shard is down): every
    message is answered once (a voice message once in writing and once by voice), every clip transcribed
    once, every example recorded once, and the read models equal a rebuild from zero."""
    import threading

    from tests.conftest import run_parley
    from tests.test_hearing import VOICE

    llm_server.answer_delay = 0.2
    em = discord_emulator
    channels = [em.text_channel("general", em.add_guild(f"Guild {s}", shard=s, shard_count=2)) for s in (0, 1)]
    people = [em.user(f"User{i}") for i in range(3)]
    envs = [shard_env(tmp_path, llm_server, em, postgres_url, shard) | {"VOSK_MODEL_PATH": str(model_path)}
            for shard in (0, 1)]
    posted: list[tuple[dict, str]] = []  # (message, the reply it must get)
    spoken: list[tuple[dict, int]] = []  # (a voice message, the shard of its guild)
    stop = threading.Event()

    def traffic() -> None:
        for n in range(80):
            if stop.is_set():
                return
            channel = channels[n % 2]
            if n % 5 == 4:
                m = em.user_says(channel, em.owner, f"!train Question {n}? => Answer {n}.")
                posted.append((m, "Added 1 example(s)"))
            elif n % 20 in (2, 7):  # a voice message in each guild now and then
                clip = em.attachment("voice-message.ogg", VOICE.read_bytes(), "audio/ogg", duration_secs=3.7)
                m = em.user_says(channel, people[n % 3], "", attachments=[clip], voice=True, mention_bot=True)
                spoken.append((m, n % 2))
            else:
                m = em.user_says(channel, people[n % 3], f"question {n}", mention_bot=True)
                posted.append((m, f"echo: question {n} ["))  # few-shot examples add turns
            time.sleep(0.12)

    def catch_ups() -> int:
        return sum(e["type"] == "CatchUpFinished" for e in replay_json(envs[0]))

    def replies(message: dict, voice: bool) -> list[dict]:
        return [m for m in em.replies_to(message) if bool(m["flags"] & VOICE_FLAG) == voice]

    def fetched_in_guild_zero() -> bool:
        return any(m["attachments"][0]["id"] in em.downloaded for m, shard in list(spoken) if shard == 0)

    shards = [Bot(envs[0], em).start(), Bot(envs[1], em).start()]
    writer = threading.Thread(target=traffic, daemon=True)
    try:
        wait_for(lambda: catch_ups() == 2, timeout=60, what="both shards ready")
        writer.start()
        for kill, shard in enumerate((0, 1, 0)):
            if kill == 0:
                wait_for(fetched_in_guild_zero, what="a clip in guild zero fetched")  # and being transcribed
            else:
                time.sleep(1.5)
            shards[shard].kill()
            time.sleep(1.0)  # down while messages for it arrive
            shards[shard] = Bot(envs[shard], em).start()
            wait_for(lambda: catch_ups() == 3 + kill, timeout=60, what="the restarted shard's catch-up")
        writer.join(60)
        assert len(posted) + len(spoken) == 80

        def unanswered() -> list[str]:
            return ([m["content"] for m, want in posted if not any(want in r["content"] for r in em.replies_to(m))]
                    + [m["id"] for m, _ in spoken if not (replies(m, False) and replies(m, True))])
        try:
            wait_for(lambda: not unanswered(), timeout=90, what="every message answered")
        except AssertionError:
            raise AssertionError(f"unanswered: {unanswered()}") from None
        time.sleep(1.5)  # a second answer would be here by now
        assert [m["content"] for m, _ in posted if len(em.replies_to(m)) != 1] == []
        assert [(len(replies(m, False)), len(replies(m, True))) for m, _ in spoken] == [(1, 1)] * len(spoken)
        events = replay_json(envs[0])
        heard = [e["data"]["message_id"] for e in events if e["type"] == "TranscriptionCompleted"]
        assert sorted(heard) == sorted(m["id"] for m, _ in spoken)  # each clip transcribed once
        added = [e["data"] for e in events if e["type"] == "ExamplesAdded"]
        trained = sorted(m["id"] for m, want in posted if want.startswith("Added"))
        assert sorted(a["message_id"] for a in added) == trained  # none lost, none doubled
    finally:
        stop.set()
        for bot in shards:
            bot.stop()
    _, _, fed = read_model_rows(postgres_url, tmp_path / "x")
    rebuilt = run_parley(["projections", "rebuild", "--all"], envs[0])
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert read_model_rows(postgres_url, tmp_path / "x")[2] == fed
