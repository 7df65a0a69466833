"""The audit's costs: verifying the hash chain, and appending with the chain and encryption.

    python bench/audit.py [--events 1000000]

- verify: ``audit verify`` (every link recomputed) on N events vs reading the same rows raw with
  sqlite3 (no decoding, no hashing). Target: verify >= 0.5x the raw read.
- append: events with a person's words (``MessageReceived``) appended with the hash chain and their
  fields encrypted vs the same store without either (the batch recorder as it was before the chain).
  Target >= 0.8x, for single events (a commit each) and batches of 100.
"""
from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from common import report

from events import open_store
from events.audit import verify_parallel
from events.catalog.conversation import MessageReceived
import events.sqlite_recorder as recorder

BATCH = 1000


def sample(n: int, offset: int = 0) -> list[MessageReceived]:
    return [MessageReceived(conversation_id=f"discord:channel:{i % 50}", message_id=str(10**17 + offset + i),
                            channel_id=str(i % 50), author_id=f"{100 + i % 20}", author_name="Ada Lovelace",
                            text=f"message number {i}: " + "lorem ipsum dolor sit amet " * 3, source="discord")
            for i in range(n)]


def without_chain(self, c, stored_events, **_):  # noqa: ANN001, ANN202  (the recorder before the chain)
    if len(stored_events) < 2:
        return recorder.SQLiteApplicationRecorder._insert_events(self, c, stored_events)
    c.executemany(self.insert_events_statement,
                  [(str(s.originator_id), s.originator_version, s.topic, s.state) for s in stored_events])
    c.execute("SELECT last_insert_rowid()")
    last = c.fetchone()[0]
    return list(range(last - len(stored_events) + 1, last + 1))


def appends(folder: Path, plain: bool, events: list[MessageReceived]) -> dict[str, float]:
    chained = recorder.BatchSQLiteApplicationRecorder._insert_events
    if plain:
        recorder.BatchSQLiteApplicationRecorder._insert_events = without_chain  # type: ignore[method-assign]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        store = open_store("sqlite", folder)
        if plain:
            store.keys = None
        start = time.perf_counter()
        for i, e in enumerate(events[:2000]):
            store.append(f"single:{i % 50}", [e], i // 50)
        single = 2000 / (time.perf_counter() - start)
        start = time.perf_counter()
        for b in range(0, len(events), 100):
            store.append(f"batch:{b}", events[b:b + 100], 0)
        batch = len(events) / (time.perf_counter() - start)
        store.close()
    finally:
        recorder.BatchSQLiteApplicationRecorder._insert_events = chained  # type: ignore[method-assign]
    return {"single_per_s": round(single), "batch100_per_s": round(batch)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=1_000_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        events = sample(20_000)
        best = {}
        for label, plain in (("chain_and_encryption", False), ("neither", True)):
            runs = [appends(folder / f"{label}-{k}", plain, events) for k in range(3)]
            best[label] = {k: max(r[k] for r in runs) for k in runs[0]}

        (folder / "big").mkdir()
        store = open_store("sqlite", folder / "big")
        start = time.perf_counter()
        chunk = sample(BATCH)
        for b in range(0, args.events, BATCH):
            store.append(f"log:{b}", chunk[: min(BATCH, args.events - b)], 0)
        built = time.perf_counter() - start
        store.close()
        start = time.perf_counter()
        verdict = verify_parallel("sqlite", folder / "big")  # what `audit verify` runs: a process per core
        verify_s = time.perf_counter() - start
        assert verdict.intact and verdict.events == args.events
        raw = sqlite3.connect(str(folder / "big" / "parley.sqlite3"))
        start = time.perf_counter()
        rows = sum(1 for _ in raw.execute("SELECT rowid, originator_id, originator_version, topic, state "
                                          "FROM stored_events ORDER BY rowid"))
        raw_s = time.perf_counter() - start
        raw.close()
    report("audit", {
        "events": args.events, "log_build_s": round(built, 1),
        "verify_events_per_s": round(args.events / verify_s), "raw_read_events_per_s": round(rows / raw_s),
        "verify_ratio": round(raw_s / verify_s, 3), "verify_target": 0.5,
        "append": best,
        "single_ratio": round(best["chain_and_encryption"]["single_per_s"] / best["neither"]["single_per_s"], 3),
        "batch100_ratio": round(best["chain_and_encryption"]["batch100_per_s"] / best["neither"]["batch100_per_s"], 3),
        "append_target": 0.8,
    })


if __name__ == "__main__":
    main()
