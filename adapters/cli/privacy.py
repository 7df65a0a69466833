"""``forget USER_ID``: an operator forgets a person (as their own ``forget-me`` does), without the bot."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from actors.privacy import decider as privacy
from actors.privacy.decider import Person
from actors.privacy.actor import forget
from actors.streams import DecidedStreams
from adapters.audio_files import AudioStore
from adapters.config import Settings, prepare_data_dir
from adapters.forgetting import DiskForgetting
from events import open_store
from events.catalog.privacy import person_stream
from projections.registry import caught_up
from projections.tracking import open_read_models


def forget_command(settings: Settings, args: argparse.Namespace) -> int:
    person = args.user_id.strip()
    data_dir = prepare_data_dir(settings.data_dir)
    store = open_store(settings.event_store, Path(data_dir), create=False)
    try:
        people = DecidedStreams(store, lambda _: None, Person(), privacy.evolve, person_stream)
        forgetting = DiskForgetting(store, data_dir, AudioStore(data_dir, settings.max_audio_mb * 1024 * 1024))
        if people.load(person).forgotten:
            print(f"parley: {person} is forgotten already", file=sys.stderr)
            return 1
        if not people.load(person).requested and not forgetting.known(person):
            print(f"parley: nothing is recorded for {person!r} (a Discord user id, or the console's user name)",
                  file=sys.stderr)
            return 1
        forget(people, forgetting, person, "operator", "cli")
        db = open_read_models(store, Path(data_dir))
        try:
            caught_up(store, db)  # the read models say "(forgotten)" now
        finally:
            db.close()
        print(f"forgot {person}: their words in the log can no longer be read; audio files and exported files "
              "with their words are deleted")
        return 0
    finally:
        store.close()


def add_parsers(sub: argparse._SubParsersAction) -> None:
    fg = sub.add_parser("forget", help="make a person's words unreadable everywhere (deletes their key)")
    fg.add_argument("user_id", metavar="USER_ID", help="their Discord user id (or the console's user name)")
