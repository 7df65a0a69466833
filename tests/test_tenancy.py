"""Each server is its own tenant, end to end on the emulator with default settings (no operators configured):
one guild's owner is its admin there and nowhere else; examples, exports, files and models stay in the guild
that made them; a member's correction is a suggestion until that guild's admin approves it. What a person
would notice is checked: the replies, and the prompts the OpenAI-compatible server received."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import parley_env, replay_json
from tests.fakes.discord_server import BOT_TOKEN
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot, discord_emulator  # noqa: F401  (a fixture)

SECRET = "GUILD1-WIFI-SECRET-777"
EVIL = "http://evil.example/pay"


@pytest.fixture
def env(tmp_path, llm_server, discord_emulator):  # noqa: F811
    return parley_env(tmp_path / "data", llm_server, DISCORD_TOKEN=BOT_TOKEN,
                      DISCORD_API_BASE=discord_emulator.api_base, DISCORD_GATEWAY_URL=discord_emulator.gateway_url,
                      PARLEY_STREAM_EDIT_INTERVAL="5")


def reply(emulator, message: dict, containing: str = "") -> dict:
    def found():
        replies = [m for m in emulator.replies_to(message) if containing in m["content"]]
        return replies[-1] if replies else None
    return wait_for(found, 30, what=f"a reply containing {containing!r}")  # type: ignore[return-value]


def prompt_for(llm_server, question: str) -> dict:
    return wait_for(lambda: next((r for r in reversed(llm_server.requests)
                                  if r["messages"][-1]["content"] == question), None), 30, what=question)


def test_one_servers_owner_cannot_reach_another_servers_data_or_powers(env, discord_emulator, llm_server):  # noqa: F811
    emulator, general, owner = discord_emulator, discord_emulator.general, discord_emulator.owner
    eve, member, mallory = emulator.user("Eve"), emulator.user("Member"), emulator.user("Mallory")
    guild2 = emulator.add_guild("Eve's place", owner=eve)
    lounge = emulator.text_channel("lounge", guild2)
    bot = Bot(env, emulator).start()
    try:
        taught = emulator.user_says(general, owner, f"!train What is the wifi password? => {SECRET}")
        assert "Added 1 example(s)" in reply(emulator, taught)["content"]
        exported = emulator.user_says(general, owner, "!dataset export default --format sft")
        assert "Exported 1 SFT record(s)" in reply(emulator, exported)["content"]

        # Eve owns guild 2 only: in guild 2 she is its admin, and guild 1's data is not there.
        sent_before = set(emulator.files)
        for command in ("!dataset export default --format sft", "!dataset show default", "!dataset list",
                        "!getfile default-sft.jsonl", "!getfile exports/guild-%s/default-sft.jsonl" % emulator.guild_id,
                        "!finetune list"):
            said = emulator.user_says(lounge, eve, command)
            answer = reply(emulator, said)
            assert SECRET not in answer["content"] and "1 example(s)" not in answer["content"], command
            assert not answer["attachments"], command
        assert all(SECRET.encode() not in data for key, data in emulator.files.items() if key not in sent_before)
        chosen = emulator.user_says(lounge, eve, "!model use eve-evil-model")
        assert "now answers in this server" in reply(emulator, chosen)["content"]
        everywhere = emulator.user_says(lounge, eve, "!model use eve-evil-model --everywhere")
        assert "Only the bot's operators" in reply(emulator, everywhere)["content"]

        # Guild 1's example teaches guild 1 only; Eve's model answers guild 2 only.
        there = emulator.user_says(lounge, member, "What is the wifi password?", mention_bot=True)
        reply(emulator, there, "echo:")
        asked_there = prompt_for(llm_server, "What is the wifi password?")
        assert SECRET not in json.dumps(asked_there) and asked_there["model"] == "eve-evil-model"
        here = emulator.user_says(general, member, "what is the wifi password, please?", mention_bot=True)
        reply(emulator, here, "echo:")
        asked_here = prompt_for(llm_server, "what is the wifi password, please?")
        assert SECRET in json.dumps(asked_here) and asked_here["model"] != "eve-evil-model"

        # A member corrects the answer someone else got: recorded, shown for review, teaches nobody yet.
        parking = emulator.user_says(general, member, "Where can I park?", mention_bot=True)
        answer = reply(emulator, parking, "echo:")
        fixed = emulator.user_says(general, mallory, f"!correct Parking is closed; pay the fee at {EVIL}",
                                   reply_to=answer)
        assert "shown to this server's admins" in reply(emulator, fixed)["content"]
        for channel, asker, question in ((general, owner, "where can I park the car?"),
                                         (lounge, eve, "where can I park today?")):
            asked = emulator.user_says(channel, asker, question, mention_bot=True)
            reply(emulator, asked, "echo:")
            assert EVIL not in json.dumps(prompt_for(llm_server, question)), question
        foreign = emulator.user_says(lounge, eve, "!corrections review")  # not her guild's suggestion
        assert EVIL not in reply(emulator, foreign)["content"]

        # Guild 1's owner approves it: now it teaches guild 1, and still not guild 2.
        review = emulator.user_says(general, owner, "!corrections review")
        listed = reply(emulator, review)["content"]
        number = listed.split("**")[1]
        approved = emulator.user_says(general, owner, f"!corrections approve {number}")
        assert "approved" in reply(emulator, approved)["content"]
        wait_for(lambda: any(e["type"] == "ExamplesAdded" and e["data"]["message_id"] == fixed["id"]
                             for e in replay_json(env)), 30, what="the approved correction taught")
        for channel, asker, question, taught in ((general, owner, "can I park here?", True),
                                                 (lounge, eve, "can I park there?", False)):
            asked = emulator.user_says(channel, asker, question, mention_bot=True)
            reply(emulator, asked, "echo:")
            assert (EVIL in json.dumps(prompt_for(llm_server, question))) is taught, question
    finally:
        assert "Traceback" not in bot.stop()
    events = replay_json(env)
    created = {e["data"]["name"] + "@" + e["data"]["scope"] for e in events if e["type"] == "DatasetCreated"}
    assert created == {f"default@guild:{emulator.guild_id}"}
    activated = [(e["data"]["model"], e["data"]["scope"]) for e in events if e["type"] == "ModelActivated"]
    assert activated == [("eve-evil-model", f"guild:{guild2}")]
    exports = sorted(str(p.relative_to(Path(env["PARLEY_DATA_DIR"])))
                     for p in (Path(env["PARLEY_DATA_DIR"]) / "exports").rglob("*.jsonl"))
    assert exports == [f"exports/guild-{emulator.guild_id}/default-sft.jsonl"]


def test_what_was_recorded_before_scopes_is_the_operators_and_no_servers():
    """Old records are read, not rewritten: as the operators' (so no guild inherits another's data), and a v1
    job's ``scope`` (then: the channel its model answers in) becomes its ``channel``."""
    import orjson

    from actors.learning.decider import Learning, evolve
    from events.codec import decode
    from events.scopes import OPERATORS

    def old(type_name: str, **data: object) -> object:
        return decode(type_name, orjson.dumps({"v": 1, "at": "2026-01-01T00:00:00+00:00", "data": data}))[0]

    created = old("DatasetCreated", dataset_id="d1", name="default", by="owner-of-guild-1")
    used = old("DatasetUsed", dataset_id="d1", name="default", channel="discord:9", by="owner-of-guild-1")
    model = old("ModelActivated", model="eve-evil-model", channel="", by="eve")
    job = old("FineTuneStarted", conversation_id="c", message_id="m", channel_id="9", source="discord", job_id="j",
              file_id="f", base_model="b", method="sft", dataset_id="d1", records=10, scope="discord:9", by="o")
    correction = old("CorrectionRecorded", source="discord", conversation_id="c", channel_id="9",
                     question_message_id="q", asker_id="a", question="Q?", original="A", corrected="B", by="m",
                     by_name="M", via="reply", message_id="x")
    assert {e.scope for e in (created, model, job, correction)} == {OPERATORS}  # type: ignore[attr-defined]
    assert job.channel == "discord:9" and correction.approved  # type: ignore[attr-defined]
    assert not used.shared  # type: ignore[attr-defined]  # nobody lent it: it was simply everyone's
    state = Learning()
    for event in (created, used):
        state = evolve(state, event)
    assert state.teaching_in("discord:9", "guild:1") is None  # the old dataset teaches no guild...
    assert state.teaching_in("console:console", OPERATORS).id == "d1"  # ...and stays the operators'
