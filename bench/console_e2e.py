"""The whole program answering piped console lines vs bare ``openai`` client calls.

    python bench/console_e2e.py [--lines 1000]

Parley: ``python run.py console`` with N lines on stdin and a fresh data dir (process start, store
creation, every event written, every answer printed). Baseline: a fresh Python process making the same
N chat requests with the bare ``openai`` client, with the same conversation context Parley sends
(system prompt and the last 20 turns), streamed with the same ``max_tokens`` as Parley's. Both talk to the same local instant server. Target: <= 1.5x.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time

from common import ROOT, report

from tests.fakes.openai_server import FakeOpenAI

BARE = textwrap.dedent("""
    import sys, openai
    from adapters.config import DEFAULT_SYSTEM_PROMPT
    from tests.fakes.openai_server import echo_reply
    client = openai.OpenAI(base_url=sys.argv[1], api_key="k", max_retries=0)
    turns = []
    for line in sys.stdin:
        turns.append({"role": "user", "content": line.rstrip("\\n")})
        messages = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}] + turns[-20:]
        stream = client.chat.completions.create(model="bench-model", messages=messages, stream=True, max_tokens=1000)
        with stream:
            answer = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        turns.append({"role": "assistant", "content": answer})
        print(answer)
""")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1000)
    args = parser.parse_args()
    lines = "".join(f"line {i}: tell me something about number {i}\n" for i in range(args.lines))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "DISCORD_", "OPENAI_"))}
    env["PYTHONPATH"] = str(ROOT)
    with FakeOpenAI() as server, tempfile.TemporaryDirectory() as data:
        env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="k", PARLEY_CHAT_MODEL="bench-model",
                   PARLEY_DATA_DIR=data, PARLEY_LLM_RETRIES="0")
        start = time.perf_counter()
        bare = subprocess.run([sys.executable, "-c", BARE, server.base_url], input=lines, env=env, cwd=ROOT,
                              capture_output=True, text=True, check=True)
        bare_s = time.perf_counter() - start
        start = time.perf_counter()
        ours = subprocess.run([sys.executable, str(ROOT / "run.py"), "console"], input=lines, env=env, cwd=ROOT,
                              capture_output=True, text=True, check=True)
        ours_s = time.perf_counter() - start
    answered = ours.stdout.splitlines()
    assert len(answered) == args.lines, ours.stderr[-2000:]
    assert answered == bare.stdout.splitlines(), "Parley and the bare client got different answers"
    report("console_e2e", {
        "lines": args.lines, "parley_s": round(ours_s, 3), "bare_openai_s": round(bare_s, 3),
        "ratio": round(ours_s / bare_s, 3), "target_ratio": 1.5, "meets_target": ours_s / bare_s <= 1.5,
        "parley_lines_per_s": round(args.lines / ours_s), "bare_lines_per_s": round(args.lines / bare_s),
    })


if __name__ == "__main__":
    main()
