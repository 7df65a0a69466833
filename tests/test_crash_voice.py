"""The crash test with voice (issue 16): the bot as a real process, with Vosk and Piper, SIGKILLed in the
middle of a transcription, in the middle of a synthesis and once more under text traffic, and restarted:
every voice message gets one transcript-and-answer reply and one voice-message reply, every mention one
answer, nothing twice."""
from __future__ import annotations

import time

import pytest

from tests.conftest import replay_json
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot, bot_env, discord_emulator  # noqa: F401  (fixtures)
from tests.test_hearing import VOICE, model_path  # noqa: F401  (fixture)

VOICE_FLAG = 1 << 13


@pytest.mark.timeout(300)  # three restarts, each loading the speech model
def test_voice_messages_and_mentions_across_kills_mid_transcription_and_mid_synthesis_are_answered_once(
        bot_env, discord_emulator, model_path):  # noqa: F811
    em = discord_emulator
    bot_env.update(VOSK_MODEL_PATH=str(model_path))
    people = [em.user(f"Speaker{i}") for i in range(3)]
    dms = [em.dm_channel(p) for p in people]
    voice_messages: list[dict] = []
    mentions: list[dict] = []

    def speak(n: int) -> dict:  # in DMs Parley has seen (one opened while it is away cannot be found)
        clip = em.attachment("voice-message.ogg", VOICE.read_bytes(), "audio/ogg", duration_secs=3.7)
        message = em.user_says(dms[n % 3], people[n % 3], "", attachments=[clip], voice=True)
        voice_messages.append(message)
        return message

    def mention(n: int) -> None:
        mentions.append(em.user_says(em.general, people[n % 3], f"question {n}", mention_bot=True))

    def replies(message: dict, voice: bool) -> list[dict]:
        return [m for m in em.replies_to(message) if bool(m["flags"] & VOICE_FLAG) == voice]

    def catch_ups() -> int:
        return sum(e["type"] == "CatchUpFinished" for e in replay_json(bot_env))

    running = Bot(bot_env, em).start()
    try:
        wait_for(lambda: catch_ups() == 1, timeout=60, what="the bot ready")
        hellos = [em.user_says(dm, person, "hello") for dm, person in zip(dms, people)]
        wait_for(lambda: all(em.replies_to(m) for m in hellos), timeout=30, what="the DMs answered")
        downloads = em.downloads
        speak(0)
        wait_for(lambda: em.downloads > downloads, timeout=30, what="the clip fetched")
        running.kill()  # 1: while it transcribes
        mention(1)
        speak(2)  # both while it is down
        running = Bot(bot_env, em).start()
        wait_for(lambda: catch_ups() == 2, timeout=60, what="the catch-up after the first kill")

        said = speak(3)
        wait_for(lambda: replies(said, voice=False), timeout=60, what="the transcript and answer")
        running.kill()  # 2: while it synthesizes the voice reply
        running = Bot(bot_env, em).start()
        wait_for(lambda: catch_ups() == 3, timeout=60, what="the catch-up after the second kill")

        for n in range(4, 10):
            mention(n)
            time.sleep(0.1)
        running.kill()  # 3: under text traffic
        speak(10)
        running = Bot(bot_env, em).start()

        def unanswered() -> list[str]:
            return ([m["id"] for m in voice_messages if not (replies(m, False) and replies(m, True))]
                    + [m["content"] for m in mentions if not em.replies_to(m)])
        try:
            wait_for(lambda: not unanswered(), timeout=120, what="every message answered")
        except AssertionError:
            raise AssertionError(f"unanswered: {unanswered()}; voice replies: "
                                 f"{[(len(replies(m, False)), len(replies(m, True))) for m in voice_messages]}")
        time.sleep(1.5)  # anything sent twice would be here by now
        assert [(len(replies(m, False)), len(replies(m, True))) for m in voice_messages] == [(1, 1)] * 4
        assert [len(em.replies_to(m)) for m in mentions + hellos] == [1] * 10
        events = replay_json(bot_env)
        heard = [e["data"]["message_id"] for e in events if e["type"] == "TranscriptionCompleted"]
        assert sorted(heard) == sorted(m["id"] for m in voice_messages)  # each transcribed once
    finally:
        running.stop()
