"""People's keys, outside the log: ``keys.sqlite3`` in the data dir beside an SQLite log, a table of
its own beside a PostgreSQL one. Deleting a key forgets a person (``events.personal``). Keys are never
logged, exported or put in an event."""
from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

KEYS_FILE = "keys.sqlite3"


class SQLiteKeys:
    def __init__(self, path: Path, create: bool = True):
        self.path = path
        self._lock = threading.Lock()
        self._cache: dict[str, bytes] = {}
        self._ciphers: dict[str, object] = {}
        self._db: sqlite3.Connection | None = None
        if create or path.exists():
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA secure_delete=ON")  # a deleted key is overwritten on disk, not just unlinked
            self._db.execute("CREATE TABLE IF NOT EXISTS person_keys (person TEXT PRIMARY KEY, key BLOB NOT NULL)")
            try:
                os.chmod(path, 0o600)
            except OSError:
                pass

    def key_for(self, person: str) -> bytes:
        with self._lock:
            key = self._cache.get(person) or self._load(person)
            if key is None:
                assert self._db is not None, "the key store was opened read-only"
                self._db.execute("INSERT INTO person_keys VALUES (?, ?) ON CONFLICT (person) DO NOTHING",
                                 (person, os.urandom(32)))
                key = self._load(person)
            assert key is not None
            return key

    def key_of(self, person: str) -> bytes | None:
        with self._lock:
            return self._cache.get(person) or self._load(person)

    def cipher_for(self, person: str) -> object:
        cipher = self._ciphers.get(person)
        if cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            cipher = self._ciphers[person] = AESGCM(self.key_for(person))
        return cipher

    def cipher_of(self, person: str) -> object | None:
        cipher = self._ciphers.get(person)
        if cipher is None:
            key = self.key_of(person)
            if key is None:
                return None
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            cipher = self._ciphers[person] = AESGCM(key)
        return cipher

    def evict(self, person: str) -> None:
        """Drop the person's key from memory (another process forgot them: the key is gone from the table)."""
        with self._lock:
            self._cache.pop(person, None)
            self._ciphers.pop(person, None)

    def forget(self, person: str) -> bool:
        with self._lock:
            self._cache.pop(person, None)
            self._ciphers.pop(person, None)
            if self._db is None:
                return False
            deleted = self._db.execute("DELETE FROM person_keys WHERE person = ?", (person,)).rowcount > 0
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return deleted

    def _load(self, person: str) -> bytes | None:
        if self._db is None:
            return None
        row = self._db.execute("SELECT key FROM person_keys WHERE person = ?", (person,)).fetchone()
        if row is not None:
            self._cache[person] = bytes(row[0])
        return bytes(row[0]) if row else None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


class PostgresKeys(SQLiteKeys):
    """The same, as a table beside the log's in its PostgreSQL schema."""

    def __init__(self, connect: dict[str, Any], schema: str, create: bool = True):
        from events.pg_connection import ReconnectingConnection
        from events.postgres_recorder import creating_schema

        self._lock = threading.Lock()
        self._cache = {}
        self._ciphers = {}
        self._pg = ReconnectingConnection(connect, lambda conn: conn.execute(f'SET search_path TO "{schema}"'))
        with creating_schema(self._pg.connection()):
            self._pg.execute("CREATE TABLE IF NOT EXISTS person_keys (person TEXT PRIMARY KEY, key BYTEA NOT NULL)")
        self._db = None

    def key_for(self, person: str) -> bytes:
        with self._lock:
            key = self._cache.get(person) or self._load(person)
            if key is None:
                self._pg.execute("INSERT INTO person_keys VALUES (%s, %s) ON CONFLICT (person) DO NOTHING",
                                 (person, os.urandom(32)))
                key = self._load(person)
            assert key is not None
            return key

    def forget(self, person: str) -> bool:
        with self._lock:
            self._cache.pop(person, None)
            self._ciphers.pop(person, None)
            deleted = self._pg.execute("DELETE FROM person_keys WHERE person = %s", (person,)).rowcount > 0
            # A deleted row stays in the table's file until vacuumed; a rewrite leaves no copy of the key.
            self._pg.execute("VACUUM FULL person_keys")
            return deleted

    def _load(self, person: str) -> bytes | None:
        row = self._pg.execute("SELECT key FROM person_keys WHERE person = %s", (person,)).fetchone()
        if row is not None:
            self._cache[person] = bytes(row[0])
        return bytes(row[0]) if row else None

    def close(self) -> None:
        self._pg.close()
