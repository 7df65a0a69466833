"""``transcribe FILE...`` and ``models``: the speech engine from the command line, on the bot's code path.

``transcribe`` reads the files it is given (they are the user's own, named on the command line); it
writes nothing. A file that cannot be transcribed is one line on stderr (with ``--json``, one JSON object on
stdout too, like the files that could), and the exit code is 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from actors.ports import LLMError, TranscriptionError
from actors.hearing.decider import FAILURE_TEXT, MODEL_LIST_URL
from adapters.config import Settings


def transcribe(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.speech import VoskEngine

    if settings.vosk_model_path is None:
        print(f"parley: no speech model: set VOSK_MODEL_PATH to a Vosk model folder (models for many "
              f"languages: {MODEL_LIST_URL})", file=sys.stderr)
        return 2
    engine = VoskEngine(settings.vosk_model_path, settings.max_audio_seconds)
    failed = 0
    for name in args.files:
        path = Path(name)
        try:
            if path.is_dir():
                raise TranscriptionError("undecodable", "is a folder, not an audio file")
            if not path.is_file():
                raise TranscriptionError("undecodable", "no such file")
            t = engine.transcribe(str(path))
        except TranscriptionError as e:
            failed += 1
            if e.reason == "no_model":
                print(f"parley: {e.detail}", file=sys.stderr)
                return 2
            reason = FAILURE_TEXT["silent"] if e.reason == "silent" else e.detail or e.reason
            print(f"parley: {name}: {e.reason}: {reason}", file=sys.stderr)
            if args.json:
                print(json.dumps({"file": name, "error": e.reason, "message": reason}, ensure_ascii=False), flush=True)
            continue
        if args.json:
            print(json.dumps({"file": name, "text": t.text, "words": list(t.words), "duration_s": t.duration_s,
                              "decode_s": t.decode_s, "recognize_s": t.recognize_s, "model": t.model},
                             ensure_ascii=False), flush=True)
        else:
            print(t.text, flush=True)
    return 1 if failed else 0


def models(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.speech import model_description

    if settings.vosk_model_path is None:
        print("speech to text: no model (voice messages are answered with how to get one)")
        print(f"  download a Vosk model for your language from {MODEL_LIST_URL},")
        print("  unpack it, and set VOSK_MODEL_PATH to its folder")
        return 0
    path = settings.vosk_model_path.resolve()
    print(f"speech to text: Vosk, {model_description(path)}")
    print(f"  path: {path}")
    return 0


def purge_audio(settings: Settings, args: argparse.Namespace, build: Callable[..., Any]) -> int:
    """Delete clips older than the retention (or ``--older-than DAYS``), through the Transcriber, as the
    bot's own timer does."""
    from actors.commands import PurgeAudio
    from adapters.config import ConfigError, prepare_data_dir
    from events import open_store

    days = settings.audio_retention_days if args.older_than is None else args.older_than
    if not days >= 0:
        raise ConfigError("--older-than must be a number of days, at least 0")
    try:
        before = datetime.now(timezone.utc) - timedelta(days=days)
    except OverflowError:  # longer ago than a date can be: nothing is that old
        before = datetime.min.replace(tzinfo=timezone.utc)
    open_store(settings.event_store, prepare_data_dir(settings.data_dir), create=False).close()  # no store: say so
    system = build(replace(settings, audio_retention_days=0, vosk_model_path=None), {}, llm=NoAnswers())
    try:
        purged_before = sum(1 for _ in system.store.read_all(types=("AudioPurged",)))
        system.router.dispatch(PurgeAudio(before.isoformat()))
    finally:
        system.stop()  # waits for the Transcriber to finish what it was told
    store = open_store(settings.event_store, prepare_data_dir(settings.data_dir))
    try:
        purged = sum(1 for _ in store.read_all(types=("AudioPurged",))) - purged_before
    finally:
        store.close()
    print(f"purged the audio of {purged} clip(s) received more than {days:g} day(s) ago; transcripts stay")
    return 0


class NoAnswers:
    """The chat port of a process that answers nobody (``purge-audio``): no model is loaded for it."""

    def complete(self, messages: object, model: str, on_text: object = None) -> object:
        raise LLMError("unreachable", "purge-audio asks no language model")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("transcribe", help="print what the speech model hears in audio files")
    t.add_argument("files", nargs="+", metavar="FILE")
    t.add_argument("--json", action="store_true", help="one JSON object per file (text, words, timings)")
    sub.add_parser("models", help="the speech models in use: language and path")
    pa = sub.add_parser("purge-audio", help="delete stored clips older than the retention (transcripts stay)")
    pa.add_argument("--older-than", type=float, metavar="DAYS", help="instead of PARLEY_AUDIO_RETENTION_DAYS")
