"""Forgetting a person on disk: their audio clips, the exported files that hold their words, and last
their key (after which their words in the log are ciphertext nobody can read)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from adapters.audio_files import AudioStore
from events import EventStore
from events.catalog.hearing import AudioReceived
from events.catalog.listening import UtteranceHeard
from events.personal import PERSONAL, owners

SCRUBBED = ("exports", "archives", "reports", "training")  # training: the files and jobs of local fine-tuning
RETRAIN_MARK = "trained-on-forgotten"  # in a local job's folder: its adapter learned from words since forgotten
MIN_WORDS = 4  # shorter strings ("ok") would match lines that are not theirs


class DiskForgetting:
    def __init__(self, store: EventStore, data_dir: Path, audio: AudioStore):
        self.store = store
        self.root = Path(data_dir)
        self.audio = audio

    def known(self, person: str) -> bool:
        return self.store.keys is not None and self.store.keys.key_of(person) is not None

    def forget(self, person: str) -> tuple[int, int]:
        words = self._words(person)  # read while the key is still there
        clips = {r.event.audio_hash for r in self.store.read_all(types=[AudioReceived.type_name])
                 if r.event.author_id == person and r.event.audio_hash}  # type: ignore[attr-defined]
        clips |= {r.event.audio_hash for r in self.store.read_all(types=[UtteranceHeard.type_name])  # heard in voice
                  if r.event.speaker_id == person and r.event.audio_hash}  # type: ignore[attr-defined]
        deleted = sum(self.audio.delete(h) for h in clips)
        changed = self._scrub(words)
        self.store.forget(person)
        return deleted, changed

    def _words(self, person: str) -> set[str]:
        words: set[str] = set()
        for recorded in self.store.read_all(types=list(PERSONAL)):
            data = recorded.event.__dict__
            for field, owner in PERSONAL[recorded.type_name].items():
                if person in (data.get(o) for o in owners(owner)) and not field.endswith("_name"):
                    words |= {s for s in _strings(data.get(field)) if len(s) >= MIN_WORDS}
        return words

    def _scrub(self, words: set[str]) -> int:
        """Drop the lines of JSONL files that hold their words; delete other files that do."""
        changed = 0
        for folder in SCRUBBED:
            for path in _files_under(self.root / folder):  # every scope's folder in it too
                if not path.is_file() or path.is_symlink():
                    continue
                if path.suffix == ".jsonl":
                    lines = path.read_bytes().splitlines(keepends=True)
                    kept = [line for line in lines if not _holds(line, words)]
                    if len(kept) != len(lines):
                        tmp = path.with_name(f".{path.name}.scrub")
                        tmp.write_bytes(b"".join(kept))
                        tmp.replace(path)
                        changed += 1
                        if path.name == "train.jsonl" and (path.parent / "job.json").is_file():
                            # the adapter cannot unlearn: mark it, so the operator sees it and can retrain
                            (path.parent / RETRAIN_MARK).write_text(f"{len(lines) - len(kept)} example(s)\n")
                elif _holds(path.read_bytes(), words) or path.suffix == ".zip" and _zip_holds(path, words):
                    path.unlink()
                    changed += 1
        return changed


def _files_under(folder: Path) -> list[Path]:
    """Every file under ``folder``, its scopes' folders included; links to folders are not followed."""
    return sorted(Path(top) / name for top, _, names in os.walk(folder, followlinks=False) for name in names)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def _holds(data: bytes, words: set[str]) -> bool:
    text = data.decode("utf-8", errors="replace")
    return any(w in text or json.dumps(w)[1:-1] in text for w in words)


def _zip_holds(path: Path, words: set[str]) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(_holds(z.read(name), words) for name in z.namelist())
    except zipfile.BadZipFile:
        return False
