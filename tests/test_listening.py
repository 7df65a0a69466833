"""Listening in a voice channel under DAVE, end to end (issue 17): the real bot (`python run.py`, discord.py's
voice client with Parley's receive path, davey, PyAV's Opus decoder, Vosk) against the Discord emulator's voice
server, where a simulated person — a bare ``davey`` session in the call's MLS group — speaks Opus over loopback
UDP with real RTP (header extensions and padding on some packets, silence frames at the end)."""
from __future__ import annotations

import json
import re
import time
import wave

import pytest

from adapters.opus_audio import OpusDecoder
from tests.fakes.discord_voice import ogg_packets
from tests.helpers import wait_for
from tests.test_hearing import VOICE, model_path  # noqa: F401  (fixture)
from tests.test_voice_channel import command, events, voice_emulator, voice_env, wait_event  # noqa: F401

QUESTION = ogg_packets(VOICE.read_bytes())  # the Korean test sentence, as a Discord client's Opus frames


BARE_STREAMING_VOSK = """
import json, sys
from vosk import Model, KaldiRecognizer, SetLogLevel
SetLogLevel(-1)
recognizer = KaldiRecognizer(Model(sys.argv[1]), 16000)
pcm, parts = open(sys.argv[2], "rb").read(), []
for at in range(0, len(pcm), 3200):
    if recognizer.AcceptWaveform(pcm[at:at + 3200]):
        parts.append(json.loads(recognizer.Result())["text"])
parts.append(json.loads(recognizer.FinalResult())["text"])
print(" ".join(p for p in parts if p).strip())
"""


def bare_vosk(model_path, pcm: bytes, folder) -> str:  # noqa: ANN001
    """What Vosk alone hears in ``pcm`` (16 kHz mono), fed as the bot feeds it, in a fresh process: Vosk's
    small Korean model does not hear the same clip the same way once the process has decoded others."""
    import subprocess
    import sys

    path = folder / "reference.pcm"
    path.write_bytes(pcm)
    return subprocess.run([sys.executable, "-c", BARE_STREAMING_VOSK, str(model_path), str(path)],
                          capture_output=True, text=True, timeout=120, check=True).stdout.strip()


def heard(env: dict[str, str], n: int) -> list[dict]:
    """The first ``n`` utterances the bot recorded as heard (waiting for them)."""
    def found() -> list[dict] | None:
        said = [e["data"] for e in events(env, "UtteranceHeard")]
        return said if len(said) >= n else None
    return wait_for(found, timeout=60, what=f"{n} utterances heard")  # type: ignore[return-value]


def reference_pcm(packets: list[bytes]) -> bytes:
    decoder = OpusDecoder()
    return b"".join(decoder.decode(p) for p in packets)


