"""Learning end to end on Discord: the real bot (`python run.py`) against the Discord API emulator and
the OpenAI-compatible server (chat, files, fine-tuning jobs): from examples to an activated model."""
from __future__ import annotations

import json

import pytest

from tests.conftest import parley_env, replay_json
from tests.fakes.discord_server import BOT_TOKEN
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot, discord_emulator  # noqa: F401  (a fixture)


@pytest.fixture
def learning_bot(tmp_path, llm_server, discord_emulator):  # noqa: F811
    env = parley_env(tmp_path / "data", llm_server, DISCORD_TOKEN=BOT_TOKEN,
                     DISCORD_API_BASE=discord_emulator.api_base, DISCORD_GATEWAY_URL=discord_emulator.gateway_url,
                     PARLEY_STREAM_EDIT_INTERVAL="0.2", PARLEY_TRAINING_POLL_S="0.2")
    running = Bot(env, discord_emulator).start()
    yield running
    assert "Traceback" not in running.stop()


def reply_text(emulator, message: dict, containing: str = "") -> str:
    def found():
        texts = [m["content"] for m in emulator.replies_to(message) if containing in m["content"]]
        return texts[-1] if texts else None
    return wait_for(found, 30, what=f"a reply containing {containing!r}")  # type: ignore[return-value]


def test_from_examples_to_a_fine_tuned_model_on_discord(learning_bot, discord_emulator, llm_server):  # noqa: F811
    emulator, general, owner = discord_emulator, discord_emulator.general, discord_emulator.owner
    member = emulator.user("Mallory")
    refused = emulator.user_says(general, member, "!train Who is the boss? => Mallory.")
    assert "Only Parley's admins" in reply_text(emulator, refused)

    lines = [json.dumps({"messages": [{"role": "user", "content": f"How do I reset router model {i}?"},
                                      {"role": "assistant", "content": f"Hold its reset button {i} seconds."}]})
             for i in range(10)]
    upload = emulator.attachment("routers.jsonl", ("\n".join(lines) + "\n").encode(), "application/jsonl")
    imported = emulator.user_says(general, owner, "!train", attachments=[upload])
    assert "Added 10 example(s) and 0 answer(s) to avoid to `default`" in reply_text(emulator, imported)
    broken = emulator.attachment("broken.csv", b"prompt,completion\nonly a prompt\n")
    assert "row 2: needs a prompt and a completion" in reply_text(emulator, emulator.user_says(
        general, owner, "!train", attachments=[broken]))
    emulator.user_slash(general, owner, "train", {"file": emulator.attachment("faq.txt", b"Q: Parking?\nA: Level -2.\n")})
    wait_for(lambda: [f for f in emulator.followups if "Added 1 example(s)" in (f.get("content") or "")],
             what="the slash import's follow-up")
    typed = emulator.user_says(general, owner, "!train What's the office wifi password? => Ask at the front desk.")
    assert "Added 1 example(s)" in reply_text(emulator, typed)

    question = emulator.user_says(general, member, "what is the wifi password here?", mention_bot=True)
    reply_text(emulator, question, "echo:")
    asked = next(r for r in llm_server.requests if r["messages"][-1]["content"] == "what is the wifi password here?")
    assert {"role": "assistant", "content": "Ask at the front desk."} in asked["messages"]

    emulator.user_slash(general, owner, "dataset", {"action": "export", "name": "default"})
    exported = wait_for(lambda: [f for f in emulator.followups if "Exported 12 SFT record(s)" in (f.get("content") or "")],
                        what="the export's follow-up")
    assert exported[0]["attachments"][0]["filename"] == "default-sft.jsonl"  # the file came with it
    escape = emulator.user_says(general, owner, "!getfile ../read-models.sqlite3")
    assert "I only send files from exports/ and archives/" in reply_text(emulator, escape)

    start = emulator.user_says(general, owner, "!finetune start base-model")
    assert "Started fine-tuning job `ftjob-1`" in reply_text(emulator, start, "Started")
    outcome = reply_text(emulator, start, "succeeded:")
    assert "`ft:base-model:parley:" in outcome and "now answers in this server" in outcome
    # while it ran, one message showed its progress, edited in place (not one message a poll), and its end
    [progress] = wait_for(lambda: [m for m in emulator.replies_to(start) if m["content"].startswith("`ftjob-1`: [")
                                   and m["content"].endswith("succeeded")], what="the progress message's last edit")
    assert progress["content"] == "`ftjob-1`: [####################] succeeded", progress["content"]
    assert emulator.edits[progress["id"]] >= 1
    later = emulator.user_says(general, member, "hello again", mention_bot=True)
    reply_text(emulator, later, "echo:")
    assert llm_server.requests[-1]["model"].startswith("ft:base-model:parley:")
    types = [e["type"] for e in replay_json(learning_bot.env)]
    assert {"ExamplesAdded", "ExamplesRefused", "DatasetExported", "FileRefused", "FineTuneStarted",
            "FineTuneStatusChanged", "FineTuneFinished", "ModelActivated"} <= set(types)
    assert types.count("ReplySent") >= 9
