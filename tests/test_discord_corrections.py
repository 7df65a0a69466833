"""Corrections and votes end to end on Discord: the real bot against the emulator (buttons, forms,
the message command, replies and slash commands), and the corrected answer reaching the LLM."""
from __future__ import annotations

import pytest

from tests.conftest import parley_env, replay_json
from tests.fakes.discord_server import BOT_TOKEN
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot, discord_emulator  # noqa: F401  (a fixture)


@pytest.fixture
def env(tmp_path, llm_server, discord_emulator):  # noqa: F811
    return parley_env(tmp_path / "data", llm_server, DISCORD_TOKEN=BOT_TOKEN,
                      DISCORD_API_BASE=discord_emulator.api_base, DISCORD_GATEWAY_URL=discord_emulator.gateway_url,
                      PARLEY_STREAM_EDIT_INTERVAL="5")


def answer_to(emulator, question: dict) -> dict:
    def final():
        replies = [m for m in emulator.replies_to(question) if m["content"].startswith("echo:") and m.get("components")]
        return replies[0] if replies else None
    return wait_for(final, 30, what="the answer with its buttons")  # type: ignore[return-value]


def followup(emulator, containing: str) -> dict:
    return wait_for(lambda: next((f for f in emulator.followups if containing in (f.get("content") or "")), None),
                    30, what=f"a follow-up with {containing!r}")  # type: ignore[return-value]


def test_corrections_and_votes_through_every_door(env, discord_emulator, llm_server):  # noqa: F811
    emulator, general = discord_emulator, discord_emulator.general
    ann, bob, cat, dan = (emulator.user(n) for n in ("Ann", "Bob", "Cat", "Dan"))
    bot = Bot(env, emulator).start()
    try:
        question = emulator.user_says(general, ann, "What is the capital of Australia?", mention_bot=True)
        answer = answer_to(emulator, question)
        ids = [c["custom_id"] for row in answer["components"] for c in row["components"]]
        assert ids == ["parley:vote:up", "parley:vote:down"]

        fixed = emulator.user_says(general, ann, "!correct It is Canberra.", reply_to=answer)
        assert "shown to this server's admins" in wait_for(lambda: emulator.replies_to(fixed), 30)[0]["content"]
        wrong = emulator.user_says(general, bob, "!correct nonsense", reply_to=question)
        assert "Only my answers" in wait_for(lambda: emulator.replies_to(wrong), 30)[0]["content"]

        emulator.user_clicks(answer, ann, "parley:vote:up")
        assert followup(emulator, "Thanks for the 👍")
        emulator.user_clicks(answer, ann, "parley:vote:up")
        assert followup(emulator, "already rated this answer")
        opened = emulator.user_clicks(answer, bob, "parley:vote:down")
        wait_for(lambda: any(i == opened and b["type"] == 9 for i, b in emulator.interaction_callbacks), what="the form")
        emulator.user_submits(opened, bob, ["Canberra, not Sydney."])
        followup(emulator, "shown to this server's admins")
        menu = emulator.user_message_command(answer, cat, "Correct this answer")
        wait_for(lambda: any(i == menu and b["type"] == 9 for i, b in emulator.interaction_callbacks), what="the form")
        emulator.user_submits(menu, cat, ["Canberra (since 1913)."])
        link = f"https://discord.com/channels/{emulator.guild_id}/{general}/{answer['id']}"
        emulator.user_slash(general, dan, "correct", {"message": link, "answer": "Canberra!"})
        wait_for(lambda: sum("shown to this server's admins" in (f.get("content") or "") for f in emulator.followups)
                 == 3, 30, what="the form, menu and slash corrections answered")
        # Members suggest; the server's admin reviews: Ann's is approved, Bob's rejected, the others wait.
        review = emulator.user_says(general, ann, "!corrections review")
        assert "Only this server's admins" in wait_for(lambda: emulator.replies_to(review), 30)[0]["content"]
        review = emulator.user_says(general, emulator.owner, "!corrections review")
        listing = wait_for(lambda: emulator.replies_to(review), 30)[0]
        listed = listing["content"]
        numbers = {said: line.split("**")[1] for line in listed.splitlines() if "**" in line
                   for said in ("It is Canberra.", "Canberra, not Sydney.") if said in line}
        assert len(numbers) == 2 and listed.count("**") == 8, listed
        buttons = {c["custom_id"] for row in listing["components"] for c in row["components"]}
        approve = f"parley:review:approve:{numbers['It is Canberra.']}"
        assert len(buttons) == 8 and approve in buttons  # approve and reject for each of the four
        emulator.user_clicks(listing, ann, approve)  # a member's press runs nothing
        followup(emulator, "Only this server's admins")
        emulator.user_clicks(listing, emulator.owner, approve)
        followup(emulator, "approved: it teaches my answers from now on")
        done = emulator.user_says(general, emulator.owner, f"!corrections reject {numbers['Canberra, not Sydney.']}")
        assert "rejected" in wait_for(lambda: emulator.replies_to(done), 30)[0]["content"]
    finally:
        assert "Traceback" not in bot.stop()

    bot = Bot(env, emulator).start()  # the buttons of an answer sent before the restart still work
    try:
        emulator.user_clicks(answer, dan, "parley:vote:up")
        wait_for(lambda: sum("Thanks for the 👍" in (f.get("content") or "") for f in emulator.followups) == 2,
                 30, what="a vote after the restart")
        again = emulator.user_says(general, dan, "capital of Australia?", mention_bot=True)
        answer_to(emulator, again)
        asked = next(r for r in reversed(llm_server.requests) if r["messages"][-1]["content"] == "capital of Australia?")
        taught = [m["content"] for m in asked["messages"] if m["role"] == "assistant"]
        assert "It is Canberra." in taught and not {"Canberra, not Sydney.", "Canberra!"} & set(taught)

        asked = emulator.user_says(general, ann, "!forget-me")
        prompt = wait_for(lambda: [m for m in emulator.replies_to(asked) if m.get("components")], 30)[0]
        button = prompt["components"][0]["components"][0]
        assert button["custom_id"] == f"parley:forget:{ann['id']}" and "cannot be undone" in prompt["content"]
        emulator.user_clicks(prompt, bob, button["custom_id"])  # not Bob's to press
        wait_for(lambda: any(b.get("type") == 4 and "Only the person" in b["data"]["content"]
                             for _, b in emulator.interaction_callbacks), what="Bob refused")
        emulator.user_clicks(prompt, ann, button["custom_id"])
        followup(emulator, "Done: everything you said to me is now unreadable")
    finally:
        assert "Traceback" not in bot.stop()
    events = replay_json(env)
    corrections = [e["data"] for e in events if e["type"] == "CorrectionRecorded"]
    assert sorted(c["via"] for c in corrections) == ["button", "menu", "reply", "slash"]
    assert all(c["original"] == "(forgotten)" for c in corrections)  # the answer to Ann's question is hers
    votes = [(e["data"]["by"], e["data"]["rating"]) for e in events if e["type"] == "FeedbackRecorded"]
    assert votes == [(ann["id"], "up"), (bob["id"], "down"), (dan["id"], "up")]
    assert [e["data"]["person"] for e in events if e["type"] == "PersonForgotten"] == [ann["id"]]
    ann_said = [e["data"]["text"] for e in events if e["type"] == "MessageReceived" and e["data"]["author_id"] == ann["id"]]
    assert ann_said and set(ann_said) == {"(forgotten)"}
    assert not any("What is the capital" in c["question"] for c in corrections)  # her question, in every correction


