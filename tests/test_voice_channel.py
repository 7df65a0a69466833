"""Speaking in a voice channel, end to end: the real bot (`python run.py`, discord.py's voice client,
davey, ffmpeg's Opus encoder) against the Discord emulator's voice server (TLS websocket, UDP RTP,
DAVE). What the bot sends is decrypted twice (transport, then DAVE as a listening member), decoded,
and compared with the speech Parley synthesized."""
from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pytest

from adapters.speech import ffmpeg_binary
from tests.conftest import parley_env, replay_json
from tests.fakes.discord_server import BOT_TOKEN, DiscordEmulator
from tests.fakes.discord_voice import SILENCE, decode_opus
from tests.fakes.openai_server import Scripted
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot

ANSWER = ("Parley speaks in voice channels now. It synthesizes every sentence offline with Piper. "
          "The audio is encrypted end to end before it leaves. That is all there is to it.")
LONG_ANSWER = " ".join(f"This is sentence number {n} of a long answer that takes a while to say." for n in range(1, 15))


@pytest.fixture
def voice_emulator(tmp_path_factory):
    with DiscordEmulator() as emulator:
        emulator.start_voice(tmp_path_factory.mktemp("voice-tls"))
        emulator.lounge = emulator.voice_channel("Lounge")  # type: ignore[attr-defined]
        emulator.studio = emulator.voice_channel("Studio")  # type: ignore[attr-defined]
        yield emulator


def voice_env(tmp_path: Path, llm_server, emulator: DiscordEmulator, **extra: str) -> dict[str, str]:
    assert emulator.voice is not None
    return parley_env(tmp_path / "data", llm_server, DISCORD_TOKEN=BOT_TOKEN, DISCORD_API_BASE=emulator.api_base,
                      DISCORD_GATEWAY_URL=emulator.gateway_url, SSL_CERT_FILE=str(emulator.voice.cert), **extra)


def events(env: dict[str, str], *types: str) -> list[dict]:
    return [e for e in replay_json(env) if not types or e["type"] in types]


def wait_event(env: dict[str, str], kind: str, timeout: float = 60, **fields: object) -> dict:
    def found():
        return next((e for e in events(env, kind) if all(e["data"].get(k) == v for k, v in fields.items())), None)
    return wait_for(found, timeout=timeout, what=f"{kind} {fields}")  # type: ignore[return-value]


def command(emulator: DiscordEmulator, person: dict, text: str) -> dict:
    said = emulator.user_says(emulator.general, person, text)
    return wait_for(lambda: emulator.replies_to(said), what=f"the answer to {text!r}")[0]  # type: ignore[index]


def correlation(a: np.ndarray, b: np.ndarray, most_lag_s: float = 1.0) -> tuple[float, float]:
    """The best normalised correlation of two 48 kHz signals over shifts of up to ``most_lag_s``, and that shift
    in seconds: what was heard may start late when the machine is busy (a delay, not garbled speech)."""
    n = min(len(a), len(b))
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    size = 1 << (2 * n - 1).bit_length()
    xc = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    window = int(most_lag_s * 48000)
    lags = np.concatenate([xc[:window], xc[-window:]])
    best = int(lags.argmax())
    shift = best if best < window else best - 2 * window
    return float(lags[best] / (np.linalg.norm(a) * np.linalg.norm(b))), shift / 48000


def heard_report(heard: np.ndarray, said: np.ndarray, similarity: float, lag_s: float, received, arrivals) -> str:  # noqa: ANN001
    """What the listener heard, when it is not the speech: where it stops matching (second by second, each second's
    best correlation with what was said near the same place) and how the packets came (gaps against 20 ms)."""
    seconds = []
    for start in range(0, min(len(heard), len(said)) - 48000, 48000):
        piece, _ = correlation(heard[start:start + 48000], said[start:start + 48000], most_lag_s=0.5)
        seconds.append(round(piece, 2))
    sequences = sorted(received.packets)
    silence = sum(p == SILENCE for p in received.packets.values())
    gaps = np.diff(np.array(arrivals)) if len(arrivals) > 1 else np.zeros(1)
    return (f"similarity {similarity:.3f} at lag {lag_s:.2f} s; heard {len(heard) / 48000:.2f} s, said "
            f"{len(said) / 48000:.2f} s; per second: {seconds}; packets {len(sequences)} (sequence "
            f"{sequences[0]}..{sequences[-1]}, silence {silence}); "
            f"arrival gaps ms: p50 {1000 * np.median(gaps):.1f}, max {1000 * gaps.max():.1f}, "
            f"over 60 ms {(gaps > 0.06).sum()}, under 5 ms {(gaps < 0.005).sum()}")


