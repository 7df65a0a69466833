"""Speech out: Parley's speaking path vs bare Piper on the same text, in the same run.

    python bench/speak.py

For a 4-sentence answer: time to the first 20 ms Discord frame vs the total synthesis time (target:
first frame <= 25% of the total, since Piper yields a sentence at a time), the real-time factor, and
Parley's path (what is spoken, synthesis, WAV; as ``say`` does) vs bare Piper's ``synthesize_wav`` on the
same text (target <= 1.1). Best of 3 after a warm-up.
"""
from __future__ import annotations

import io
import time
import wave

from common import best, report

from actors.speaking.actor import synthesize_wav
from actors.speaking.spoken import spoken_text
from adapters.audio_out import discord_frames
from adapters.piper_tts import PiperEngine, default_voice

ANSWER = ("Parley keeps every action as an event in an append-only log. It answers in text and in voice. "
          "Answers are spoken sentence by sentence, so playback starts early. Ask me anything you like!")



def main() -> None:
    engine = PiperEngine(default_voice())
    voice = engine.voice()
    synthesize_wav(engine, ANSWER)  # warm-up

    def first_frame() -> float:
        start = time.perf_counter()
        frames = discord_frames((c.pcm, c.sample_rate) for c in engine.synthesize(ANSWER))
        next(frames)
        first = time.perf_counter() - start
        for _ in frames:
            pass
        return first

    firsts, totals = [], []
    for _ in range(3):
        start = time.perf_counter()
        firsts.append(first_frame())
        totals.append(time.perf_counter() - start)
    wav, sentences, seconds = synthesize_wav(engine, ANSWER)

    def bare() -> None:
        with wave.open(io.BytesIO(), "wb") as w:
            voice.synthesize_wav(ANSWER, w)

    bare_s = best(bare)
    ours_s = best(lambda: synthesize_wav(engine, spoken_text(ANSWER)))
    report("speak", {
        "sentences": sentences, "speech_s": round(seconds, 2),
        "first_frame_s": round(min(firsts), 3), "total_synthesis_s": round(min(totals), 3),
        "first_frame_share": round(min(firsts) / min(totals), 3), "target_first_frame_share": 0.25,
        "real_time_factor": round(min(totals) / seconds, 3),
        "bare_piper_wav_s": round(bare_s, 3), "parley_say_s": round(ours_s, 3),
        "ratio": round(ours_s / bare_s, 3), "target_ratio": 1.1,
    })


if __name__ == "__main__":
    main()