def test_a_vote_is_recorded_when_its_acknowledgement_fails_and_clicks_without_a_channel_object_work(
        env, discord_emulator):  # noqa: F811
    emulator, general = discord_emulator, discord_emulator.general
    eve, fay = emulator.user("Eve"), emulator.user("Fay")
    bot = Bot(env, emulator).start()
    try:
        answer = answer_to(emulator, emulator.user_says(general, eve, "What is 2+2?", mention_bot=True))
        emulator.interactions_without_channel = True  # as Discord sends them today: `channel_id` only
        emulator.failing_callbacks = 1  # and the first acknowledgement fails
        emulator.user_clicks(answer, eve, "parley:vote:up")
        voted = lambda: [e for e in replay_json(env) if e["type"] == "FeedbackRecorded"]  # noqa: E731
        wait_for(lambda: len(voted()) == 1, 30, "Eve's vote recorded though its acknowledgement failed")
        emulator.user_clicks(answer, fay, "parley:vote:up")
        assert followup(emulator, "Thanks for the 👍")
        wait_for(lambda: len(voted()) == 2, 30, "Fay's vote")
        assert {v["data"]["by"] for v in voted()} == {eve["id"], fay["id"]}, voted()
        emulator.user_slash(general, eve, "hi")  # a slash command without its channel object too
        followup(emulator, "Hi Eve")
    finally:
        log = bot.stop()
    assert "Traceback" not in log and "AttributeError" not in log, log
    assert "could not acknowledge the up vote" in log
