"""The append-only log, on the ``eventsourcing`` library's persistence.

SQLite (WAL, a file in the data dir) by default; PostgreSQL when given a ``postgresql://`` URL.
Streams are the library's originator ids (text), stream versions its originator versions, and the
global position its notification id. Appends carry an expected version: a mismatch raises
``StreamConflict`` and the caller retries from fresh state.
"""
from __future__ import annotations

import logging
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
    StoredEvent,
)

import events.catalog  # noqa: F401  (the registry: every event type and upcaster, before anything is decoded)
from orjson import loads as orjson_loads
from events.codec import damaged, decode, decode_parsed, decode_time, encode
from events.personal import PERSONAL, unseal
from events.model import _TYPES as event_types
from events.model import _shape as event_shape
from events.model import DamagedEvent, DamagedRecord, Event, RecordedEvent

log = logging.getLogger("parley.store")

SQLITE_FILE = "parley.sqlite3"
_new_tuple = tuple.__new__
new_object = object.__new__
set_attribute = object.__setattr__
_PAGE = 2000


# Per type name: (class, current version, field names) for types whose fields need no conversion on
# read (no tuples), else (None, 0, None): those take the general path.
_plain_types: dict[str, tuple] = {}


def damaged_event(position: int | None, stream: str, topic: str, error: BaseException) -> tuple[Event, datetime]:
    """A row that cannot be read, named by its position: logged once, kept in the log's order as a
    ``DamagedEvent`` (its time unknown: the epoch) that projections and actors pass over."""
    reason = str(damaged(topic, error))
    where = f"position {position}" if position is not None else "a position"
    log.error("the event at %s (stream %s) cannot be read: %s", where, stream, reason)
    return DamagedEvent(stored_type=topic, error=reason), datetime.fromtimestamp(0, timezone.utc)


def _plain_type(type_name: str) -> tuple:
    cls = event_types.get(type_name)
    info: tuple = (None, 0, None)
    if cls is not None and type_name not in PERSONAL:  # people's words are decrypted on the general path
        names, _, _, tuples = cls.__dict__.get("_shape") or event_shape(cls)
        if not tuples:
            info = (cls, cls.version, names)
    _plain_types[type_name] = info
    return info


_personal_types: dict[str, tuple] = {}  # the same, for types with people's words (decrypted first)


def _personal_type(type_name: str) -> tuple:
    cls = event_types.get(type_name)
    info: tuple = (None, 0, None)
    if cls is not None:
        names, _, _, tuples = cls.__dict__.get("_shape") or event_shape(cls)
        if not tuples:
            info = (cls, cls.version, names)
    _personal_types[type_name] = info
    return info


def _paged(select: Any, after: int, page: int = _PAGE) -> Iterator[Any]:
    """Rows (position first) from ``select(after, page)``, page after page, in order."""
    while True:
        rows = select(after, page)
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1][0]


class StreamConflict(Exception):
    """Someone else appended to the stream first: reload it and decide again."""

    def __init__(self, stream: str, expected_version: int):
        super().__init__(f"stream {stream!r} is no longer at version {expected_version}")
        self.stream = stream
        self.expected_version = expected_version


class StoreUnavailable(Exception):
    """The store cannot be opened or reached; the message says what to fix."""


class StoreMissing(StoreUnavailable):
    """A read-only command found no event store where the configuration points: nothing to read."""


def is_outage(error: BaseException) -> bool:
    """True for failures of the store itself (server down, connection lost, database locked), which
    pass with time, as opposed to a bad event or a bug: callers retry these without giving up."""
    if isinstance(error, (OperationalError, InterfaceError, StoreUnavailable)):
        return True
    # psycopg's own, where Parley talks to PostgreSQL beside the library (snapshots, read models, LISTEN):
    # a terminated connection (AdminShutdown), a refused one, a pool that timed out waiting for the server.
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))