def test_an_answer_is_spoken_in_the_voice_channel_end_to_end_encrypted(tmp_path, llm_server, voice_emulator):
    emulator = voice_emulator
    env = voice_env(tmp_path, llm_server, emulator)
    bot = Bot(env, emulator).start()
    try:
        alice, bob = emulator.user("Alice"), emulator.user("Bob")
        # Someone not in voice cannot bring Parley there.
        assert "Join a voice channel first" in command(emulator, bob, "!join")["content"]
        emulator.user_joins_voice(alice, emulator.lounge)
        assert "Joined 🔊 Lounge" in command(emulator, alice, "!join")["content"]
        assert str(emulator.voice_requests[-1]["channel_id"]) == emulator.lounge

        llm_server.script.append(Scripted(text=ANSWER))
        asked = emulator.user_says(emulator.general, alice, "how do you speak?", mention_bot=True)
        finished = wait_event(env, "PlaybackFinished", utterance_id=asked["id"])
        assert emulator.replies_to(asked)[0]["content"] == ANSWER  # written as well as spoken

        log = events(env)
        kinds = [e["type"] for e in log if e["type"] in ("VoiceChannelJoined", "PlaybackStarted", "SpeechSynthesized",
                                                           "PlaybackFinished")]
        assert kinds == ["VoiceChannelJoined", "PlaybackStarted", "SpeechSynthesized", "PlaybackFinished"]
        synthesized = next(e["data"] for e in log if e["type"] == "SpeechSynthesized")
        assert synthesized["sentences"] == 4 and synthesized["message_id"] == asked["id"]
        assert finished["data"]["guild_id"] == emulator.guild_id

        # What reached the listener: sealed for the transport, then DAVE-encrypted; decoded, it is the speech.
        received = emulator.voice.audio(int(emulator.bot["id"]))  # type: ignore[union-attr]
        assert received.rejected == 0 and received.e2ee > 100 and received.e2ee >= 10 * received.plain
        # only audio: discord.py's Ogg reader would send the Ogg Opus header packets as the first two frames
        assert not [p for p in received.packets.values() if p.startswith((b"OpusHead", b"OpusTags"))]
        heard = np.frombuffer(decode_opus(received.opus(), ffmpeg_binary()), dtype="<i2").astype(np.float64)
        with wave.open(str(tmp_path / "data" / "speech" / f"{synthesized['audio_hash']}.wav")) as w:
            rate, said = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        said_48k = np.interp(np.arange(0, len(said), rate / 48000), np.arange(len(said)), said)
        assert abs(len(heard) / 48000 - synthesized["duration_s"]) <= 0.05 * synthesized["duration_s"]
        similarity, lag_s = correlation(heard, said_48k)
        assert similarity > 0.6, heard_report(heard, said_48k, similarity, lag_s, received, emulator.voice.received_at)

        # Voice off: written only. Voice on again.
        assert "only write" in command(emulator, alice, "!voice off")["content"]
        asked2 = emulator.user_says(emulator.general, alice, "and now?", mention_bot=True)
        # Sent, not merely drafted: the answer was complete (and offered to the Speaker) before voice is on again.
        wait_event(env, "ReplySent", message_id=asked2["id"])
        assert "speak my answers" in command(emulator, alice, "!voice on")["content"]
        assert not [e for e in events(env, "PlaybackStarted") if e["data"]["utterance_id"] == asked2["id"]]

        # Skip what is said now; then stop clears the queue too.
        llm_server.script.extend([Scripted(text=LONG_ANSWER)] * 3)
        first = emulator.user_says(emulator.general, alice, "say a lot", mention_bot=True)
        wait_event(env, "PlaybackStarted", utterance_id=first["id"])
        assert command(emulator, alice, "!skip")["content"] == "Skipped."
        assert wait_event(env, "PlaybackInterrupted", utterance_id=first["id"])["data"]["reason"] == "skip"
        second = emulator.user_says(emulator.general, alice, "say more", mention_bot=True)
        wait_event(env, "PlaybackStarted", utterance_id=second["id"])
        # Asked only now: two questions at once are answered in parallel, in either order.
        third = emulator.user_says(emulator.general, alice, "and more", mention_bot=True)
        wait_event(env, "ReplySent", message_id=third["id"])  # complete, so queued behind the second
        # A join from another channel while Parley speaks is refused, not obeyed.
        carol = emulator.user("Carol")
        emulator.user_joins_voice(carol, emulator.studio)
        assert "speaking in 🔊 Lounge" in command(emulator, carol, "!join")["content"]
        assert "Stopped" in command(emulator, alice, "!stop")["content"]
        assert wait_event(env, "PlaybackInterrupted", utterance_id=second["id"])["data"]["reason"] == "stop"
        assert wait_event(env, "PlaybackInterrupted", utterance_id=third["id"])["data"]["reason"] == "stop"
        assert command(emulator, alice, "!skip")["content"] == "Nothing is playing."

        # Kicked mid-sentence: the playback ends as interrupted, the channel as left; nothing hangs.
        llm_server.script.append(Scripted(text=LONG_ANSWER))
        fourth = emulator.user_says(emulator.general, alice, "one more", mention_bot=True)
        wait_event(env, "PlaybackStarted", utterance_id=fourth["id"])
        emulator.kick_bot_from_voice()
        assert wait_event(env, "PlaybackInterrupted", utterance_id=fourth["id"])["data"]["reason"] == "disconnect"
        assert wait_event(env, "VoiceChannelLeft")["data"]["reason"] == "disconnected"
        assert command(emulator, alice, "!leave")["content"] == "I'm not in a voice channel."
        assert "Joined 🔊 Lounge" in command(emulator, alice, "!join")["content"]  # and it can come back
        # ... and speaks to the end there: the kick's reason is not carried over to the next answer.
        again = emulator.user_says(emulator.general, alice, "are you back?", mention_bot=True)
        wait_event(env, "PlaybackFinished", utterance_id=again["id"])
        command(emulator, alice, "!leave")  # while silent
        assert "Joined 🔊 Lounge" in command(emulator, alice, "!join")["content"]
        last = emulator.user_says(emulator.general, alice, "and now?", mention_bot=True)
        wait_event(env, "PlaybackFinished", utterance_id=last["id"])
    finally:
        stderr = bot.stop()
    assert "Traceback" not in stderr, stderr[-3000:]