@pytest.mark.timeout(180)
def test_a_spoken_question_is_heard_under_dave_and_answered_in_writing_and_by_voice(
        tmp_path, llm_server, voice_emulator, model_path):  # noqa: F811
    from tests.test_discord_e2e import Bot

    em = voice_emulator
    # A silence long enough that a busy test machine stalling mid-sentence does not cut the sentence in two.
    env = voice_env(tmp_path, llm_server, em, VOSK_MODEL_PATH=str(model_path), PARLEY_LISTEN_SILENCE_MS="1500")
    speaker = em.listener  # the call's other DAVE member
    em.user_joins_voice(em.owner, em.lounge)
    em.user_joins_voice(speaker, em.lounge)
    bot = Bot(env, em).start()
    try:
        assert "Joined 🔊 Lounge" in command(em, em.owner, "!join")["content"]
        wait_for(lambda: em.voice.listener is not None and em.voice.listener.ready, what="the DAVE group formed")
        # Not listening yet: what is said is dropped before it is decoded, and nothing is recorded.
        em.voice.speak_soon(QUESTION[:50]).result(30)
        refused = command(em, speaker, "!listen on")
        assert "Only this server's admins" in refused["content"]
        announced = command(em, em.owner, "!listen on")
        assert "I'm listening in this server's voice channels" in announced["content"]
        # A silence frame from Parley keeps the voice server sending to it while it listens and says nothing.
        wait_for(lambda: em.voice.audio(int(em.bot["id"])).plain >= 1, what="a keepalive")

        typed = len(em.typing)
        em.voice.speak_soon(QUESTION).result(30)
        heard = wait_event(env, "UtteranceHeard", timeout=60)["data"]
        assert heard["speaker_id"] == speaker["id"] and heard["voice_channel_id"] == em.lounge
        assert heard["channel_id"] == em.general  # answered where listening was turned on
        assert abs(heard["duration_s"] - len(QUESTION) * 0.02) < 0.1  # every frame decrypted and decoded
        expected = bare_vosk(model_path, reference_pcm(QUESTION), tmp_path)
        assert expected and heard["transcript"] == expected  # the bot's first decode, as a fresh Vosk's

        answer = wait_for(lambda: next((m for m in em.messages[em.general] if m["author"]["id"] == em.bot["id"]
                                        and m["content"].startswith("> ")), None), what="the written answer")
        assert answer["content"] == f"> {expected}\n\necho: {expected} [turns=1]"
        played = wait_event(env, "PlaybackFinished", utterance_id=heard["message_id"], timeout=60)
        assert played["data"]["guild_id"] == em.guild_id  # and said aloud in the voice channel
        assert len([e for e in events(env, "UtteranceHeard")]) == 1  # the first 50 frames were never heard
        assert em.general in em.typing[typed:]  # "Parley is typing" where the answer is written, while it thinks
        # status says how long each stage of the turn took, from the end of the speech
        stages = command(em, em.owner, "!status")["content"].split("\n")[-1]
        assert stages.startswith("Last 1 voice turns, median from the end of speech: transcript "), stages
        seconds = [float(x) for x in re.findall(r"(\d+\.\d+) s", stages)]
        assert "first token" in stages and "first audio" in stages and len(seconds) == 3
        assert seconds == sorted(seconds), stages  # transcript, then the first token, then the first audio

        clip = tmp_path / "data" / "audio" / heard["audio_hash"]
        with wave.open(str(clip)) as w:  # the utterance's audio is a clip in the data dir, not in the log
            assert w.getframerate() == 16000 and abs(w.getnframes() / 16000 - heard["duration_s"]) < 0.01
    finally:
        stderr = bot.stop()
    assert "Traceback" not in stderr, stderr[-3000:]