class EventStore:
    def __init__(self, factory: InfrastructureFactory, recorder: ApplicationRecorder, description: str,
                 postgres_params: tuple[dict[str, Any], str] | None = None, keys: Any = None,
                 snapshots: Callable[[], Any] | None = None):
        self._factory = factory
        self._open_snapshots = snapshots  # events.snapshots, opened on first use (command-line tools never do)
        self._snapshots: Any = None
        self._snapshots_lock = threading.Lock()
        self.keys = keys  # people's keys (``events.keys``): their words are stored encrypted
        self._recorder = recorder
        self.description = description
        # PostgreSQL: (connection arguments, schema), for the read models kept beside the log.
        self.postgres_params = postgres_params
        self._appended = threading.Condition()
        self._closed = False
        self._listener: threading.Thread | None = None
        self.listening = threading.Event()  # PostgreSQL: set while LISTENing for other processes' appends

    # -- writing ---------------------------------------------------------------------------
    def append(self, stream: str, new_events: Sequence[Event], expected_version: int) -> list[RecordedEvent]:
        """Append ``new_events`` to ``stream``, which must hold exactly ``expected_version`` events."""
        if not new_events:
            return []
        if self._closed:  # the library would open a new connection: a stopped (or crashed) process writes nothing
            raise StoreUnavailable(f"the event store {self.description} is closed")
        now = datetime.now(timezone.utc)
        when = now.isoformat()
        stored = [
            StoredEvent(stream, expected_version + i + 1, e.type_name, encode(e, when, self.keys))
            for i, e in enumerate(new_events)
        ]
        try:
            positions = self._recorder.insert_events(stored) or [None] * len(stored)
        except IntegrityError as conflict:
            raise StreamConflict(stream, expected_version) from conflict
        with self._appended:
            self._appended.notify_all()
        return [
            RecordedEvent(pos, stream, s.originator_version, now, e)
            for pos, s, e in zip(positions, stored, new_events)
        ]

    # -- reading ---------------------------------------------------------------------------
    def read_stream(self, stream: str, after_version: int = 0) -> list[RecordedEvent]:
        rows = self._recorder.select_events(stream, gt=after_version or None)
        return [self._recorded(None, r) for r in rows]

    def stream_version(self, stream: str) -> int:
        last = self._recorder.select_events(stream, desc=True, limit=1)
        return last[0].originator_version if last else 0

    def head(self) -> int:
        """The position of the newest event (0 for an empty log)."""
        return self._recorder.max_notification_id() or 0

    def read_all(self, after: int = 0, types: Sequence[str] = (), limit: int | None = None) -> Iterator[RecordedEvent]:
        """Every event after global position ``after``, in order, read page by page."""
        yielded = 0
        fast = getattr(self._recorder, "select_notification_rows", None)
        while limit is None or yielded < limit:
            page = _PAGE if limit is None else min(_PAGE, limit - yielded)
            if fast is not None:
                rows = fast(after, page, types)
            else:
                rows = [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in
                        self._recorder.select_notifications(after, page, topics=types, inclusive_of_start=False)]
            # decode() and Event.from_data()'s fast path, inlined: this loop is how the whole log is
            # read, and a Python call per event is a tenth of its cost.
            last_text, last_at = "", None
            for position, stream, version, topic, state in rows:
                try:
                    doc = orjson_loads(state)
                    cls, current, names = _plain_types.get(topic) or _plain_type(topic)
                    data = doc["data"]
                    if cls is None and topic in PERSONAL:  # people's words: decrypted, then as plain ones
                        pcls, pcurrent, pnames = _personal_types.get(topic) or _personal_type(topic)
                        if pcls is not None and doc.get("v") == pcurrent and type(data) is dict:
                            unseal(topic, data, self.keys)
                            if data.keys() == pnames:
                                event = new_object(pcls)
                                set_attribute(event, "__dict__", data)
                                text = doc["at"]
                                if text != last_text:
                                    last_text, last_at = text, decode_time(text)
                                at = last_at
                            else:
                                event, at = decode_parsed(topic, doc, self.keys)
                        else:
                            event, at = decode_parsed(topic, doc, self.keys)
                    elif cls is not None and doc.get("v") == current and type(data) is dict and data.keys() == names:
                        event = new_object(cls)
                        set_attribute(event, "__dict__", data)
                        text = doc["at"]
                        if text != last_text:  # events appended together share their time
                            last_text, last_at = text, decode_time(text)
                        at = last_at
                    else:
                        event, at = decode(topic, state, self.keys)
                except Exception as e:  # noqa: BLE001  (a damaged or foreign row: named, kept, read past)
                    event, at = damaged_event(position, stream, topic, e)
                yield _new_tuple(RecordedEvent, (position, stream, version, at, event))
            yielded += len(rows)
            if len(rows) < page:
                return
            after = rows[-1][0]

    def stored_rows(self, after: int = 0) -> Iterator[tuple[int, str, int, str, bytes]]:
        """Every event as stored, undecoded: (position, stream, version, type, bytes), for the audit."""
        return _paged(self._recorder.select_notification_rows, after)  # type: ignore[attr-defined]

    def chained_rows(self, after: int = 0) -> Iterator[tuple[int, str, int, str, bytes, str | None]]:
        """Every event as stored with its chain hash (None when it has none), in order."""
        return _paged(self._recorder.select_chained_rows, after, _PAGE * 5)  # type: ignore[attr-defined]

    def chain(self, after: int = 0) -> Iterator[tuple[int, str]]:
        """The hash chain (``events.chain``): (position, hash), in order."""
        return _paged(self._recorder.select_chain, after)  # type: ignore[attr-defined]

    def hash_before(self, position: int) -> str | None:
        """The chain's hash nearest before ``position`` (None before the chain's start)."""
        return self._recorder.select_hash_before(position)  # type: ignore[attr-defined]

    def first_orphan_hash(self) -> int | None:
        return self._recorder.first_orphan_hash()  # type: ignore[attr-defined]

    def follow(self, after: int, stop: threading.Event, poll_seconds: float = 0.5) -> Iterator[RecordedEvent]:
        """Events after ``after`` as they are appended, until ``stop`` is set.

        Appends in this process wake the follower at once; appends by another process (PostgreSQL)
        are seen within ``poll_seconds``.
        """
        while not stop.is_set():
            found = False
            for recorded in self.read_all(after):
                found = True
                after = recorded.position or after
                yield recorded
                if stop.is_set():
                    return
            if not found:
                self.wait_for_append(poll_seconds)

    def wait_for_append(self, timeout: float) -> None:
        """Return when an event is appended, or ``timeout`` passes. On SQLite only this process's
        appends are heard; on PostgreSQL every process's, through the NOTIFY the library's recorder
        sends with each insert (LISTEN on its channel)."""
        if self.postgres_params is not None and self._listener is None and not self._closed:
            self._start_listening()
        with self._appended:
            self._appended.wait(timeout)

    def _start_listening(self) -> None:
        import psycopg

        connect, _ = self.postgres_params  # type: ignore[misc]
        channel = getattr(self._recorder, "channel_name", "")

        def listen() -> None:
            while not self._closed:
                try:
                    with psycopg.connect(**connect, autocommit=True) as conn:
                        conn.execute(f'LISTEN "{channel}"')
                        self.listening.set()
                        self.wake_followers()  # what others appended while it was not listening
                        while not self._closed:
                            for _ in conn.notifies(timeout=0.5, stop_after=1):
                                self.wake_followers()
                except psycopg.Error:  # the server went away: followers fall back to polling meanwhile
                    self.listening.clear()
                    if not self._closed:
                        threading.Event().wait(1.0)

        if channel:
            self._listener = threading.Thread(target=listen, name="store-listener", daemon=True)
            self._listener.start()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def snapshots(self) -> Any:
        """Where actors keep snapshots of long streams' states (``events.snapshots``), or None."""
        with self._snapshots_lock:
            if self._snapshots is None and self._open_snapshots is not None and not self._closed:
                self._snapshots = self._open_snapshots()
            return self._snapshots

    def wake_followers(self) -> None:
        with self._appended:
            self._appended.notify_all()

    def forgotten(self, person: str) -> None:
        """Another process forgot ``person``: no copy of their key stays in this one's memory."""
        if self.keys is not None:
            self.keys.evict(person)
        if self.snapshots is not None:  # they held the person's words as the states did
            self.snapshots.clear()

    def forget(self, person: str) -> bool:
        """Delete the person's key: their words in the log can no longer be read by anyone."""
        return self.keys.forget(person) if self.keys is not None else False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.wake_followers()
            self._factory.close()
            if self.keys is not None:
                self.keys.close()
            with self._snapshots_lock:
                if self._snapshots is not None:
                    self._snapshots.close()

    def _recorded(self, position: int | None, row: StoredEvent) -> RecordedEvent:
        try:
            event, at = decode(row.topic, row.state, self.keys)
        except DamagedRecord as e:
            event, at = damaged_event(position, str(row.originator_id), row.topic, e)
        return RecordedEvent(position, str(row.originator_id), row.originator_version, at, event)


