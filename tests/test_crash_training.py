"""A crash in the middle of a fine-tuning poll (issue 16): the bot process is SIGKILLed while its request for a
job's status is in flight. After the restart the job is polled again from the log, finishes once, its model is
activated once and the person told once; no second job is started, no example lost or doubled."""
from __future__ import annotations

import json
import time

from tests.conftest import parley_env, replay_json
from tests.fakes.discord_server import BOT_TOKEN
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot, discord_emulator  # noqa: F401  (fixture)
from tests.test_discord_learning import reply_text


def test_a_crash_during_a_fine_tuning_poll_finishes_the_job_once_after_the_restart(tmp_path, llm_server,
                                                                                    discord_emulator):
    em = discord_emulator
    env = parley_env(tmp_path / "data", llm_server, DISCORD_TOKEN=BOT_TOKEN, DISCORD_API_BASE=em.api_base,
                     DISCORD_GATEWAY_URL=em.gateway_url, PARLEY_STREAM_EDIT_INTERVAL="0.2",
                     PARLEY_TRAINING_POLL_S="0.2")
    general, owner, member = em.general, em.owner, em.user("Mallory")
    bot = Bot(env, em).start()
    try:
        lines = [json.dumps({"messages": [{"role": "user", "content": f"How do I reset router {i}?"},
                                          {"role": "assistant", "content": f"Hold its button {i} seconds."}]})
                 for i in range(10)]
        examples = em.attachment("routers.jsonl", "\n".join(lines).encode(), "application/json")
        trained = em.user_says(general, owner, "!train", attachments=[examples])
        assert "Added 10 example(s)" in reply_text(em, trained, "Added")

        llm_server.hold_polls.set()  # the job's status request will be in flight when the process dies
        start = em.user_says(general, owner, "!finetune start base-model")
        assert "Started fine-tuning job `ftjob-1`" in reply_text(em, start, "Started")
        wait_for(lambda: llm_server.polls_held >= 1, what="a poll in flight")
        bot.kill()
        while_down = em.user_says(general, member, "are you there?", mention_bot=True)
        llm_server.hold_polls.clear()

        bot = Bot(env, em).start()
        outcome = reply_text(em, start, "succeeded:")
        assert "`ft:base-model:parley:" in outcome and "now answers in this server" in outcome
        reply_text(em, while_down, "echo: are you there?")
        later = em.user_says(general, member, "hello again", mention_bot=True)
        reply_text(em, later, "echo: hello again")
        assert llm_server.requests[-1]["model"].startswith("ft:base-model:parley:")
        time.sleep(1.0)  # a second outcome would be here by now
        assert len([m for m in em.replies_to(start) if "succeeded:" in m["content"]]) == 1
        assert list(llm_server.jobs) == ["ftjob-1"]  # the restart did not start another job
        types = [e["type"] for e in replay_json(env)]
        assert (types.count("FineTuneStarted"), types.count("FineTuneFinished"), types.count("ModelActivated"),
                types.count("ExamplesAdded")) == (1, 1, 1, 1)
        assert [len(em.replies_to(m)) for m in (trained, while_down, later)] == [1, 1, 1]
    finally:
        log = bot.stop()
    assert "Traceback" not in log


def test_a_crash_after_the_service_started_a_job_and_before_it_was_recorded_adopts_that_job(
        tmp_path, llm_server, discord_emulator):
    """SIGKILL while the service's answer to "create the job" is in flight: the job exists there, the log does
    not know it. After the restart the command is offered again (catch-up: it was never answered) and adopts
    the job it started, found by its tag, instead of paying for a second one."""
    em = discord_emulator
    env = parley_env(tmp_path / "data", llm_server, DISCORD_TOKEN=BOT_TOKEN, DISCORD_API_BASE=em.api_base,
                     DISCORD_GATEWAY_URL=em.gateway_url, PARLEY_STREAM_EDIT_INTERVAL="0.2",
                     PARLEY_TRAINING_POLL_S="0.2")
    general, owner = em.general, em.owner
    bot = Bot(env, em).start()
    try:
        lines = [json.dumps({"messages": [{"role": "user", "content": f"How do I reset router {i}?"},
                                          {"role": "assistant", "content": f"Hold its button {i} seconds."}]})
                 for i in range(10)]
        trained = em.user_says(general, owner, "!train", attachments=[
            em.attachment("routers.jsonl", "\n".join(lines).encode(), "application/json")])
        reply_text(em, trained, "Added 10 example(s)")
        llm_server.hold_creates.set()
        start = em.user_says(general, owner, "!finetune start base-model")
        wait_for(lambda: llm_server.creates_held >= 1, what="the job created, its answer in flight")
        bot.kill()
        llm_server.hold_creates.clear()
        assert em.replies_to(start) == []

        bot = Bot(env, em).start()
        assert "Started fine-tuning job `ftjob-1`" in reply_text(em, start, "Started")
        assert "`ft:base-model:parley:" in reply_text(em, start, "succeeded:")
        time.sleep(1.0)
        assert list(llm_server.jobs) == ["ftjob-1"]  # adopted, not started again
        assert llm_server.jobs["ftjob-1"]["metadata"] == {"parley_command": f"discord:{start['id']}"}
        types = [e["type"] for e in replay_json(env)]
        assert (types.count("FineTuneStarted"), types.count("ModelActivated")) == (1, 1)
    finally:
        log = bot.stop()
    assert "adopting it" in log and "Traceback" not in log
