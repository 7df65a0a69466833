"""The read-only commands on the log: ``replay`` and ``status``. They never create a store.

Times are UTC everywhere: shown with a ``Z``, and ``--since`` without a zone is read as UTC.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

from adapters.config import ConfigError, Settings
from events import open_store
from events.catalog import EVENT_TYPES


def replay(settings: Settings, args: argparse.Namespace) -> int:
    known = set(EVENT_TYPES)
    unknown = [t for t in args.type or () if t not in known]
    if unknown:
        raise ConfigError(f"unknown event type {', '.join(map(repr, unknown))}; the types are: "
                          + ", ".join(sorted(known)))
    since = parse_since(args.since) if args.since else None
    store = open_store(settings.event_store, Path(settings.data_dir), create=False)
    stop = threading.Event()
    shown = 0
    try:
        events = store.read_all(types=args.type or ())
        if args.follow:  # then keep printing new events as they are appended, until Ctrl-C
            events = store.follow(after=0, stop=stop, poll_seconds=0.25)
        for r in events:
            if (args.stream and r.stream != args.stream) or (since and r.recorded_at < since) or \
                    (args.follow and args.type and r.type_name not in args.type):
                continue
            data = r.event.to_data()
            at = r.recorded_at.astimezone(timezone.utc)
            if args.json:
                line = json.dumps({"position": r.position, "stream": r.stream, "version": r.stream_version,
                                   "type": r.type_name, "time": at.isoformat(), "data": data},
                                  ensure_ascii=False)
            else:
                summary = " ".join(f"{k}={_short(v)}" for k, v in data.items())
                line = f"{r.position:>8} {at:%Y-%m-%d %H:%M:%S}Z {r.stream} {r.type_name} {summary}"
            print(line, flush=args.follow)
            shown += 1
        if not shown and not args.follow:  # stdout stays empty (valid JSON lines); the person is told why
            print("parley: no events match" + (f" in stream {args.stream!r}" if args.stream else "")
                  + (f" of type {', '.join(args.type)}" if args.type else "")
                  + (f" since {args.since}" if args.since else ""), file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        store.close()
    return 0


def status(settings: Settings, args: argparse.Namespace, pending_replies: int | None = None) -> int:
    from projections.conversations import Conversations
    from projections.deliveries import PendingReplies
    from projections.tracking import ProjectionRunner, open_read_models

    store = open_store(settings.event_store, Path(settings.data_dir), create=False)
    try:
        counts: dict[str, int] = {}
        for r in store.read_all():
            counts[r.type_name] = counts.get(r.type_name, 0) + 1
        # PostgreSQL: the read models every process shares; SQLite: built in memory (writes nothing).
        db = open_read_models(store, None)
        pending = PendingReplies(db)
        # Every projection, in the runner's order: they share one tracked position.
        ProjectionRunner(store, db, [Conversations(db), pending]).catch_up()
        print(f"event store: {store.description}")
        print(f"position: {store.head()}")
        print(f"model: {settings.chat_model}")
        print(f"replies not yet delivered: {len(pending.pending())}")
        for name, n in sorted(counts.items()):
            print(f"  {name}: {n}")
        db.close()
    finally:
        store.close()
    return 0


def parse_since(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--since must be an ISO date or time in UTC (2026-11-24 or 2026-11-24T10:00, "
                          f"or with a zone: 2026-11-24T10:00+01:00), not {text!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _short(value: object, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("replay", help="print the event log in order (times in UTC)")
    r.add_argument("--stream", help="only this stream (e.g. conversation:console:you)")
    r.add_argument("--type", action="append", help="only events of this type (repeatable)")
    r.add_argument("--since", help="only events recorded at or after this ISO time (UTC unless it names a zone)")
    r.add_argument("--json", action="store_true", help="one JSON object per event")
    r.add_argument("--follow", action="store_true", help="keep printing new events as they are appended")
    sub.add_parser("status", help="store position, event counts, undelivered replies")