@pytest.mark.timeout(180)
def test_barge_in_an_opt_out_and_listening_off(tmp_path, llm_server, voice_emulator, model_path):  # noqa: F811
    from tests.fakes.openai_server import Scripted
    from tests.test_discord_e2e import Bot
    from tests.test_voice_channel import LONG_ANSWER

    em = voice_emulator
    # A silence long enough that a busy test machine stalling mid-sentence does not cut the sentence in two.
    env = voice_env(tmp_path, llm_server, em, VOSK_MODEL_PATH=str(model_path), PARLEY_LISTEN_SILENCE_MS="1500")
    speaker = em.listener
    em.user_joins_voice(em.owner, em.lounge)
    em.user_joins_voice(speaker, em.lounge)
    bot = Bot(env, em).start()
    try:
        assert "Joined 🔊 Lounge" in command(em, em.owner, "!join")["content"]
        assert em.bot_self_deaf  # deafened while not listening: everyone can see it does not hear them
        command(em, em.owner, "!listen on")
        wait_for(lambda: not em.bot_self_deaf, what="Parley undeafened")
        wait_for(lambda: em.voice.listener is not None and em.voice.listener.ready, what="the DAVE group formed")

        # Barge-in: someone speaks while Parley talks; it stops saying that answer.
        llm_server.script.append(Scripted(text=LONG_ANSWER))
        asked = em.user_says(em.general, em.owner, "tell me a lot", mention_bot=True)
        wait_event(env, "PlaybackStarted", utterance_id=asked["id"])
        em.voice.speak_soon(QUESTION[:40]).result(30)
        interrupted = wait_event(env, "PlaybackInterrupted", utterance_id=asked["id"])
        assert interrupted["data"]["reason"] == "barge_in"
        first = wait_event(env, "UtteranceHeard")  # and what they said is heard and answered

        # A person who opts out is not heard any more, even while listening is on.
        assert "won't hear you" in command(em, speaker, "!listen me off")["content"]
        em.voice.speak_soon(QUESTION).result(30)
        assert "You have opted out" in command(em, speaker, "!listen")["content"]
        assert "hear you again" in command(em, speaker, "!listen me on")["content"]
        em.voice.speak_soon(QUESTION).result(30)  # heard again: what they said while opted out never was
        wait_for(lambda: len(events(env, "UtteranceHeard")) >= 2, timeout=60, what="the utterance after opting in")
        time.sleep(1.0)  # anything else heard would be recorded by now
        said = [e["data"] for e in events(env, "UtteranceHeard")]
        assert len(said) == 2 and said[0]["message_id"] == first["data"]["message_id"]
        assert said[1]["transcript"] and abs(said[1]["duration_s"] - len(QUESTION) * 0.02) < 0.1  # all of it

        # Listening off: Parley deafens itself again.
        command(em, em.owner, "!leave")  # joining while listening says so
        assert "I'm listening in 🔊 Lounge" in command(em, em.owner, "!join")["content"]
        assert "stopped listening" in command(em, em.owner, "!listen off")["content"]
        wait_for(lambda: em.bot_self_deaf, what="Parley deafened")
        kinds = [e["type"] for e in events(env, "ListeningTurnedOn", "ListeningOptOutChanged", "ListeningTurnedOff")]
        assert kinds == ["ListeningTurnedOn", "ListeningOptOutChanged", "ListeningOptOutChanged", "ListeningTurnedOff"]
    finally:
        stderr = bot.stop()
    assert "Traceback" not in stderr, stderr[-3000:]


