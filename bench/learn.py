"""Learning at scale: a 100,000-example dataset.

    python bench/learn.py [--examples 100000]

- export: the Trainer's path (the examples read from the log, SFT records, the JSONL written
  atomically) vs writing the same JSONL from a plain in-memory list; seconds and peak RSS, each in a
  fresh process so one does not inherit the other's memory.
- few-shot lookup: ``Datasets.similar`` (SQLite FTS5, BM25) on the 100,000 examples, p50/p99 over
  varied questions.
- catch-up: the datasets read model built from the log (examples per second) vs reading the same
  events raw from the SQLite file (sqlite3 + orjson, no projection).
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from common import ROOT, percentile, report

WORDS = [f"{a}{b}" for a in ("ro", "ka", "mi", "ze", "tu", "lo", "pa", "ni", "fe", "su") for b in
         ("ter", "mon", "dal", "vix", "run", "sel", "bor", "gan", "pim", "cot", "lek", "nu", "ras", "ti", "wo")]
BATCH = 1000


def example(i: int, rng: random.Random) -> dict:
    words = rng.sample(WORDS, 4)
    return {"prompt": f"How do I {words[0]} the {words[1]} {words[2]} number {i}?",
            "answer": f"Open the {words[3]} panel and choose {words[1]} {i}.", "positive": True}


def build_log(folder: Path, n: int) -> None:
    from events import open_store
    from events.catalog.learning import LEARNING_STREAM, DatasetCreated, DatasetUsed, ExamplesAdded

    rng = random.Random(7)
    store = open_store("sqlite", folder)
    try:
        store.append(LEARNING_STREAM, [DatasetCreated(dataset_id="bench", name="bench", by="bench"),
                                       DatasetUsed(dataset_id="bench", name="bench", channel="bench:channel", by="b")], 0)
        version = 2
        for start in range(0, n, BATCH):
            batch = tuple(example(i, rng) for i in range(start, min(n, start + BATCH)))
            store.append(LEARNING_STREAM, [ExamplesAdded(dataset_id="bench", examples=batch, duplicates=0,
                                                         author_id="bench", source="bench", message_id=str(start))],
                         version)
            version += 1
    finally:
        store.close()


def phase_export(folder: Path) -> dict:
    from actors.tuning.records import sft_records
    from actors.learning.shell import examples_of
    from adapters.learning_files import LearningFiles
    from events import open_store

    store = open_store("sqlite", folder, create=False)
    start = time.perf_counter()
    examples, _ = examples_of(store, "bench")
    written = LearningFiles(folder, 1).write_jsonl("exports/bench-sft.jsonl", sft_records(examples))
    seconds = time.perf_counter() - start
    store.close()
    return {"seconds": seconds, "records": written.records, "peak_rss_mb": _peak_mb()}


def phase_plain(folder: Path, n: int) -> dict:
    rng = random.Random(7)
    rows = [example(i, rng) for i in range(n)]  # what the dataset is, held in a plain list
    start = time.perf_counter()
    with open(folder / "plain.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"messages": [{"role": "user", "content": r["prompt"]},
                                             {"role": "assistant", "content": r["answer"]}]}, ensure_ascii=False) + "\n")
    return {"seconds": time.perf_counter() - start, "records": len(rows), "peak_rss_mb": _peak_mb()}


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def in_fresh_process(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout)


def catch_up_and_lookup(folder: Path, n: int) -> dict:
    from events import open_store
    from actors.learning.teaching import terms
    from projections.datasets import Datasets
    from projections.tracking import ProjectionRunner, SQLiteReadModels

    store = open_store("sqlite", folder, create=False)
    db = SQLiteReadModels(folder / "bench-read-models.sqlite3")
    datasets = Datasets(db)
    runner = ProjectionRunner(store, db, [datasets])
    start = time.perf_counter()
    events = runner.catch_up()
    projected = time.perf_counter() - start

    start = time.perf_counter()
    raw = sqlite3.connect(str(folder / "parley.sqlite3"))
    raw_examples = 0
    for (state,) in raw.execute("SELECT state FROM stored_events ORDER BY rowid"):
        raw_examples += len(orjson.loads(state)["data"].get("examples", ()))
    raw_seconds = time.perf_counter() - start
    raw.close()

    rng = random.Random(11)
    latencies, found = [], 0
    for _ in range(500):
        words = rng.sample(WORDS, 3)
        question = f"what should I do about the {words[0]} {words[1]} and {words[2]}?"
        start = time.perf_counter()
        found += bool(datasets.similar("operators", "bench:channel", terms(question), 4))  # the bench is an operator
        latencies.append((time.perf_counter() - start) * 1000)
    db.close()
    store.close()
    return {"catch_up_events": events, "catch_up_examples_per_s": round(n / projected),
            "raw_read_examples_per_s": round(raw_examples / raw_seconds),
            "catch_up_ratio": round(raw_seconds / projected, 3),
            "lookup_ms_p50": round(percentile(latencies, 50), 3), "lookup_ms_p99": round(percentile(latencies, 99), 3),
            "lookups_with_examples": found, "lookups": len(latencies)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--examples", type=int, default=100_000)
    p.add_argument("--phase", choices=("export", "plain"))
    p.add_argument("--dir", type=Path)
    args = p.parse_args()
    if args.phase == "export":
        print(json.dumps(phase_export(args.dir)))
        return
    if args.phase == "plain":
        print(json.dumps(phase_plain(args.dir, args.examples)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        build_log(folder, args.examples)
        built = time.perf_counter() - start
        export = in_fresh_process("--phase", "export", "--dir", str(folder))
        plain = in_fresh_process("--phase", "plain", "--dir", str(folder), "--examples", str(args.examples))
        assert export["records"] == plain["records"] == args.examples
        results = {"examples": args.examples, "log_build_s": round(built, 2),
                   "export_s": round(export["seconds"], 3), "export_peak_rss_mb": export["peak_rss_mb"],
                   "plain_list_jsonl_s": round(plain["seconds"], 3), "plain_peak_rss_mb": plain["peak_rss_mb"],
                   "export_ratio": round(plain["seconds"] / export["seconds"], 3)}
        results |= catch_up_and_lookup(folder, args.examples)
    report("learn", results)


if __name__ == "__main__":
    main()