def open_store(spec: str, data_dir: Path, create: bool = True) -> EventStore:
    """``spec`` is ``sqlite`` (a file in ``data_dir``) or a ``postgresql://`` URL.

    A PostgreSQL URL may name a schema with ``?schema=NAME``; it is created if missing. With
    ``create=False`` (read-only commands) nothing is created: a missing store raises ``StoreMissing``.
    """
    spec = (spec or "sqlite").strip()
    if spec == "sqlite":
        path = Path(data_dir).expanduser() / SQLITE_FILE
        if not create and not path.is_file():
            raise StoreMissing(f"there is no event store at {path} (nothing has been recorded with "
                               f"PARLEY_DATA_DIR={Path(data_dir).expanduser()}): run Parley there first, "
                               "or point PARLEY_DATA_DIR at the data dir you used")
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path),
               "SQLITE_LOCK_TIMEOUT": "10",
               "APPLICATION_RECORDER_TOPIC": "events.sqlite_recorder:BatchSQLiteApplicationRecorder"}
        description = f"sqlite:{path}"
    elif spec.startswith(("postgresql://", "postgres://")):
        env, description = _postgres_env(spec, create)
        if not create:
            env["CREATE_TABLE"] = "no"
    else:
        raise StoreUnavailable(f"PARLEY_EVENT_STORE must be 'sqlite' or a postgresql:// URL, not {spec!r}")
    env["ORIGINATOR_ID_TYPE"] = "text"
    try:
        factory = InfrastructureFactory.construct(env)
        recorder = factory.application_recorder()
        if not create:
            recorder.max_notification_id()  # a missing table is found here, not by the first command
    except PersistenceError as e:
        if not create and "does not exist" in str(e):
            raise StoreMissing(f"there is no Parley event store in {description} (nothing has been recorded "
                               "there yet)") from None
        raise StoreUnavailable(f"cannot open the event store {description}: {e}") from e
    except sqlite3.DatabaseError as e:
        raise StoreUnavailable(f"the event store {description} is damaged or not a Parley store ({e}): "
                               "restore it from a backup, or move it away to start a new one") from e
    except (OSError, sqlite3.Error) as e:
        raise StoreUnavailable(f"cannot open the event store {description}: {e}") from e
    postgres_params = None
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        postgres_params = ({"host": env["POSTGRES_HOST"], "port": int(env["POSTGRES_PORT"]),
                            "dbname": env["POSTGRES_DBNAME"], "user": env["POSTGRES_USER"],
                            "password": env["POSTGRES_PASSWORD"] or None, "connect_timeout": 5},
                           env.get("POSTGRES_SCHEMA", "public"))
    from events.keys import KEYS_FILE, PostgresKeys, SQLiteKeys

    from events.snapshots import SNAPSHOTS_FILE, PostgresSnapshots, SQLiteSnapshots

    keys = PostgresKeys(*postgres_params) if postgres_params is not None else \
        SQLiteKeys(Path(data_dir).expanduser() / KEYS_FILE, create)
    params = postgres_params
    snapshots = (lambda: PostgresSnapshots(*params)) if params is not None else \
        (lambda: SQLiteSnapshots(Path(data_dir).expanduser() / SNAPSHOTS_FILE)) if create else None
    return EventStore(factory, recorder, description, postgres_params, keys, snapshots)


