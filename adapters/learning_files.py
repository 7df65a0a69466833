"""The Trainer's files, all inside the data dir: attached example files (``imports/<sha256>``, kept
as they came), exports (``exports/SCOPE/NAME-sft.jsonl``), archives (``archives/SCOPE/NAME-TIME.zip``; SCOPE is
the folder of the dataset's scope, ``guild-123``, so one server's files are never another's) and the
editable usage instructions (``instructions.md``). Files are written to a temporary name and renamed,
so a crash never leaves half an export under its real name."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile

import orjson
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from actors.learning.decider import Written
from adapters.audio_files import AudioStore

SENDABLE = ("exports", "archives")
MAX_NAME = 255  # longer names are refused before any file call
INSTRUCTIONS_FILE = "instructions.md"
DEFAULT_INSTRUCTIONS = """**Teaching Parley** (admins)
- `{p}train What are your hours? => We are open 9 to 5.` adds an example; `{p}train -PROMPT => ANSWER` an answer to avoid.
- Attach a `.jsonl` (OpenAI chat or preference lines), `.csv` (prompt, completion, optional label) or `.txt` (Q:/A: blocks) to `{p}train` to add many.
- `{p}dataset create NAME`, `select NAME` (where `train` adds), `use NAME` (which examples teach this channel), `list`, `show`, `delete`.
- Examples teach at once: the most similar ones go with each question to the model.
- `{p}test` scores the model on held-out examples; `{p}dataset export NAME --format sft|dpo`, `{p}dataset archive NAME`, `{p}getfile NAME`.
- `{p}finetune start [BASE_MODEL] [--method sft|dpo]` trains at PARLEY_TRAINING_BASE_URL; the tuned model answers when it succeeds. `{p}model use NAME` switches by hand.
(Edit `instructions.md` in the data dir to change this text.)"""


class LearningFiles:
    def __init__(self, data_dir: Path, max_import_bytes: int):
        self.root = Path(data_dir).resolve()
        self.imports = AudioStore(self.root, max_import_bytes, folder="imports")

    def read_import(self, digest: str) -> bytes | None:
        path = self.imports.path(digest)
        return Path(path).read_bytes() if path else None

    def path(self, relative: str) -> Path:
        return self.root / relative

    def write_jsonl(self, relative: str, records: Iterable[dict]) -> Written:
        digest, count = hashlib.sha256(), 0

        def lines() -> Iterable[bytes]:
            nonlocal count
            for record in records:
                line = orjson.dumps(record) + b"\n"  # UTF-8 as it is, several times faster than json
                digest.update(line)
                count += 1
                yield line

        self._atomic(relative, lambda f: f.writelines(lines()))
        return Written(relative, digest.hexdigest(), count)

    def write_archive(self, name: str, files: list[Written], manifest: dict) -> Written:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        relative = f"archives/{name}-{stamp}.zip"

        def write(f) -> None:  # noqa: ANN001
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
                for w in files:
                    z.write(self.path(w.file), arcname=Path(w.file).name)
                z.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))

        self._atomic(relative, write)
        return Written(relative, _sha256(self.path(relative)), len(files))

    def sendable(self, requested: str, folder: str, everywhere: bool = False) -> tuple[str, str]:
        """(path relative to the data dir, "") for a file in exports/ or archives/, else ("", why): "outside"
        for any other place (``..``, an absolute path, a link out, a NUL byte, a name past ``MAX_NAME``),
        "missing" for no file. Only the asker's scope's files are sent (``exports/<folder>/``,
        ``archives/<folder>/``; ``events.scopes.folder_of``), unless ``everywhere`` (operators): then any."""
        name = requested.strip().replace("\\", "/")
        if not name or "\0" in name or len(name) > MAX_NAME or os.path.isabs(name) or name.startswith("~"):
            return "", "outside"  # refused before any file call
        roots = [self.root / top / folder for top in SENDABLE] + ([self.root / top for top in SENDABLE]
                                                                  if everywhere else [])
        parts = name.split("/")
        if parts[0] in SENDABLE:
            parts = parts[1:]
            if parts[:1] == [folder]:
                parts = parts[1:]
            roots = [r for r in roots if r.parts[len(self.root.parts)] == name.split("/", 1)[0]]
        relative = "/".join(parts)
        if not relative:
            return "", "outside"
        for root in roots:
            path = root / relative
            try:
                resolved = path.resolve()
            except (OSError, ValueError):
                return "", "outside"
            if not resolved.is_relative_to(root.resolve()):
                return "", "outside"
            if resolved.is_file():
                return str(resolved.relative_to(self.root.resolve())), ""
        return "", "missing"

    def instructions(self, prefix: str) -> str:
        path = self.root / INSTRUCTIONS_FILE
        try:
            return path.read_text(encoding="utf-8")[:4000]
        except (OSError, UnicodeDecodeError):
            return DEFAULT_INSTRUCTIONS.format(p=prefix)

    def _atomic(self, relative: str, write) -> None:  # noqa: ANN001
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".writing-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()
