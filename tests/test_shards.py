"""One bot split into two shard processes on one PostgreSQL store (issue 16): Discord routes each guild to
one shard and DMs to shard 0; each message is answered once, by the shard that got it; a shard that was
down catches up its own channels only."""
from __future__ import annotations

import time

from tests.conftest import parley_env, replay_json
from tests.fakes.discord_server import BOT_TOKEN
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot, discord_emulator, final_reply  # noqa: F401  (fixture)


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
