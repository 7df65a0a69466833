"""Read models and the log position they have applied, on the same backend as the log.

- SQLite log: the read models live in ``read-models.sqlite3`` in the data dir. The file is rebuildable
  from the log, so it is written with ``synchronous=NORMAL``: a power cut can cost a catch-up, never a
  wrong row.
- PostgreSQL log: the read models are tables of their own in the same database and schema, shared by
  every process on that store; nothing goes to the data dir.

Rows and the position are written in one transaction that first locks and reads the tracked position
(as eventsourcing's tracking records do), so a read model resumes exactly where it stopped, two
processes feeding the same tables never apply an event twice, and dropping the read models rebuilds
them from zero to the same result. Projections write portable SQL (``?`` parameters, ``ON CONFLICT``
upserts) that both backends run.
"""
from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from events import EventStore, RecordedEvent, is_outage

log = logging.getLogger("parley.projections")
READ_MODELS_FILE = "read-models.sqlite3"
# Bumped when a projection's tables change: the new name has no tracked position, so every projection
# is fed the whole log again (each applies idempotently, in order) and new tables fill from zero.
READ_MODELS = "read_models:9"
TRACKING_TABLE = "read_model_tracking"
SCRUB_AFTER = {"PersonForgotten"}  # after these, rewritten rows must not linger on disk
BATCH = 2000


class Cursor(Protocol):
    def fetchone(self) -> Any: ...


class Transaction(Protocol):
    """What a projection writes through, inside the runner's transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...


class ReadModels(Protocol):
    name: str
    dialect: str  # "sqlite" | "postgresql": for what portable SQL cannot say (full-text search)

    def create(self, statements: Iterable[str]) -> None: ...

    def position(self) -> int: ...

    def transaction(self) -> Any:
        """A context manager yielding a ``TrackedTransaction``: exclusive, all or nothing."""

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple]: ...

    def scrub(self, tables: Iterable[str] = ()) -> None: ...

    def close(self) -> None: ...


class TrackedTransaction:
    def __init__(self, connection: Any, name: str, placeholder: str = "?"):
        self._c = connection
        self._name = name
        self._translate = (lambda sql: sql) if placeholder == "?" else _to_format_params

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self._c.execute(self._translate(sql), tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(r) for r in rows]
        if rows:
            if hasattr(self._c, "executemany"):
                self._c.executemany(self._translate(sql), rows)
            else:
                with self._c.cursor() as cursor:
                    cursor.executemany(self._translate(sql), rows)

    def position(self) -> int:
        """The applied position, locked until the transaction ends (the runner of another process waits)."""
        row = self.execute(f"SELECT position FROM {TRACKING_TABLE} WHERE name=?" + self._lock_suffix(),
                           (self._name,)).fetchone()
        return row[0] if row else 0

    def track(self, position: int) -> None:
        self.execute(f"INSERT INTO {TRACKING_TABLE} (name, position) VALUES (?, ?) "
                     "ON CONFLICT (name) DO UPDATE SET position=excluded.position", (self._name, position))

    def _lock_suffix(self) -> str:
        return "" if isinstance(self._c, sqlite3.Connection) else " FOR UPDATE"


class SQLiteReadModels:
    dialect = "sqlite"

    def __init__(self, path: Path | str, name: str = READ_MODELS):
        self.name = name
        self.description = f"sqlite:{path}"
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # What is deleted or overwritten (a forgotten person's words) is zeroed on disk, not left in free pages.
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.execute(f"CREATE TABLE IF NOT EXISTS {TRACKING_TABLE} "
                         "(name TEXT PRIMARY KEY, position INTEGER NOT NULL)")
        # Queries (from the Discord event loop) use a connection of their own: in WAL mode they read the
        # last committed state and never wait for the runner's transaction.
        self._reader_lock = threading.Lock()
        self._reader = self._db if str(path) == ":memory:" else sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30)
        if self._reader is self._db:
            self._reader_lock = self._lock  # type: ignore[assignment]

    def create(self, statements: Iterable[str]) -> None:
        with self._lock:
            for statement in statements:
                self._db.execute(statement)

    def position(self) -> int:
        with self._lock:
            row = self._db.execute(f"SELECT position FROM {TRACKING_TABLE} WHERE name=?", (self.name,)).fetchone()
        return row[0] if row else 0

    @contextmanager
    def transaction(self) -> Iterator[TrackedTransaction]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes too
            try:
                yield TrackedTransaction(self._db, self.name)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple]:
        with self._reader_lock:
            return self._reader.execute(sql, params).fetchall()

    def scrub(self, tables: Iterable[str] = ()) -> None:
        """Write the WAL back and empty it: old versions of rewritten rows leave the disk (``secure_delete``
        has zeroed them in the file itself)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock, self._reader_lock:
            if self._reader is not self._db:
                self._reader.close()
            self._db.close()


ReadModelDB = SQLiteReadModels  # the name older code and tests know


