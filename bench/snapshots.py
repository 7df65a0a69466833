"""Long streams: how long an actor takes to load its state, and the memory it takes, from a 10,000-turn
conversation (30,000 events) and a 100,000-event learning stream, with snapshots and without.

    python bench/snapshots.py [--turns 10000] [--learning-events 100000]

Each load runs in a fresh process (peak RSS is its own). Baseline in the same run: the same events read
raw from the SQLite file (sqlite3, no decoding). "without": the actor folds the whole stream (the Trainer
with its linear fold); "with": the first load folds and writes a snapshot, the next one starts from it and
folds what came after. Before the linear fold, the Trainer folding 100,000 events one by one took 275-286 s
(each event copied every set of the dataset).
"""
from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, report

BATCH = 500


def build_log(folder: Path, turns: int, learning_events: int) -> None:
    from events import open_store
    from events.catalog.conversation import MessageReceived, ResponseGenerated
    from events.catalog.delivery import ReplySent
    from events.catalog.learning import LEARNING_STREAM, DatasetCreated, ExamplesAdded

    store = open_store("sqlite", folder)
    try:
        version, about = 0, dict(conversation_id="bench:long", channel_id="c", source="bench")
        for start in range(0, turns, BATCH):
            events = []
            for n in range(start, min(turns, start + BATCH)):
                m = str(10_000_000 + n)
                events += [MessageReceived(**about, message_id=m, author_id="u", author_name="Ann", text=f"question {n}"),
                           ResponseGenerated(**about, message_id=m, text=f"answer number {n}", model="m"),
                           ReplySent(**about, message_id=m, sent_message_ids=(f"s{m}",))]
            store.append("conversation:bench:long", events, version)
            version += len(events)
        store.append(LEARNING_STREAM, [DatasetCreated(dataset_id="bench", name="bench", by="bench")], 0)
        version = 1
        for start in range(0, learning_events, BATCH):
            events = [ExamplesAdded(dataset_id="bench", examples=({"prompt": f"How do I do thing {n}?",
                                                                   "answer": f"Like so, {n}.", "positive": True},),
                                    duplicates=0, author_id="bench", source="bench", message_id=str(n))
                      for n in range(start, min(learning_events, start + BATCH))]
            store.append(LEARNING_STREAM, events, version)
            version += len(events)
    finally:
        store.close()


def load(folder: Path, which: str, snapshots: bool) -> dict:
    """In this process: one actor's state loaded from the log (twice with snapshots: the first load writes one)."""
    from actors.conversation import decider as conversation
    from actors.learning import decider as training
    from actors.learning.folding import fold
    from actors.streams import DecidedStreams
    from events import open_store
    from events.catalog.learning import LEARNING_STREAM
    store = open_store("sqlite", folder)
    initial, evolve, stream, folding = ((conversation.Conversation(), conversation.evolve,
                                         lambda k: f"conversation:{k}", None)
                                        if which == "conversation" else (training.Learning(), training.evolve,
                                                                         lambda _: LEARNING_STREAM, fold))
    key = "bench:long"
    result = {}
    for attempt in ("first", "next") if snapshots else ("first",):
        streams = DecidedStreams(store, lambda r: None, initial, evolve, stream,
                                 snapshot_every=1000 if snapshots else 0, fold=folding)
        start = time.perf_counter()
        state = streams.load(key)
        result[f"{attempt}_load_s"] = round(time.perf_counter() - start, 3)
    result["version"] = state.version
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    store.close()
    return result


def raw_read(folder: Path, stream: str) -> float:
    start = time.perf_counter()
    with sqlite3.connect(folder / "parley.sqlite3") as db:
        rows = db.execute("SELECT state FROM stored_events WHERE originator_id=? ORDER BY originator_version",
                          (stream,)).fetchall()
    assert rows
    return round(time.perf_counter() - start, 3)


def in_child(folder: Path, which: str, snapshots: bool) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(folder), which, str(int(snapshots))],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=10_000)
    parser.add_argument("--learning-events", type=int, default=100_000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, which, snapshots = args.child
        print(json.dumps(load(Path(folder), which, snapshots == "1")))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build_log(folder, args.turns, args.learning_events)
        results = {}
        for which, stream in (("conversation", "conversation:bench:long"), ("learning", "learning")):
            results[which] = {"raw_sqlite_read_s": raw_read(folder, stream),
                              "without_snapshots": in_child(folder, which, False),
                              "with_snapshots": in_child(folder, which, True)}
    report("snapshots", {"turns": args.turns, "learning_events": args.learning_events, **results})


if __name__ == "__main__":
    main()