def in_the_lounge(tmp_path: Path, llm_server, emulator: DiscordEmulator,
                  **settings: str) -> tuple[dict[str, str], dict, Bot]:
    """The bot, joined in the Lounge by Alice, who is there."""
    env = voice_env(tmp_path, llm_server, emulator, **settings)
    alice = emulator.user("Alice")
    emulator.user_joins_voice(alice, emulator.lounge)
    bot = Bot(env, emulator).start()
    try:
        assert "Joined 🔊 Lounge" in command(emulator, alice, "!join")["content"]
    except BaseException:
        bot.stop()
        raise
    return env, alice, bot


def test_after_a_restart_it_rejoins_and_it_leaves_when_idle(tmp_path, llm_server, voice_emulator):
    emulator = voice_emulator
    env, _, bot = in_the_lounge(tmp_path, llm_server, emulator, PARLEY_VOICE_IDLE_S="3")
    try:
        bot.kill()
        bot.start()
        rejoined = wait_event(env, "VoiceChannelJoined", reason="rejoined")
        assert rejoined["data"]["voice_channel_id"] == emulator.lounge
        wait_for(lambda: emulator.voice_states.get(emulator.bot["id"]) == emulator.lounge, what="back in voice")
        left = wait_event(env, "VoiceChannelLeft", timeout=30)
        assert left["data"]["reason"] == "idle"
        wait_for(lambda: emulator.voice_states.get(emulator.bot["id"]) is None, what="out of voice")
    finally:
        bot.stop()