class PostgresReadModels:
    """Read-model tables in the log's PostgreSQL database and schema. One connection writes (the
    runner), one reads (queries from the transports); either is reopened after an outage."""

    dialect = "postgresql"

    def __init__(self, connect: dict[str, Any], schema: str, name: str = READ_MODELS):
        import psycopg

        from events.postgres_recorder import creating_schema

        self._psycopg = psycopg
        self._creating_schema = creating_schema
        self.name = name
        self.schema = schema or "public"
        self._connect_args = connect
        self.description = (f"postgresql://{connect.get('user')}@{connect.get('host')}:{connect.get('port')}/"
                            f"{connect.get('dbname')} schema {self.schema}")
        self._lock = threading.RLock()
        self._reader_lock = threading.Lock()
        self._writer: Any = None
        self._reader: Any = None
        with self._lock, self._creating_schema(self._connection("writer")):
            self._connection("writer").execute(
                f"CREATE TABLE IF NOT EXISTS {TRACKING_TABLE} (name TEXT PRIMARY KEY, position BIGINT NOT NULL)")

    def _connection(self, role: str) -> Any:
        current = self._writer if role == "writer" else self._reader
        if current is None or current.closed or current.broken:
            if current is not None:
                current.close()
            current = self._psycopg.connect(**self._connect_args, autocommit=True)
            current.execute(f'SET search_path TO "{self.schema}"')
            if role == "writer":
                self._writer = current
            else:
                self._reader = current
        return current

    def create(self, statements: Iterable[str]) -> None:
        with self._lock:
            conn = self._connection("writer")
            with self._creating_schema(conn):  # processes starting together create each table once
                for statement in statements:
                    conn.execute(_to_postgres_ddl(statement))

    def position(self) -> int:
        with self._lock:
            row = self._connection("writer").execute(
                f"SELECT position FROM {TRACKING_TABLE} WHERE name=%s", (self.name,)).fetchone()
        return row[0] if row else 0

    @contextmanager
    def transaction(self) -> Iterator[TrackedTransaction]:
        with self._lock:
            conn = self._connection("writer")
            with conn.transaction():
                # The row must exist to be locked: two processes then serialise on it.
                conn.execute(f"INSERT INTO {TRACKING_TABLE} (name, position) VALUES (%s, 0) "
                             "ON CONFLICT (name) DO NOTHING", (self.name,))
                yield TrackedTransaction(conn, self.name, placeholder="%s")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple]:
        with self._reader_lock:
            try:
                return self._connection("reader").execute(_to_format_params(sql), params).fetchall()
            except self._psycopg.OperationalError:
                self._reader = None  # reopened by the next query
                raise

    def scrub(self, tables: Iterable[str] = ()) -> None:
        """Rewrite ``tables``: the old versions of rows just rewritten (a forgotten person's words) must not
        wait in the files for the next autovacuum."""
        names = ", ".join(tables)
        if names:
            with self._lock:
                self._connection("writer").execute(f"VACUUM FULL {names}")

    def close(self) -> None:
        with self._lock, self._reader_lock:
            for conn in (self._writer, self._reader):
                if conn is not None:
                    conn.close()


def open_read_models(store: EventStore, data_dir: Path | None, name: str = READ_MODELS) -> ReadModels:
    """The read models that go with ``store``: PostgreSQL tables beside a PostgreSQL log, else the
    SQLite file in ``data_dir`` (``None``: in memory, for one-off reads)."""
    params = store.postgres_params
    if params is not None:
        connect, schema = params
        return PostgresReadModels(connect, schema, name)
    return SQLiteReadModels(":memory:" if data_dir is None else Path(data_dir) / READ_MODELS_FILE, name)


def _to_format_params(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def _to_postgres_ddl(statement: str) -> str:
    statement = re.sub(r"\s+WITHOUT ROWID\s*$", "", statement)
    statement = re.sub(r"\bBLOB\b", "BYTEA", statement)
    return re.sub(r"\bINTEGER\b", "BIGINT", statement)


class TrackedProjection(Protocol):
    def apply(self, db: Transaction, recorded: RecordedEvent) -> None:
        """Update this projection's rows for one event (inside the runner's transaction)."""


class ProjectionRunner:
    """Feeds the log, in order, to projections sharing one set of read models."""

    def __init__(self, store: EventStore, db: ReadModels, projections: list[TrackedProjection],
                 poll_seconds: float = 0.5, applies: bool = True):
        self.store = store
        self.db = db
        self.projections = projections
        self.poll_seconds = poll_seconds
        # False where a worker of its own (``run.py projections run``) feeds the shared read models: this
        # process only reads them, and follows the position the worker has applied.
        self.applies = applies
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.position = db.position()

    def catch_up(self) -> int:
        """Apply everything in the log after the tracked position; return how many events."""
        if not self.applies:
            self.position = self.db.position()
            return 0
        applied = 0
        while True:
            # A look without the lock first: most polls find nothing new.
            batch = list(self.store.read_all(after=self.position, limit=BATCH))
            if not batch:
                return applied
            with self.db.transaction() as tx:
                tracked = tx.position()  # another process may have applied some of it already
                if tracked != self.position:
                    self.position = tracked
                    batch = list(self.store.read_all(after=tracked, limit=BATCH))
                    if not batch:
                        continue
                for recorded in batch:
                    for projection in self.projections:
                        projection.apply(tx, recorded)
                tx.track(batch[-1].position or tracked)
            self.position = batch[-1].position or self.position
            applied += len(batch)
            if any(r.type_name in SCRUB_AFTER for r in batch):
                self.db.scrub([t for p in self.projections for t in getattr(p, "tables", ())
                               if not t.endswith("_fts")])

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
                    if self.applies:
                        self.store.wait_for_append(self.poll_seconds)
                    else:
                        self._stop.wait(0.05)  # the worker's position moves without an append here
            except Exception as e:  # the store is down, or a bug: keep the bot up, try again shortly
                if self._stop.is_set() or self.store.closed:  # closed under us: nothing more to follow
                    return
                if is_outage(e):
                    log.warning("read models wait for the store (%s); retrying", str(e).splitlines()[0][:200])
                else:
                    log.exception("read models could not catch up; retrying")
                self._stop.wait(1.0)
