"""Event store throughput vs raw sqlite3 doing the same work with the same serialized payloads.

    python bench/store_throughput.py [--events 5000] [--store sqlite|postgresql://...]

On PostgreSQL the baseline is psycopg on a table of the same shape on the same server.

Measures appends with one event per commit, appends of 100-event batches, and reading the whole log,
for Parley's store (on the eventsourcing library) and for a raw sqlite3 table shaped the same way
(WAL, one row per event, primary key on stream and version). Ratios are project / raw throughput.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
from common import report

from events import open_store
from events.catalog.conversation import MessageReceived
from events.codec import encode


def sample_events(n: int) -> list[MessageReceived]:
    return [MessageReceived(conversation_id=f"discord:channel:{i % 50}", message_id=str(10**17 + i),
                            channel_id=str(i % 50), author_id="123456789012345678", author_name="Ada Lovelace",
                            text=f"message number {i}: " + "lorem ipsum dolor sit amet " * 3, source="discord")
            for i in range(n)]


def project(spec: str, folder: Path, events: list[MessageReceived]) -> dict[str, float]:
    store = open_store(spec, folder)
    try:
        start = time.perf_counter()
        for i, e in enumerate(events):
            store.append(f"single:{i % 50}", [e], i // 50)
        single = len(events) / (time.perf_counter() - start)
        start = time.perf_counter()
        for b in range(0, len(events), 100):
            store.append(f"batch:{b}", events[b:b + 100], 0)
        batch = len(events) / (time.perf_counter() - start)
        start = time.perf_counter()
        read = sum(1 for _ in store.read_all())
        read_rate = read / (time.perf_counter() - start)
    finally:
        store.close()
    return {"single_events_per_s": single, "batch100_events_per_s": batch, "read_events_per_s": read_rate}


def raw_sqlite(folder: Path, events: list[MessageReceived]) -> dict[str, float]:
    now = datetime.now(timezone.utc)
    payloads = [encode(e, now) for e in events]  # the same bytes Parley stores
    db = sqlite3.connect(folder / "raw.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE events (stream TEXT, version INTEGER, topic TEXT, state BLOB, "
               "PRIMARY KEY (stream, version))")
    insert = "INSERT INTO events (stream, version, topic, state) VALUES (?, ?, ?, ?)"
    start = time.perf_counter()
    for i, p in enumerate(payloads):
        db.execute("BEGIN")
        db.execute(insert, (f"single:{i % 50}", i // 50 + 1, "MessageReceived", p))
        db.execute("COMMIT")
    single = len(payloads) / (time.perf_counter() - start)
    start = time.perf_counter()
    for b in range(0, len(payloads), 100):
        db.execute("BEGIN")
        db.executemany(insert, [(f"batch:{b}", v + 1, "MessageReceived", p) for v, p in enumerate(payloads[b:b + 100])])
        db.execute("COMMIT")
    batch = len(payloads) / (time.perf_counter() - start)
    start = time.perf_counter()
    # Reading means getting events back, so the baseline decodes the JSON too, with the same decoder
    # Parley uses (Parley also turns it into event objects).
    read = 0
    for row in db.execute("SELECT rowid, stream, version, topic, state FROM events ORDER BY rowid"):
        orjson.loads(row[4])
        read += 1
    read_rate = read / (time.perf_counter() - start)
    # For context only (not in the ratios): the same read decoding with the standard library's json.
    start = time.perf_counter()
    for row in db.execute("SELECT rowid, stream, version, topic, state FROM events ORDER BY rowid"):
        json.loads(row[4])
    stdlib_rate = read / (time.perf_counter() - start)
    db.close()
    return {"single_events_per_s": single, "batch100_events_per_s": batch, "read_events_per_s": read_rate,
            "read_stdlib_json_events_per_s": stdlib_rate}


def raw_postgres(url: str, events: list[MessageReceived]) -> dict[str, float]:
    """The same work with psycopg on a table of the same shape, in a schema of its own on the same server."""
    import os

    import psycopg

    now = datetime.now(timezone.utc)
    payloads = [encode(e, now) for e in events]
    schema = f"raw_bench_{os.getpid()}"
    with psycopg.connect(url.split("?")[0], autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
        try:
            db.execute(f"CREATE TABLE {schema}.events (id BIGSERIAL, stream TEXT, version INTEGER, topic TEXT, "
                       "state BYTEA, PRIMARY KEY (stream, version))")
            insert = f"INSERT INTO {schema}.events (stream, version, topic, state) VALUES (%s, %s, %s, %s)"
            start = time.perf_counter()
            for i, p in enumerate(payloads):
                with db.transaction():
                    db.execute(insert, (f"single:{i % 50}", i // 50 + 1, "MessageReceived", p))
            single = len(payloads) / (time.perf_counter() - start)
            start = time.perf_counter()
            with db.cursor() as cursor:
                for b in range(0, len(payloads), 100):
                    with db.transaction():
                        cursor.executemany(insert, [(f"batch:{b}", v + 1, "MessageReceived", p)
                                                    for v, p in enumerate(payloads[b:b + 100])])
            batch = len(payloads) / (time.perf_counter() - start)
            start, read = time.perf_counter(), 0
            with db.cursor() as cursor:
                cursor.execute(f"SELECT id, stream, version, topic, state FROM {schema}.events ORDER BY id")
                for row in cursor:
                    orjson.loads(row[4])
                    read += 1
            read_rate = read / (time.perf_counter() - start)
            start = time.perf_counter()
            with db.cursor() as cursor:
                cursor.execute(f"SELECT id, stream, version, topic, state FROM {schema}.events ORDER BY id")
                for row in cursor:
                    json.loads(row[4])
            stdlib_rate = read / (time.perf_counter() - start)
        finally:
            db.execute(f"DROP SCHEMA {schema} CASCADE")
    return {"single_events_per_s": single, "batch100_events_per_s": batch, "read_events_per_s": read_rate,
            "read_stdlib_json_events_per_s": stdlib_rate}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--store", default="sqlite")
    args = parser.parse_args()
    events = sample_events(args.events)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        ours = project(args.store, Path(a), events)
        raw = raw_postgres(args.store, events) if args.store.startswith("postgres") else raw_sqlite(Path(b), events)
    ratios = {k.replace("_per_s", "_ratio"): round(ours[k] / raw[k], 3) for k in ours}
    context = {"read_vs_raw_stdlib_json_ratio": round(ours["read_events_per_s"] / raw.pop("read_stdlib_json_events_per_s"), 3)}
    report("store_throughput", {
        "events": args.events, "store": args.store.split("?")[0],
        "parley": {k: round(v) for k, v in ours.items()},
        "raw_psycopg" if args.store.startswith("postgres") else "raw_sqlite3": {k: round(v) for k, v in raw.items()},
        "ratios": ratios, "target_ratio": 0.5, "meets_target": all(r >= 0.5 for r in ratios.values()),
        "context": context,
    })


if __name__ == "__main__":
    main()
