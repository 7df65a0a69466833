"""Turn-taking (issue 27): how often a pause mid-sentence is taken for the end of a turn (an answer to half a
sentence), and how much later a finished question is answered for it.

    python bench/turns.py [--pauses 0.4,0.7,1.0] [--takes 3]

The clips: ``tests/speech_clips.py``'s sentences left open ("I went to the store and" ... "bought some milk") and
finished questions, said by the real Piper voice (``--takes`` times each: Piper's voice varies from one take to the
next, and the model's judgement with it); and the Korean test sentence (espeak-ng) cut after its first
word, whole. Each way of judging a pause is run on every clip, at every pause length:

- ``before``: every pause ends the turn (Parley until now: 0.1 s after the client's silence frames);
- ``model``: smart-turn v3 alone, on the audio up to the pause;
- ``words``: the last word alone (English list; the clip's own words stand in for an English Vosk model's, which
  this machine does not have: the Korean model hears English as other words);
- ``model+words``: both, as Parley runs (``actors.listening.turns.judge_pause``).

A pause mid-sentence is cut when the judged wait is shorter than the pause; a finished question's extra delay is
the wait plus the model's time. Baseline in the same run: the model's raw ONNX inference on the same audio.
``by_sure``: ``model+words`` with other values of ``TurnRules.sure`` (the probability from which a turn is over at
once; between ``threshold`` and it, the turn is over after ``unsure_wait_s`` without more speech).
"""
from __future__ import annotations

import argparse
import time
import wave

from common import percentile, report

from actors.listening.turns import TurnRules, judge_pause
from adapters.turn_model import SmartTurn
from tests.speech_clips import FINISHED, MID_TURN, _engine, said
from tests.test_hearing import WAV


def korean_clips() -> tuple[bytes, bytes]:
    """The espeak-ng Korean sentence whole, and cut after its first word (at its first 0.15 s of quiet)."""
    with wave.open(str(WAV)) as w:
        pcm = w.readframes(w.getnframes())
    import numpy as np

    samples = np.abs(np.frombuffer(pcm, "<i2").astype(np.int32))
    frames = samples[: len(samples) // 320 * 320].reshape(-1, 320).max(axis=1)  # 20 ms peaks
    quiet = 0
    for n, peak in enumerate(frames):
        quiet = quiet + 1 if peak < 500 and n > 10 else 0
        if quiet >= 8:
            return pcm, pcm[: (n - quiet + 1) * 640]
    return pcm, pcm[: len(pcm) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pauses", default="0.4,0.7,1.0", help="pause lengths mid-sentence, seconds")
    parser.add_argument("--takes", type=int, default=3, help="takes of each Piper clip")
    args = parser.parse_args()
    pauses = [float(p) for p in args.pauses.split(",")]
    rules, model = TurnRules(), SmartTurn()
    model.load()
    korean_whole, korean_open = korean_clips()
    # (audio up to the pause, its words, whether the turn is over)
    def takes(text: str) -> list[bytes]:
        return [said(text, take) for take in range(args.takes)]

    _engine()
    clips = [(pcm, first, False) for first, _ in MID_TURN for pcm in takes(first)] + [(korean_open, "", False)]
    clips += [(pcm, q, True) for q in FINISHED for pcm in takes(q)] + [(korean_whole, "", True)]
    probabilities, inference = [], []
    for pcm, _, _ in clips:
        started = time.perf_counter()
        probabilities.append(model.complete(pcm))
        inference.append(time.perf_counter() - started)
    raw = []  # the baseline: the ONNX session alone on features computed beforehand
    import numpy as np

    features = model._features.compute_whisper_log_mel_features(np.zeros(128000, np.float32), do_normalize=True)[None]
    for _ in range(len(clips)):
        started = time.perf_counter()
        model._session.run(None, {"input_features": features})
        raw.append(time.perf_counter() - started)

    def judge(way: str, words: str, probability: float, rules: TurnRules) -> float:
        if way == "before":
            return 0.0
        language = "en" if way != "model" and words else ""
        return judge_pause(rules, words or "x", probability if way != "words" else None, language).wait_s

    def rates(way: str, rules: TurnRules) -> dict:
        cuts = trials = 0
        delays = []
        for (pcm, words, finished), probability, took in zip(clips, probabilities, inference):
            wait = judge(way, words, probability, rules)
            if finished:
                delays.append(wait + (took if way.startswith("model") else 0.0))
            else:
                for pause in pauses:
                    trials += 1
                    cuts += wait < pause
        return {"false_end_of_turn_rate": round(cuts / trials, 3),
                "finished_extra_delay_s": {"p50": round(percentile(delays, 50), 3),
                                           "p90": round(percentile(delays, 90), 3),
                                           "mean": round(sum(delays) / len(delays), 3)}}

    results = {way: rates(way, rules) for way in ("before", "model", "words", "model+words")}
    from dataclasses import replace

    results["by_sure"] = {str(sure): rates("model+words", replace(rules, sure=sure))
                          for sure in (0.5, 0.6, 0.7, 0.8, 0.9)}
    report("turns", {
        "clips": {"mid_sentence": sum(not c[2] for c in clips), "finished": sum(c[2] for c in clips),
                  "pauses_s": pauses},
        "rules": {"max_wait_s": rules.max_wait_s, "sure": rules.sure, "threshold": rules.threshold,
                  "unsure_wait_s": rules.unsure_wait_s},
        "probability": {"mid_sentence": [round(p, 2) for p, c in zip(probabilities, clips) if not c[2]],
                        "finished": [round(p, 2) for p, c in zip(probabilities, clips) if c[2]]},
        "model_s": {"p50": round(percentile(inference, 50), 4), "p90": round(percentile(inference, 90), 4)},
        "baseline_raw_onnx_s": {"p50": round(percentile(raw, 50), 4)},
        **results})


if __name__ == "__main__":
    main()