@pytest.mark.timeout(240)
def test_a_voice_outage_longer_than_the_reconnect_bound_is_a_leave_then_a_return_and_it_speaks_again(
        tmp_path, llm_server, voice_emulator):
    emulator, voice = voice_emulator, voice_emulator.voice
    # a dropped voice connection not back in 2 s is recorded as Parley leaving
    env, alice, bot = in_the_lounge(tmp_path, llm_server, emulator, PARLEY_VOICE_RECONNECT_S="2")
    try:
        llm_server.script.append(Scripted(text=LONG_ANSWER))
        long = emulator.user_says(emulator.general, alice, "say a lot", mention_bot=True)
        wait_event(env, "PlaybackStarted", utterance_id=long["id"])
        # While Parley speaks, the voice server drops the connection and closes every new one for 6 s. discord.py
        # tries again after 1, 3 and 5 s (and its player, woken by the first failed try, gives up on the answer
        # without ending it), and gets in on its fourth try.
        voice.down_until = time.monotonic() + 6
        voice.run_soon(voice.close_all(4006)).result(10)
        assert wait_event(env, "VoiceChannelLeft", timeout=30)["data"]["reason"] == "disconnected"
        assert wait_event(env, "PlaybackInterrupted", utterance_id=long["id"])["data"]["reason"] == "disconnect"
        back = wait_event(env, "VoiceChannelJoined", reason="reconnected", timeout=30)
        assert back["data"]["voice_channel_id"] == emulator.lounge
        asked = emulator.user_says(emulator.general, alice, "are you still here?", mention_bot=True)
        # Spoken: the Speaker knows it is in the channel, and the player given up on is not in the way.
        try:
            wait_event(env, "PlaybackFinished", utterance_id=asked["id"])
        except AssertionError:
            raise AssertionError(f"the answer was not spoken; bot: {bot.log()[-3000:]}")

        # Away for 27 s: one of discord.py's reconnects (begun up to 4 s after this second drop) times out (20 s),
        # and then it leaves the channel by itself (discord.py 2.7) as if for good. Parley joins again once the
        # server is back, and speaks there.
        voice.down_until = time.monotonic() + 27
        voice.run_soon(voice.close_all(4006)).result(10)

        def reconnected() -> list[dict]:
            return events(env, "VoiceChannelJoined") if len(events(env, "VoiceChannelJoined")) >= 3 else []
        assert wait_for(reconnected, timeout=90, what="back after the long outage")[-1]["data"]["reason"] == "reconnected"
        assert "gave up reconnecting" in bot.log()  # it was discord.py's give-up that Parley recovered from
        again = emulator.user_says(emulator.general, alice, "and now?", mention_bot=True)
        wait_event(env, "PlaybackFinished", utterance_id=again["id"])

        assert "Left" in command(emulator, alice, "!leave")["content"]
        assert [e["data"]["reason"] for e in events(env, "VoiceChannelJoined", "VoiceChannelLeft")] == [
            "command", "disconnected", "reconnected", "disconnected", "reconnected", "command"]  # never "rejoined":
        # this process did not restart
    finally:
        stderr = bot.stop()
    assert "Traceback" not in stderr, stderr[-3000:]


def test_a_voice_server_that_answers_only_after_discord_py_stopped_waiting_gets_a_fresh_connection(
        tmp_path, llm_server, voice_emulator):
    emulator, voice = voice_emulator, voice_emulator.voice
    # a dropped voice connection not back in 2 s is recorded as Parley leaving
    env, alice, bot = in_the_lounge(tmp_path, llm_server, emulator, PARLEY_VOICE_RECONNECT_S="2")
    try:
        # The connection drops, and the server answers the next IDENTIFY only after 24 s: past discord.py's 20 s
        # reconnect (begun up to 2 s after the drop), which then stays on that socket, never counted as connected
        # (discord.py 2.7).
        voice.slow_until = time.monotonic() + 24
        voice.run_soon(voice.close_all(4006)).result(10)
        assert wait_event(env, "VoiceChannelLeft", timeout=30)["data"]["reason"] == "disconnected"
        back = wait_event(env, "VoiceChannelJoined", reason="reconnected", timeout=60)
        assert back["data"]["voice_channel_id"] == emulator.lounge
        assert "stuck half-made" in bot.log() and "slow" in voice.events
        asked = emulator.user_says(emulator.general, alice, "are you back?", mention_bot=True)
        wait_event(env, "PlaybackFinished", utterance_id=asked["id"])
    finally:
        stderr = bot.stop()
    assert "Traceback" not in stderr, stderr[-3000:]
