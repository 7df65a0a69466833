"""``projections rebuild|run``, ``corrections list`` and ``feedback list``: the read models from the command line."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from adapters.config import ConfigError, Settings
from events import open_store
from adapters.cli.progress import bar
from projections.registry import NAMES, caught_up, following, rebuild
from projections.tracking import open_read_models


def projections_command(settings: Settings, args: argparse.Namespace) -> int:
    return run_command(settings, args) if args.action == "run" else rebuild_command(settings, args)


def run_command(settings: Settings, args: argparse.Namespace) -> int:
    """The read models' worker: feed them as the log grows until SIGTERM or Ctrl-C. Bots started with
    ``PARLEY_READ_MODELS=worker`` then only read them; stopped and started again, it resumes where it was."""
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    store = open_store(settings.event_store, Path(settings.data_dir), create=True)
    db = open_read_models(store, Path(settings.data_dir))
    try:
        runner = following(store, db).runner
        print(f"parley: read models at log position {runner.position:,}, following the log "
              f"({store.description}); SIGTERM or Ctrl-C stops", file=sys.stderr, flush=True)
        stopping.wait()
        runner.stop()
        print(f"parley: read models stopped at log position {runner.position:,}", file=sys.stderr, flush=True)
        return 0
    finally:
        db.close()
        store.close()


def rebuild_command(settings: Settings, args: argparse.Namespace) -> int:
    names = list(NAMES) if args.all else [args.name]
    if not args.all and args.name not in NAMES:
        raise ConfigError((f"no read model {args.name!r}" if args.name else "name a read model to rebuild")
                          + f"; they are: {', '.join(NAMES)} (or --all for every one)")
    store = open_store(settings.event_store, Path(settings.data_dir), create=False)
    db = open_read_models(store, Path(settings.data_dir))
    try:
        caught_up(store, db)  # first up to the end of the log
        done = rebuild(store, db, names, lambda done, total: bar(done, total, "positions"))
        print(f"rebuilt {', '.join(names)} from {done:,} events", file=sys.stderr)
        return 0
    finally:
        db.close()
        store.close()


def list_command(settings: Settings, args: argparse.Namespace) -> int:
    store = open_store(settings.event_store, Path(settings.data_dir), create=False)
    db = open_read_models(store, Path(settings.data_dir))
    try:
        answers = next(p for p in caught_up(store, db) if p.name == "corrections")
        rows = answers.corrections() if args.command == "corrections" else answers.feedback()
        for row in rows:
            if args.json:
                print(json.dumps(row, ensure_ascii=False))
            elif args.command == "corrections":
                print(f"{row['recorded_at'][:19]}Z #{row['position']} by {row['by_name'] or row['by']} ({row['via']})\n"
                      f"  asked:     {_one_line(row['question'])}\n  answered:  {_one_line(row['original'])}\n"
                      f"  corrected: {_one_line(row['corrected'])}")
            else:
                what = {"up": "👍", "down": "👎"}.get(row["rating"], "") or _one_line(row["text"])
                about = f" on the answer to {row['question_id']}" if row["question_id"] else ""
                print(f"{row['recorded_at'][:19]}Z #{row['position']} {row['by_name'] or row['by']}{about}: {what}")
        if not rows:  # on stderr, so that --json output stays valid (no lines)
            print(f"no {args.command} yet", file=sys.stderr)
        return 0
    finally:
        db.close()
        store.close()


def _one_line(text: str | None, limit: int = 120) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    pr = sub.add_parser("projections", help="rebuild the read models from the log, or run them as a worker")
    pr_sub = pr.add_subparsers(dest="action", required=True)
    rb = pr_sub.add_parser("rebuild", help="drop read models and build them again from the log")
    rb.add_argument("name", nargs="?", help="conversations, deliveries, clips, voice, datasets or corrections")
    rb.add_argument("--all", action="store_true", help="every read model")
    pr_sub.add_parser("run", help="feed the read models as the log grows, as a worker of its own (until SIGTERM); "
                                  "bots with PARLEY_READ_MODELS=worker then only read them")
    for name, what in (("corrections", "corrections of Parley's answers"), ("feedback", "votes and written feedback")):
        listing = sub.add_parser(name, help=f"{what}, oldest first")
        listing_sub = listing.add_subparsers(dest="action", required=True)
        listing_sub.add_parser("list", help=f"print the {name}").add_argument("--json", action="store_true",
                                                                          help="one JSON object per line")