def _postgres_env(url: str, create: bool = True) -> tuple[dict[str, str], str]:
    parts = urlparse(url)
    query = parse_qs(parts.query)
    schema = (query.get("schema") or [""])[0]
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        # ?host=/a/socket/dir is libpq's way to name a Unix socket (an embedded server listens on one).
        "POSTGRES_HOST": (query.get("host") or [""])[0] or parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "APPLICATION_RECORDER_TOPIC": "events.postgres_recorder:UnpipelinedPostgresApplicationRecorder",
    }
    # The description never shows the password: it is printed by `status`.
    description = f"postgresql://{env['POSTGRES_USER']}@{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}/{env['POSTGRES_DBNAME']}"
    if schema:
        if not schema.replace("_", "").isalnum():
            raise StoreUnavailable(f"invalid PostgreSQL schema name {schema!r}")
        env["POSTGRES_SCHEMA"] = schema
        description += f"?schema={schema}"
    _reach(env, schema if create else "")
    return env, description


def _reach(env: dict[str, str], schema: str) -> None:
    """Connect once, for a clear message when the server is not there; create ``schema`` if given
    (the library creates tables but expects their schema to exist)."""
    import psycopg

    try:
        with psycopg.connect(
            host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"], dbname=env["POSTGRES_DBNAME"],
            user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None,
            connect_timeout=5, autocommit=True,
        ) as conn:
            if schema:
                from events.postgres_recorder import creating_schema

                with creating_schema(conn):
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except psycopg.Error as e:
        raise StoreUnavailable(f"cannot reach PostgreSQL at {env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}: {e}") from e
