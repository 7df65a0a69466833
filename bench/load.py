"""The whole system under load: a burst of mentions through the Discord test server, answered by the bot
running as real processes with an instant LLM server, on SQLite, on PostgreSQL, and on PostgreSQL split
into two shard processes (issue 16).

    python bench/load.py [--messages 300] [--rounds 2] [--only sqlite,postgresql,postgresql_2_shards]

Each configuration gets a fresh store; the mentions are spread over two guilds (one per shard) and each
starts its own conversation. msgs/s = messages / (last final answer - first post); latency = from a
message's post to its answer's final text. The ratio PostgreSQL/SQLite compares the two stores measured
in the same run on the same machine (target >= 0.8). Needs PostgreSQL at PARLEY_TEST_POSTGRES (default
postgresql://postgres@127.0.0.1:5432/test).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import ROOT, percentile, report

from tests.conftest import MACHINE_POSTGRES, parley_env, with_query
from tests.fakes.discord_server import BOT_TOKEN, DiscordEmulator
from tests.fakes.openai_server import FakeOpenAI

CONFIGS = {"sqlite": (None, 0), "postgresql": ("postgresql", 0), "postgresql_2_shards": ("postgresql", 2)}


def wait(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise SystemExit(f"load bench: timed out waiting for {what}")


def start_bots(emulator: DiscordEmulator, llm: FakeOpenAI, data: Path, store: str | None,
               shards: int, settings: dict[str, str] | None = None) -> list[subprocess.Popen]:
    processes = []
    for shard in range(max(1, shards)):
        extra = {"PARLEY_EVENT_STORE": store} if store else {}
        if shards:
            extra |= {"PARLEY_SHARD_COUNT": str(shards), "PARLEY_SHARD_IDS": str(shard)}
        env = parley_env(data / f"shard{shard}", llm, DISCORD_TOKEN=BOT_TOKEN, DISCORD_API_BASE=emulator.api_base,
                         DISCORD_GATEWAY_URL=emulator.gateway_url, PARLEY_STREAM_EDIT_INTERVAL="1.0",
                         PARLEY_TRANSCRIBERS="1", PARLEY_MAX_WAITING="0",  # every one answered
                         PARLEY_RATE_LIMIT="0", **extra)  # 8 people send ~40 each: throughput, not a flood
        env.update(settings or {})
        if not store:
            env["PARLEY_DATA_DIR"] = str(data / "shared")
        before = len(emulator.identifies)
        command = [sys.executable, str(ROOT / "run.py")]
        if os.environ.get("PARLEY_BENCH_PROFILE"):  # a folder: py-spy samples each bot process into it
            command = ["py-spy", "record", "-r", "200", "-f", "raw", "-o",
                       f"{os.environ['PARLEY_BENCH_PROFILE']}/{store and 'pg' or 'sqlite'}-{shard}.txt", "--", *command]
        processes.append(subprocess.Popen(command, env=env, cwd=ROOT,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait(lambda: len(emulator.identifies) > before, 60, "the bot to identify")
    return processes


def stop_bots(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        p.send_signal(signal.SIGINT if os.environ.get("PARLEY_BENCH_PROFILE") else signal.SIGTERM)
    for p in processes:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def burst(emulator: DiscordEmulator, channels: list[str], n: int, tag: str) -> dict:
    people = [emulator.user(f"Person{i}") for i in range(8)]
    posted: list[tuple[dict, float, str]] = []
    for i in range(n):
        text = f"{tag} question {i}"
        message = emulator.user_says(channels[i % len(channels)], people[i % len(people)], text, mention_bot=True)
        posted.append((message, time.monotonic(), f"echo: {text} [turns=1]"))

    def answered(message: dict, expected: str) -> float | None:
        at = emulator.answered_at.get(message["id"])
        return at[0] if at is not None and at[1] == expected else None

    wait(lambda: all(answered(m, e) for m, _, e in posted), 300, f"{n} answers")
    latencies = [answered(m, e) - t for m, t, e in posted]  # type: ignore[operator]
    elapsed = max(answered(m, e) for m, _, e in posted) - posted[0][1]  # type: ignore[type-var,operator]
    return {"msgs_per_s": round(n / elapsed, 1), "p50_s": round(percentile(latencies, 50), 3),
            "p99_s": round(percentile(latencies, 99), 3)}


def measure(name: str, n: int, rounds: int) -> dict:
    kind, shards = CONFIGS[name]
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    store = with_query(MACHINE_POSTGRES, schema=schema) if kind == "postgresql" else None
    with FakeOpenAI() as llm, DiscordEmulator() as emulator, tempfile.TemporaryDirectory() as tmp:
        channels = [emulator.text_channel("general", emulator.add_guild(f"Guild {s}", shard=s, shard_count=2))
                    for s in (0, 1)]
        bots = start_bots(emulator, llm, Path(tmp), store, shards)
        try:
            warm = [emulator.user_says(c, emulator.owner, "warm up", mention_bot=True) for c in channels]
            wait(lambda: all(m["id"] in emulator.answered_at for m in warm), 60, "the warm-up answers")
            runs = [burst(emulator, channels, n, f"r{r}") for r in range(rounds)]
        finally:
            stop_bots(bots)
            if store:
                import psycopg

                with psycopg.connect(MACHINE_POSTGRES, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    best = max(runs, key=lambda r: r["msgs_per_s"])
    return best | {"runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, help="bursts per configuration (the best is reported)")
    parser.add_argument("--only", default=",".join(CONFIGS))
    args = parser.parse_args()
    results = {name: measure(name, args.messages, args.rounds) for name in args.only.split(",")}
    if "sqlite" in results and "postgresql" in results:
        results["postgresql_over_sqlite"] = round(results["postgresql"]["msgs_per_s"] / results["sqlite"]["msgs_per_s"], 2)
    if "sqlite" in results and "postgresql_2_shards" in results:
        results["two_shards_over_sqlite"] = round(
            results["postgresql_2_shards"]["msgs_per_s"] / results["sqlite"]["msgs_per_s"], 2)
    report("load", {"messages": args.messages, "cpus": os.cpu_count(), **results})


if __name__ == "__main__":
    main()
