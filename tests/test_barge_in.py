"""Barge-in through the voice emulator (issues 31 and 27): Parley's own voice coming back through someone's
microphone is not heard at all; a short sound with no words pauses Parley, which goes on (a backchannel); a real
interruption stops it; and the conversation remembers only what was said of the answer it cut off."""
from __future__ import annotations

import time

import pytest

from tests.helpers import wait_for
from tests.test_hearing import model_path  # noqa: F401  (fixture)
from tests.speech_clips import MID_TURN, opus_frames, said
from tests.test_listening import QUESTION
from tests.test_voice_channel import command, events, voice_emulator, voice_env, wait_event  # noqa: F401


def echo_of(frames: list[bytes]) -> list[bytes]:
    """Parley's Opus frames as someone's microphone sends them back: decoded, and encoded again by their client."""
    from adapters.opus_audio import OpusDecoder
    from tests.speech_clips import opus_frames

    decoder = OpusDecoder()
    return opus_frames(b"".join(decoder.decode(f) for f in frames))


@pytest.mark.timeout(240)
def test_its_own_voice_is_not_heard_mhm_is_not_an_interruption_and_a_real_interruption_stops_it(
        tmp_path, llm_server, voice_emulator, model_path):  # noqa: F811
    from tests.fakes.openai_server import Scripted
    from tests.test_discord_e2e import Bot
    from tests.test_voice_channel import LONG_ANSWER

    em = voice_emulator
    env = voice_env(tmp_path, llm_server, em, VOSK_MODEL_PATH=str(model_path), PARLEY_LISTEN_SILENCE_MS="800")
    em.user_joins_voice(em.owner, em.lounge)
    em.user_joins_voice(em.listener, em.lounge)
    bot = Bot(env, em).start()
    try:
        command(em, em.owner, "!join")
        command(em, em.owner, "!listen on")
        wait_for(lambda: em.voice.listener is not None and em.voice.listener.ready, what="the DAVE group formed")
        for round_ in range(1):
            llm_server.script.append(Scripted(text=LONG_ANSWER))
            asked = em.user_says(em.general, em.owner, f"tell me a lot {round_}", mention_bot=True)
            wait_event(env, "PlaybackStarted", utterance_id=asked["id"])
            # Parley's voice comes back through the other member's microphone, a moment later: not heard at all
            wait_for(lambda: len(em.voice.audio(int(em.bot["id"])).opus()) >= 100, what="two seconds said")
            em.voice.speak_soon(echo_of(em.voice.audio(int(em.bot["id"])).opus()[-60:])).result(30)
            time.sleep(2.0)
            assert not events(env, "PlaybackPaused", "PlaybackInterrupted", "UtteranceHeard")
            em.voice.speak_soon(QUESTION[:4]).result(30)  # "mm": 80 ms, no words in it: Parley pauses, goes on
            resumed = wait_event(env, "PlaybackResumed", utterance_id=asked["id"])
            assert resumed["data"]["reason"] == "backchannel"
            assert [e["type"] for e in events(env, "PlaybackPaused", "PlaybackResumed", "PlaybackInterrupted")] == \
                ["PlaybackPaused", "PlaybackResumed"]
            time.sleep(1.0)
            em.voice.speak_soon(QUESTION[:60]).result(30)  # then a whole interruption
            interrupted = wait_event(env, "PlaybackInterrupted", utterance_id=asked["id"])
            assert interrupted["data"]["reason"] == "barge_in", interrupted
            command(em, em.owner, "!stop")
        assert not any(e["data"]["speaker_id"] == str(em.bot["id"]) for e in events(env, "UtteranceHeard"))
        # What the conversation remembers of the answer cut off: what was said of it, and that it was cut off
        wait_event(env, "AnswerCutOff", message_id=asked["id"])
        answer = wait_for(lambda: next((m for m in em.replies_to(asked) if "sentence number 14" in m["content"]),
                                       None), what="the written answer, whole")
        # and its written answer says so, in the same message
        noted = wait_for(lambda: next((m for m in em.replies_to(asked) if "then cut off: someone spoke" in m["content"]),
                                      None), what="the note on the written answer")
        assert noted["id"] == answer["id"] and noted["content"].startswith("This is sentence number 1")
        assert "“This is sentence number" in noted["content"] and "the rest was only written" in noted["content"]
        llm_server.script.append(Scripted(text="Sorry, go on."))
        again = em.user_says(em.general, em.owner, "wait, what?", reply_to=answer)  # the same conversation
        asked_again = wait_for(lambda: next((r for r in llm_server.requests
                                             if r["messages"][-1]["content"] == "wait, what?"), None), what="asked")
        remembered = [m["content"] for m in asked_again["messages"] if m["role"] == "assistant"][-1]
        assert remembered.startswith("This is sentence number 1 of a long answer") and \
            "the rest of it was never said" in remembered and "sentence number 14" not in remembered, remembered

        # A pause to think mid-sentence, through the voice gateway: not answered until the sentence is whole
        wait_event(env, "ReplySent", message_id=again["id"])
        wait_for(lambda: time.monotonic() - em.voice.received_at[-1] > 1.0, timeout=60, what="Parley quiet")
        first, rest = MID_TURN[0]
        before = len(events(env, "UtteranceHeard"))
        em.voice.speak_soon(opus_frames(said(first))).result(30)
        time.sleep(0.8)
        assert len(events(env, "UtteranceHeard")) == before  # "I went to the store and": not answered
        em.voice.speak_soon(opus_frames(said(rest))).result(30)
        turn = wait_for(lambda: events(env, "UtteranceHeard")[before:], timeout=30, what="the whole turn")
        assert len(turn) == 1 and abs(turn[0]["data"]["duration_s"] - (len(said(first)) + len(said(rest))) / 32000) < 0.1
    finally:
        stderr = bot.stop()
    assert "Traceback" not in stderr, stderr[-3000:]