@pytest.mark.timeout(240)
def test_two_people_at_once_a_reconnect_and_a_bad_commit_parley_keeps_hearing(tmp_path, llm_server, voice_emulator,
                                                                              model_path):  # noqa: F811
    from tests.test_discord_e2e import Bot

    em = voice_emulator
    # A silence long enough that a busy test machine stalling mid-sentence does not cut the sentence in two.
    env = voice_env(tmp_path, llm_server, em, VOSK_MODEL_PATH=str(model_path), PARLEY_LISTEN_SILENCE_MS="1500",
                    PARLEY_BARGE_IN="off")
    speaker, bob = em.listener, em.user("Bob")
    for person in (em.owner, speaker, bob):
        em.user_joins_voice(person, em.lounge)
    bot = Bot(env, em).start()

    def whole(utterance: dict) -> bool:
        return bool(utterance["transcript"]) and abs(utterance["duration_s"] - len(QUESTION) * 0.02) < 0.1

    try:
        assert "Joined 🔊 Lounge" in command(em, em.owner, "!join")["content"]
        command(em, em.owner, "!listen on")
        wait_for(lambda: em.voice.listener is not None and em.voice.listener.ready, what="the DAVE group formed")

        # Bob joins the call (the group re-keys), and both speak at once; Bob leaves after 2 s, in the middle of
        # the other's sentence (the group re-keys again): the rest of that sentence is heard whole all the same.
        em.voice.run_soon(em.voice.add_member(int(bob["id"]))).result(10)
        wait_for(lambda: int(bob["id"]) in em.voice.members, what="Bob in the DAVE group")
        epoch = em.voice.listener.epoch
        sentence = em.voice.speak_soon(QUESTION)
        em.voice.speak_soon(QUESTION[:100], user_id=int(bob["id"]), ssrc=4343, silence_frames=0).result(30)
        em.voice.run_soon(em.voice.remove_member(int(bob["id"]))).result(10)
        wait_for(lambda: em.voice.listener.epoch > epoch, what="the group re-keyed without Bob")
        assert not sentence.done()  # mid-sentence
        sentence.result(30)
        first_two = {u["speaker_id"]: u for u in heard(env, 2)}
        assert whole(first_two[speaker["id"]])
        assert abs(first_two[bob["id"]]["duration_s"] - 2.0) < 0.1  # his part, ended by his leaving

        # The voice server drops the connection while Parley speaks the first answer: discord.py reconnects, with
        # a new transport key and a new group; Parley hears the next sentence whole and is still in the channel.
        wait_event(env, "PlaybackStarted", utterance_id=first_two[speaker["id"]]["message_id"])
        key, group = em.voice.secret, em.voice.listener
        em.voice.run_soon(em.voice.close_all(4006)).result(10)
        try:
            wait_for(lambda: em.voice.secret != key and em.voice.listener not in (None, group)
                     and em.voice.listener.ready, timeout=30, what="reconnected with new keys")
        except AssertionError:
            raise AssertionError(f"no reconnect; voice server saw {em.voice.events[-12:]}; bot: {bot.log()[-2500:]}")
        em.voice.speak_soon(QUESTION).result(30)
        third = heard(env, 3)[2]
        assert whole(third)
        try:
            wait_event(env, "PlaybackFinished", utterance_id=third["message_id"])  # still in the channel, speaking
        except AssertionError:
            playback = [(e["type"], e["data"]) for e in events(env, "PlaybackStarted", "PlaybackInterrupted",
                                                                "PlaybackFinished")]
            raise AssertionError(f"the answer was not spoken: {playback}; bot: {bot.log()[-4000:]}")
        assert not events(env, "VoiceChannelLeft")  # a reconnect is not a leave

        # A commit Parley cannot process: it re-initialises its DAVE session, the group forms again; the speaker
        # has the new keys a second before Parley does, and speaks at once: those frames wait, and are heard.
        group, em.voice.hold_commit_s = em.voice.listener, 1.0
        em.voice.run_soon(em.voice.send_bad_commit()).result(10)
        wait_for(lambda: em.voice.listener not in (None, group) and em.voice.listener.ready, timeout=60,
                 what="the group formed again")
        em.voice.speak_soon(QUESTION).result(30)
        assert whole(heard(env, 4)[3])
    finally:
        stderr = bot.stop()
    assert "Traceback" not in stderr, stderr[-3000:]


@pytest.mark.timeout(180)
def test_an_ssrc_named_late_and_a_downgrade_to_plain_opus_are_heard_whole(tmp_path, llm_server, voice_emulator,
                                                                           model_path):  # noqa: F811
    from tests.test_discord_e2e import Bot

    em = voice_emulator
    # A silence long enough that a busy test machine stalling mid-sentence does not cut the sentence in two.
    env = voice_env(tmp_path, llm_server, em, VOSK_MODEL_PATH=str(model_path), PARLEY_LISTEN_SILENCE_MS="1500")
    em.user_joins_voice(em.owner, em.lounge)
    em.user_joins_voice(em.listener, em.lounge)
    bot = Bot(env, em).start()

    try:
        assert "Joined 🔊 Lounge" in command(em, em.owner, "!join")["content"]
        command(em, em.owner, "!listen on")
        wait_for(lambda: em.voice.listener is not None and em.voice.listener.ready, what="the DAVE group formed")
        # Discord names the SSRC only after 20 frames (400 ms) have arrived: they wait, and are heard.
        em.voice.speak_soon(QUESTION, announce=20).result(30)
        assert abs(heard(env, 1)[0]["duration_s"] - len(QUESTION) * 0.02) < 0.1
        # The call drops DAVE: plain Opus is heard now, as it is allowed to pass.
        ready = em.voice.events.count("dave-ready")
        em.voice.run_soon(em.voice.downgrade()).result(10)
        wait_for(lambda: em.voice.events.count("dave-ready") > ready, what="the downgrade executed")
        em.voice.speak_soon(QUESTION, e2ee=False, ssrc=4444).result(30)
        assert abs(heard(env, 2)[1]["duration_s"] - len(QUESTION) * 0.02) < 0.1
    finally:
        stderr = bot.stop()
    assert "Traceback" not in stderr, stderr[-3000:]
