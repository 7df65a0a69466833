"""The text pipeline: latency from command to ReplySent, and messages/s, with an instant LLM server.

    python bench/text_pipeline.py [--messages 300] [--burst 1000]

Baseline, measured in the same run against the same local server: the bare ``openai`` client
making the same chat request (streamed, with the same ``max_tokens``, as Parley always sends it). Overhead = pipeline latency - bare latency, at p50 and p99
(target: p99 overhead <= 20 ms). Each message is its own conversation, so both send the same prompt.
"""
from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import openai
from common import percentile, report

from actors.commands import ReceiveMessage
from actors.ports import Delivered
from adapters.config import DEFAULT_SYSTEM_PROMPT, Settings
from run import build
from tests.fakes.openai_server import FakeOpenAI


class InstantTransport:
    """Confirms every reply at once, as a transport with no network cost would."""

    wants_drafts = False

    def deliver(self, reply, done):
        done(Delivered((f"sent-{reply.message_id}",)))

    def draft(self, draft):
        pass


def message(n: int) -> ReceiveMessage:
    return ReceiveMessage(source="bench", conversation_id=f"bench:{n}", channel_id="c", message_id=f"m{n}",
                          author_id="u", author_name="Bench", text=f"question number {n}")


def bare_answer(client: openai.OpenAI, prompt: list[dict]) -> str:
    """The bare client making the request Parley makes: streamed, with the same token cap."""
    stream = client.chat.completions.create(model="bench-model", messages=prompt, stream=True,  # type: ignore[arg-type]
                                            max_tokens=1000)
    with stream:
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def bare(server: FakeOpenAI, n: int) -> list[float]:
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    latencies = []
    for i in range(n):
        prompt = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": f"question number {i}"}]
        start = time.perf_counter()
        bare_answer(client, prompt)
        latencies.append(time.perf_counter() - start)
    return latencies


def bare_burst(server: FakeOpenAI, n: int, threads: int) -> float:
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    counter = iter(range(n))
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            bare_answer(client, [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
                                 {"role": "user", "content": f"question number {i}"}])

    start = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return n / (time.perf_counter() - start)


def pipeline(server: FakeOpenAI, n: int, burst: int, folder: Path) -> tuple[list[float], float]:
    settings = Settings(data_dir=folder, openai_base_url=server.base_url, openai_api_key="k",
                        chat_model="bench-model", llm_retries=0, max_waiting=0)  # a burst, all to be answered
    system = build(settings, {"bench": InstantTransport()})
    sent: dict[str, float] = {}
    arrived = threading.Condition()

    def on_sent(recorded):
        with arrived:
            sent[recorded.event.message_id] = time.perf_counter()
            arrived.notify_all()

    system.router.subscribe(on_sent, "ReplySent")
    try:
        latencies = []
        for i in range(n):
            start = time.perf_counter()
            system.router.dispatch(message(i))
            with arrived:
                arrived.wait_for(lambda: f"m{i}" in sent, timeout=30)
            latencies.append(sent[f"m{i}"] - start)
        start = time.perf_counter()
        for i in range(n, n + burst):
            system.router.dispatch(message(i))
        with arrived:
            arrived.wait_for(lambda: len(sent) == n + burst, timeout=120)
        rate = burst / (time.perf_counter() - start)
    finally:
        system.stop()
    return latencies, rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--burst", type=int, default=1000)
    args = parser.parse_args()
    with FakeOpenAI() as server, tempfile.TemporaryDirectory() as folder:
        bare(server, 20)  # warm up the server and the client
        baseline = bare(server, args.messages)
        ours, rate = pipeline(server, args.messages, args.burst, Path(folder))
        bare_rate = bare_burst(server, args.burst, threads=4)
    ms = lambda s: round(s * 1000, 2)  # noqa: E731
    p50, p99 = percentile(ours, 50), percentile(ours, 99)
    b50, b99 = percentile(baseline, 50), percentile(baseline, 99)
    report("text_pipeline", {
        "messages": args.messages,
        "pipeline_latency_ms": {"p50": ms(p50), "p99": ms(p99)},
        "bare_openai_latency_ms": {"p50": ms(b50), "p99": ms(b99)},
        "overhead_ms": {"p50": ms(p50 - b50), "p99": ms(p99 - b99)},
        "target_overhead_p99_ms": 20, "meets_target": (p99 - b99) * 1000 <= 20,
        "burst": {"messages": args.burst, "conversations": args.burst, "pipeline_messages_per_s": round(rate),
                  "bare_openai_calls_per_s_4_threads": round(bare_rate)},
    })


if __name__ == "__main__":
    main()
