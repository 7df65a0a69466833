"""The library's SQLite application recorder, inserting a batch with one ``executemany``, and linking
each event into the log's hash chain (``events.chain``) in the same transaction.

eventsourcing's recorder runs one INSERT per event to learn each row's id (its notification id, our
global position). In one write transaction SQLite gives a plain rowid table consecutive rowids
(max + 1 each), so the ids of a batch are the last inserted rowid and the ones just before it: the same
answer, for about half the cost on 100-event batches (see bench/store_throughput.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from events.chain import CHAIN_TABLE, GENESIS, chain_rows


class BatchSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return super().construct_create_table_statements() + [
            f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} (position INTEGER PRIMARY KEY, hash TEXT NOT NULL)"]

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any) -> Sequence[int] | None:
        if len(stored_events) < 2:
            positions = list(super()._insert_events(c, stored_events) or [])
        else:
            # Ids as the library writes them (a UUID as its hex, as its own recorder does), so ``select_events``
            # finds a stream whatever the batch size.
            c.executemany(self.insert_events_statement,
                          [(s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                            s.originator_version, s.topic, s.state) for s in stored_events])
            c.execute("SELECT last_insert_rowid()")
            last = c.fetchone()[0]
            positions = list(range(last - len(stored_events) + 1, last + 1))
        # Inside the write transaction: no other writer can slip an event in between.
        c.execute(f"SELECT hash FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1")
        row = c.fetchone()
        c.executemany(f"INSERT INTO {CHAIN_TABLE} (position, hash) VALUES (?, ?)",
                      chain_rows(row[0] if row else GENESIS, positions, stored_events))
        return positions

    def select_notification_rows(self, after: int, limit: int, topics: Sequence[str] = ()) -> list[tuple]:
        """Like ``select_notifications(after, limit, topics=..., inclusive_of_start=False)``, as plain
        ``(id, stream, version, topic, state)`` tuples: reading the whole log builds no intermediate
        objects (a frozen ``Notification`` and an ``sqlite3.Row`` per event cost more than decoding it)."""
        statement = f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table_name} WHERE rowid>? "
        params: list[object] = [after]
        if topics:
            statement += f"AND topic IN ({','.join('?' * len(topics))}) "
            params += list(topics)
        statement += "ORDER BY rowid LIMIT ?"
        params.append(limit)
        with self.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None  # plain tuples for this cursor only
            cursor.execute(statement, params)
            return cursor.fetchall()

    def select_chain(self, after: int, limit: int) -> list[tuple[int, str]]:
        """(position, hash) of the hash chain after ``after``, in order ([] when the log predates it)."""
        with self.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None
            try:
                cursor.execute(f"SELECT position, hash FROM {CHAIN_TABLE} WHERE position>? ORDER BY position LIMIT ?",
                               (after, limit))
            except Exception as e:  # noqa: BLE001  (no such table: a log written before the chain)
                if "no such table" in str(e):
                    return []
                raise
            return cursor.fetchall()

    def select_chained_rows(self, after: int, limit: int) -> list[tuple]:
        """(position, stream, version, type, bytes, hash or None) after ``after``: the log joined with its
        chain, for the audit (one query instead of two walks)."""
        with self.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None
            cursor.execute(f"SELECT e.rowid, e.originator_id, e.originator_version, e.topic, e.state, c.hash "
                           f"FROM {self.events_table_name} e LEFT JOIN {CHAIN_TABLE} c ON c.position = e.rowid "
                           "WHERE e.rowid > ? ORDER BY e.rowid LIMIT ?", (after, limit))
            return cursor.fetchall()

    def first_orphan_hash(self) -> int | None:
        """The first position with a hash but no event (one was removed), if any."""
        with self.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None
            try:
                cursor.execute(f"SELECT MIN(position) FROM {CHAIN_TABLE} WHERE position NOT IN "
                               f"(SELECT rowid FROM {self.events_table_name})")
            except Exception as e:  # noqa: BLE001
                if "no such table" in str(e):
                    return None
                raise
            row = cursor.fetchone()
            return row[0] if row else None

    def select_hash_before(self, position: int) -> str | None:
        with self.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None
            cursor.execute(f"SELECT hash FROM {CHAIN_TABLE} WHERE position < ? ORDER BY position DESC LIMIT 1",
                           (position,))
            row = cursor.fetchone()
            return row[0] if row else None
