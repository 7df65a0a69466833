"""Read models kept in an SQLite file of their own, with the log position they have applied.

Rows and the position are written in one transaction (as eventsourcing's tracking records are), so a
read model resumes exactly where it stopped, and deleting the file rebuilds it from zero to the same
result. Events are applied strictly in the log's global order by one ``ProjectionRunner`` thread.

The file is rebuildable from the log, so it is written with ``synchronous=NORMAL``: a power cut can
cost a catch-up, never a wrong row.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from events import EventStore, RecordedEvent

log = logging.getLogger("parley.projections")
READ_MODELS_FILE = "read-models.sqlite3"
BATCH = 2000


class ReadModelDB:
    def __init__(self, path: Path | str, name: str = "read_models"):
        self.name = name
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS tracking (name TEXT PRIMARY KEY, position INTEGER NOT NULL)")
        # Queries (from the Discord event loop) use a connection of their own: in WAL mode they read the
        # last committed state and never wait for the runner's transaction.
        self._reader_lock = threading.Lock()
        self._reader = self._db if str(path) == ":memory:" else sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=10)
        if self._reader is self._db:
            self._reader_lock = self._lock  # type: ignore[assignment]

    def create(self, statements: Iterable[str]) -> None:
        with self._lock:
            for statement in statements:
                self._db.execute(statement)

    def position(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT position FROM tracking WHERE name=?", (self.name,)).fetchone()
        return row[0] if row else 0

    @contextmanager
    def transaction(self, position: int) -> Iterator[sqlite3.Connection]:
        """Write rows, and record ``position`` as applied, all or nothing."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("INSERT INTO tracking (name, position) VALUES (?, ?) "
                                 "ON CONFLICT (name) DO UPDATE SET position=excluded.position", (self.name, position))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple]:
        with self._reader_lock:
            return self._reader.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock, self._reader_lock:
            if self._reader is not self._db:
                self._reader.close()
            self._db.close()


class TrackedProjection(Protocol):
    def apply(self, db: sqlite3.Connection, recorded: RecordedEvent) -> None:
        """Update this projection's rows for one event (inside the runner's transaction)."""


class ProjectionRunner:
    """Feeds the log, in order, to projections sharing one ``ReadModelDB``."""

    def __init__(self, store: EventStore, db: ReadModelDB, projections: list[TrackedProjection],
                 poll_seconds: float = 0.5):
        self.store = store
        self.db = db
        self.projections = projections
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.position = db.position()

    def catch_up(self) -> int:
        """Apply everything in the log after the tracked position; return how many events."""
        applied = 0
        while True:
            batch = list(self.store.read_all(after=self.position, limit=BATCH))
            if not batch:
                return applied
            with self.db.transaction(batch[-1].position or self.position) as db:
                for recorded in batch:
                    for projection in self.projections:
                        projection.apply(db, recorded)
            self.position = batch[-1].position or self.position
            applied += len(batch)

    def start(self) -> ProjectionRunner:
        self._thread = threading.Thread(target=self._follow, name="projections", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.store.wake_followers()
        if self._thread is not None:
            self._thread.join(10)
        self._catch_up_quietly()

    def _catch_up_quietly(self) -> None:
        try:
            self.catch_up()
        except Exception:  # stopping: what is missed is applied on the next start
            log.exception("read models could not catch up")

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.catch_up():
                    self.store.wait_for_append(self.poll_seconds)
            except Exception:  # the store is down, or a bug: keep the bot up, try again shortly
                log.exception("read models could not catch up; retrying")
                self._stop.wait(1.0)
