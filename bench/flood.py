"""Fair share: another person's answer latency while one member floods Parley with text and audio, against the
same person's latency with Parley idle, measured in one run on the real bot (a process of its own) through the
Discord emulator, with an OpenAI-compatible server that answers one request at a time (one slot, as a local
model has), taking ``--answer-s`` to start each answer, and the real Vosk model (issue 30).

    python bench/flood.py [--mentions 300] [--clips 30] [--answer-s 0.2] [--questions 6]

For each configuration (the defaults; and the rate limit off, ``PARLEY_RATE_LIMIT=0``, for comparison), Alice
asks ``--questions`` questions one after another with Parley idle, then again while Mallory posts
``--mentions`` mentions in a burst and ``--clips`` audio files of an hour of silence each. Reported: Alice's
p50 and worst latency (post to final answer) idle and flooded, ``flooded_over_idle`` (goal <= 2), how many
LLM requests and transcriptions Mallory's flood caused, and how many of her mentions got an answer.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from common import ROOT, percentile, report
from load import start_bots, stop_bots, wait

from adapters.config import Settings
from adapters.speech import default_model_path, ffmpeg_binary
from tests.fakes.discord_server import DiscordEmulator
from tests.fakes.openai_server import FakeOpenAI


def an_hour_of_silence(folder: Path) -> bytes:
    path = folder / "silence.ogg"
    subprocess.run([ffmpeg_binary(), "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "3600",
                    "-c:a", "libopus", "-b:a", "6k", str(path)], check=True)
    return path.read_bytes()


def alice_asks(emulator: DiscordEmulator, channel: str, alice: dict, n: int, tag: str) -> list[float]:
    latencies = []
    for i in range(n):
        text = f"{tag} question {i} from Alice"
        message = emulator.user_says(channel, alice, text, mention_bot=True)
        posted = time.monotonic()
        expected = f"echo: {text} [turns=1]"
        wait(lambda: emulator.answered_at.get(message["id"], (0, ""))[1] == expected, 600, "Alice's answer")
        latencies.append(emulator.answered_at[message["id"]][0] - posted)
    return latencies


def measure(name: str, extra: dict[str, str], args: argparse.Namespace, silence: bytes) -> dict:
    with FakeOpenAI() as llm, DiscordEmulator() as emulator, tempfile.TemporaryDirectory() as tmp:
        llm.answer_delay, llm.one_at_a_time = args.answer_s, True  # one slot, as a local model or a small GPU has
        mallory, alice = emulator.user("Mallory"), emulator.user("Alice")
        spam, quiet = emulator.text_channel("spam"), emulator.text_channel("quiet")
        bots = start_bots(emulator, llm, Path(tmp), None, 0,
                          {"VOSK_MODEL_PATH": str(default_model_path()), "PARLEY_TRANSCRIBERS": "2", **extra})
        try:
            alice_asks(emulator, quiet, alice, 1, "warm-up")
            idle = alice_asks(emulator, quiet, alice, args.questions, "idle")
            before_requests = len(llm.requests)
            posted = [emulator.user_says(spam, mallory, f"flood {i}", mention_bot=True) for i in range(args.mentions)]
            for i in range(args.clips):
                clip = emulator.attachment(f"clip{i}.ogg", silence, "audio/ogg")
                posted.append(emulator.user_says(spam, mallory, "listen", mention_bot=True, attachments=[clip]))
            flooded = alice_asks(emulator, quiet, alice, args.questions, "flooded")
            mallory_requests = sum(1 for r in llm.requests[before_requests:]
                                   if r["messages"][-1]["content"].startswith(("flood", "listen")))
            time.sleep(2)  # what is still on its way: Mallory's refusals
            answered = sum(1 for m in posted if any(r["content"].startswith("echo:") for r in emulator.replies_to(m)))
            refused = sum(1 for m in posted if any("wait a minute" in r["content"] for r in emulator.replies_to(m)))
        finally:
            stop_bots(bots)
    return {"idle_p50_s": round(percentile(idle, 50), 3), "idle_max_s": round(max(idle), 3),
            "flooded_p50_s": round(percentile(flooded, 50), 3), "flooded_max_s": round(max(flooded), 3),
            "flooded_over_idle": round(percentile(flooded, 50) / percentile(idle, 50), 2),
            "mallory_llm_requests_while_alice_asked": mallory_requests,
            "mallory_posts_answered_by_then": answered, "mallory_told_to_wait": refused,
            "mallory_clips_downloaded": emulator.downloads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mentions", type=int, default=300)
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("--answer-s", type=float, default=0.2, help="seconds the LLM server takes to start an answer")
    parser.add_argument("--questions", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        silence = an_hour_of_silence(Path(tmp))
    default_limit = str(Settings(data_dir=Path(".")).rate_limit)
    results = {"defaults": measure("defaults", {"PARLEY_RATE_LIMIT": default_limit}, args, silence),
               "rate_limit_off": measure("rate_limit_off", {"PARLEY_RATE_LIMIT": "0"}, args, silence)}
    report("flood", {"mentions": args.mentions, "clips": args.clips, "clip_bytes": len(silence),
                     "answer_s": args.answer_s, "cpus": os.cpu_count(), **results})


if __name__ == "__main__":
    main()
