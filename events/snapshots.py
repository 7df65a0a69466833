"""Snapshots of actors' states, so an actor whose stream has grown long starts from the newest one and
folds only what came after it (a 10,000-turn conversation, a learning stream of 100,000 events).

A snapshot is a cache, never the record: it is keyed by the stream, the stream version it was folded up to,
and a fingerprint of the code that folded it (the decider's source), so a new Parley version ignores the old
ones and folds from the log again. It holds what the state holds, people's words included (like the read
models): every snapshot is deleted when a person is forgotten (``clear``), with SQLite's secure delete.

States are frozen dataclasses of plain values, tuples, frozensets and mappings; they are written as tagged
JSON, and read back only into dataclasses of Parley's own ``actors`` package (no pickle: nothing in the
table can run code).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import logging
import sqlite3
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("parley.snapshots")
SNAPSHOTS_FILE = "snapshots.sqlite3"
TABLE = "state_snapshots"
SCHEMA = f"CREATE TABLE IF NOT EXISTS {TABLE} (stream TEXT PRIMARY KEY, code TEXT NOT NULL, version BIGINT NOT NULL, " \
         "state BYTEA NOT NULL)"


def fingerprint(evolve: Any) -> str:
    """What folded the state: the source of the decider module of ``evolve``."""
    module = sys.modules.get(getattr(evolve, "__module__", ""), None)
    try:
        source = inspect.getsource(module) if module is not None else repr(evolve)
    except (OSError, TypeError):
        source = repr(evolve)
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return {"@": f"{cls.__module__}:{cls.__qualname__}",
                "f": {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, tuple):
        return {"t": [to_plain(v) for v in value]}
    if isinstance(value, frozenset | set):
        return {"s": [to_plain(v) for v in value]}
    if isinstance(value, Mapping):
        return {"m": [[to_plain(k), to_plain(v)] for k, v in value.items()]}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"a state holds a {type(value).__name__}, which a snapshot cannot keep")


def from_plain(value: Any) -> Any:
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "@" in value:
        module, _, name = value["@"].partition(":")
        if not module.startswith("actors."):
            raise ValueError(f"a snapshot names {value['@']}, which is not a state of Parley's actors")
        cls: Any = importlib.import_module(module)
        for part in name.split("."):
            cls = getattr(cls, part)
        if not dataclasses.is_dataclass(cls):
            raise ValueError(f"{value['@']} is not a state")
        return cls(**{k: from_plain(v) for k, v in value["f"].items()})
    if "t" in value:
        return tuple(from_plain(v) for v in value["t"])
    if "s" in value:
        return frozenset(from_plain(v) for v in value["s"])
    if "m" in value:
        return {from_plain(k): from_plain(v) for k, v in value["m"]}
    raise ValueError("not a snapshot value")


def encode(state: Any) -> bytes:
    return orjson.dumps(to_plain(state))


def decode(data: bytes) -> Any:
    return from_plain(orjson.loads(data))


class SQLiteSnapshots:
    def __init__(self, path: Path):
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a cache: a power cut costs a refold, never a wrong state
        self._db.execute("PRAGMA secure_delete=ON")  # deleted snapshots leave no words in free pages
        self._db.execute(SCHEMA.replace("BYTEA", "BLOB").replace("BIGINT", "INTEGER"))

    def get(self, stream: str, code: str) -> tuple[int, bytes] | None:
        with self._lock:
            row = self._db.execute(f"SELECT version, state FROM {TABLE} WHERE stream=? AND code=?",
                                   (stream, code)).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def put(self, stream: str, code: str, version: int, state: bytes) -> None:
        with self._lock:
            self._db.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?) ON CONFLICT (stream) DO UPDATE SET "
                             "code=excluded.code, version=excluded.version, state=excluded.state "
                             f"WHERE excluded.version > {TABLE}.version OR excluded.code <> {TABLE}.code",
                             (stream, code, version, state))

    def clear(self) -> None:
        with self._lock:
            self._db.execute(f"DELETE FROM {TABLE}")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the deleted pages leave the WAL file too

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresSnapshots:
    """A table beside the log, shared by every process on the store (a snapshot one wrote, all use)."""

    def __init__(self, connect: dict[str, Any], schema: str):
        from events.pg_connection import ReconnectingConnection
        from events.postgres_recorder import creating_schema

        self._lock = threading.Lock()
        self._table = f'"{schema}".{TABLE}'
        self._conn = ReconnectingConnection(connect)
        with creating_schema(self._conn.connection()):
            self._conn.execute(SCHEMA.replace(TABLE, self._table, 1))

    def _run(self, sql: str, params: tuple = ()) -> Any:
        with self._lock:
            cursor = self._conn.execute(sql, params)
            return cursor.fetchone() if sql.startswith("SELECT") else None

    def get(self, stream: str, code: str) -> tuple[int, bytes] | None:
        row = self._run(f"SELECT version, state FROM {self._table} WHERE stream=%s AND code=%s", (stream, code))
        return (int(row[0]), bytes(row[1])) if row else None

    def put(self, stream: str, code: str, version: int, state: bytes) -> None:
        self._run(f"INSERT INTO {self._table} AS s VALUES (%s, %s, %s, %s) ON CONFLICT (stream) DO UPDATE SET "
                  "code=excluded.code, version=excluded.version, state=excluded.state "
                  "WHERE excluded.version > s.version OR excluded.code <> s.code", (stream, code, version, state))

    def clear(self) -> None:
        self._run(f"DELETE FROM {self._table}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
