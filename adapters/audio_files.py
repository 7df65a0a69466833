"""Audio clips as content-addressed files in the data dir: ``audio/<sha256>``, written atomically.

Bytes are written to a temporary file in the same folder while they are hashed and counted, then
renamed to their hash: a crash leaves no half file under a hash name, and nothing is ever written
outside the data dir. A size cap is checked before (the declared size) and while writing.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

CHUNK = 64 * 1024


class TooLarge(Exception):
    pass


class AudioStore:
    def __init__(self, data_dir: Path, max_bytes: int, folder: str = "audio", suffix: str = ""):
        self.folder = Path(data_dir) / folder
        self.max_bytes = max_bytes
        self.suffix = suffix  # e.g. ".wav", so a person can open the file

    def path(self, audio_hash: str) -> str | None:
        if not _is_hash(audio_hash):
            return None
        p = self.folder / (audio_hash + self.suffix)
        return str(p) if p.is_file() else None

    def delete(self, audio_hash: str) -> bool:
        if not _is_hash(audio_hash):
            return False
        try:
            (self.folder / (audio_hash + self.suffix)).unlink()
            return True
        except FileNotFoundError:
            return False

    def save(self, chunks: Iterator[bytes]) -> tuple[str, int]:
        """Store bytes; return (sha256, size). Raises ``TooLarge`` past the cap (nothing is kept)."""
        writer = _Writer(self.folder, self.max_bytes, self.suffix)
        try:
            for chunk in chunks:
                writer.write(chunk)
            return writer.commit()
        finally:
            writer.discard()

    async def save_async(self, chunks: AsyncIterator[bytes]) -> tuple[str, int]:
        """As ``save``, for an event loop: the final flush to disk runs in a thread."""
        import asyncio

        writer = _Writer(self.folder, self.max_bytes, self.suffix)
        try:
            async for chunk in chunks:
                writer.write(chunk)
            return await asyncio.to_thread(writer.commit)
        finally:
            writer.discard()

    def save_file(self, source: Path) -> tuple[str, int]:
        with open(source, "rb") as f:
            return self.save(iter(lambda: f.read(CHUNK), b""))


class _Writer:
    def __init__(self, folder: Path, max_bytes: int, suffix: str = ""):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.suffix = suffix
        self.max_bytes = max_bytes
        fd, name = tempfile.mkstemp(prefix=".incoming-", dir=folder)
        self.file = os.fdopen(fd, "wb")
        self.tmp = Path(name)
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise TooLarge(f"more than {self.max_bytes} bytes")
        self.hash.update(chunk)
        self.file.write(chunk)

    def commit(self) -> tuple[str, int]:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        digest = self.hash.hexdigest()
        os.replace(self.tmp, self.folder / (digest + self.suffix))  # atomic; the same bytes again replace identical bytes
        return digest, self.size

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        if self.tmp.exists():
            self.tmp.unlink()


def _is_hash(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def why_not_read(data_dir: Path, relative: str) -> str:
    """Why ``inside_data_dir`` gave no file: "no_such_file" (inside the data dir, but no file there: missing, or a
    folder) or "outside_data_dir" (outside it, or a link out of it)."""
    root = Path(data_dir).resolve()
    candidate = (root / relative).resolve() if not os.path.isabs(relative) else Path(relative).resolve()
    return "no_such_file" if candidate.is_relative_to(root) and not candidate.is_file() else "outside_data_dir"


def inside_data_dir(data_dir: Path, relative: str) -> Path | None:
    """The file ``relative`` names, if it lies inside ``data_dir`` once every link is resolved."""
    root = Path(data_dir).resolve()
    candidate = (root / relative).resolve() if not os.path.isabs(relative) else Path(relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate

