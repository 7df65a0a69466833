"""Transcription speed: Parley's speech path vs bare Vosk on the same 20 s clip, in the same run.

    python bench/transcribe.py [--seconds 20] [--model PATH]

The clip is the test recording repeated to the length asked, as a 16 kHz mono WAV (what bare Vosk's
example reads) and as Ogg Opus (what a Discord voice message is). Baseline: Vosk's own example loop on
the WAV, on the same loaded model. Reported: Parley/bare time on the WAV and on the Ogg (decoded by
ffmpeg as it streams) (target <= 1.1), the speed-up of 2 clips transcribed in parallel over 2 in a row
(target >= 1.6 on 2 cores; Vosk releases the GIL), the real-time factor, and peak RSS with the model
loaded. Every timing is the best of 3, after a warm-up decode. (Transcripts are not compared here: on a
model that has decoded before, Vosk's results vary by a word now and then; the tests compare Parley with
bare Vosk fresh process against fresh process, where they are repeatable.)
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import tempfile
import threading
import time
import wave
from pathlib import Path

from common import ROOT, best, report

from adapters.speech import VoskEngine, default_model_path, ffmpeg_binary

CLIP = ROOT / "tests" / "audio" / "hello-ko-16k.wav"


def make_clips(folder: Path, seconds: float) -> tuple[Path, Path]:
    with wave.open(str(CLIP), "rb") as w:
        frames = w.readframes(w.getnframes())
    need = int(seconds * 16000 * 2)
    pcm = (frames * (need // len(frames) + 1))[:need]
    wav = folder / "clip.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(pcm)
    ogg = folder / "clip.ogg"
    subprocess.run([ffmpeg_binary(), "-v", "error", "-y", "-i", str(wav), "-ac", "1", "-ar", "48000", "-c:a", "libopus",
                    "-b:a", "24k", str(ogg)], check=True)
    return wav, ogg


def bare_vosk(model, path: Path) -> str:  # noqa: ANN001
    from vosk import KaldiRecognizer

    wf = wave.open(str(path), "rb")
    rec = KaldiRecognizer(model, wf.getframerate())
    rec.SetWords(True)
    while True:
        data = wf.readframes(4000)
        if len(data) == 0:
            break
        rec.AcceptWaveform(data)
    return json.loads(rec.FinalResult())["text"]



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--model", type=Path, default=default_model_path())
    args = parser.parse_args()
    engine = VoskEngine(args.model, max_seconds=3600)
    start = time.perf_counter()
    model = engine.model()
    load_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        wav, ogg = make_clips(Path(folder), args.seconds)
        engine.transcribe(str(wav))  # warm-up
        bare_s = best(lambda: bare_vosk(model, wav))
        wav_s = best(lambda: engine.transcribe(str(wav)))
        ogg_s = best(lambda: engine.transcribe(str(ogg)))
        one_after_other = best(lambda: (engine.transcribe(str(ogg)), engine.transcribe(str(ogg))), runs=2)

        def parallel() -> None:
            workers = [threading.Thread(target=engine.transcribe, args=(str(ogg),)) for _ in range(2)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        parallel_s = best(parallel, runs=2)
    report("transcribe", {
        "clip_s": args.seconds, "model": engine.model_name, "model_load_s": round(load_s, 2),
        "bare_vosk_wav_s": round(bare_s, 3), "parley_wav_s": round(wav_s, 3), "parley_ogg_s": round(ogg_s, 3),
        "ratio_wav": round(wav_s / bare_s, 3), "ratio_ogg": round(ogg_s / bare_s, 3), "target_ratio": 1.1,
        "real_time_factor": round(ogg_s / args.seconds, 3),
        "two_clips_in_a_row_s": round(one_after_other, 3), "two_clips_in_parallel_s": round(parallel_s, 3),
        "parallel_speedup": round(one_after_other / parallel_s, 3), "target_speedup": 1.6,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    })


if __name__ == "__main__":
    main()
