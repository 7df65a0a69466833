"""``audit verify`` and ``audit export``: the log proves it was not altered (see ``events.chain``)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import orjson

from adapters.config import Settings
from adapters.cli.log import parse_since
from events import open_store
from events.audit import export_rows, verify_parallel


def audit(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "verify":
        open_store(settings.event_store, Path(settings.data_dir), create=False).close()  # a clear error if none
        return _verify(settings, args)
    store = open_store(settings.event_store, Path(settings.data_dir), create=False)
    try:
        return _export(store, args)
    finally:
        store.close()


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    # One process per core on a large log: each checks a stretch of links against the stored hashes.
    verdict = verify_parallel(settings.event_store, Path(settings.data_dir), (args.expect_head or "").strip().lower())
    if verdict.chain_starts > 1:
        print(f"note: events before position {verdict.chain_starts} were written before the log had a hash "
              "chain; they cannot be verified", file=sys.stderr)
    if not verdict.intact:
        print(f"parley: the log does NOT verify: position {verdict.bad_position}: {verdict.problem} "
              f"({verdict.events:,} events verified before it)", file=sys.stderr)
        return 1
    print(f"intact: {verdict.events:,} events verified (through position {verdict.last_position})\n"
          f"head: {verdict.head or '(empty log)'}")
    return 0


def _export(store, args: argparse.Namespace) -> int:  # noqa: ANN001
    since = parse_since(args.since).isoformat() if args.since else ""
    until = parse_since(args.until).isoformat() if args.until else ""

    def keep(state: bytes) -> bool:
        if not since and not until:
            return True
        at = orjson.loads(state)["at"]  # ISO times in UTC compare as text
        return (not since or at >= since) and (not until or at < until)

    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    try:
        count = 0
        for row in export_rows(store, keep):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    finally:
        if args.out:
            out.close()
    print(f"exported {count:,} events", file=sys.stderr)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    au = sub.add_parser("audit", help="verify the log's hash chain, or export events with their hashes")
    au_sub = au.add_subparsers(dest="action", required=True)
    av = au_sub.add_parser("verify", help="recompute the hash chain; exit 1 naming the first bad position")
    av.add_argument("--expect-head", metavar="HASH", help="a head printed earlier: also catches a cut tail")
    ae = au_sub.add_parser("export", help="events with their hashes as JSONL (checkable without Parley)")
    ae.add_argument("--since", help="recorded at or after this ISO time (UTC unless it names a zone)")
    ae.add_argument("--until", help="recorded before this ISO time")
    ae.add_argument("--out", type=Path, metavar="FILE", help="write here instead of stdout")
