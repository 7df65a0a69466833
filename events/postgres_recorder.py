"""The library's PostgreSQL application recorder, inserting without psycopg's pipeline mode.

The library pipelines the table lock, the NOTIFY and the INSERT of a batch. Over a Unix socket (an
embedded server, or ``?host=/var/run/postgresql``) a pipelined batch of a few hundred KB deadlocks:
client and server both block writing into full socket buffers (seen with psycopg 3.3, 2,500 events).
The same three statements, in the same transaction, one after the other, never do; the lock that keeps
notification ids in commit order and the NOTIFY that wakes followers are unchanged.

Under that lock, in that transaction, each event is linked into the log's hash chain (``events.chain``):
concurrent writers from any number of processes still make one chain, in notification-id order.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from events.chain import CHAIN_TABLE, GENESIS, chain_rows


# PostgreSQL's CREATE ... IF NOT EXISTS is not safe when two sessions run it at once (a unique violation on
# pg_type or pg_namespace): every process creates Parley's schema, tables and types under this one lock.
SCHEMA_LOCK = 0x5041524C4559  # "PARLEY"


@contextmanager
def creating_schema(conn: Any) -> Iterator[None]:
    """A transaction on ``conn`` (a psycopg connection) holding the schema lock: what is created in it is
    created by one process at a time."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        yield


class UnpipelinedPostgresApplicationRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.chain_table = SQL("{schema}.{table}").format(schema=Identifier(self.datastore.schema),
                                                          table=Identifier(CHAIN_TABLE))
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {table} (position bigint PRIMARY KEY, hash text NOT NULL)").format(
            table=self.chain_table))

    def create_table(self) -> None:
        # The library creates types and tables in several transactions: hold the lock across all of them.
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_stored_events(curs, stored_events, **kwargs)  # lock table, NOTIFY, INSERT
            positions = self._fetch_ids_after_insert_events(curs, stored_events, **kwargs) or []
            curs.execute(SQL("SELECT hash FROM {table} ORDER BY position DESC LIMIT 1").format(table=self.chain_table))
            row = curs.fetchone()
            curs.executemany(SQL("INSERT INTO {table} (position, hash) VALUES (%s, %s)").format(table=self.chain_table),
                             chain_rows(row["hash"] if row else GENESIS, positions, stored_events))
            return positions

    def select_notification_rows(self, after: int, limit: int, topics: Sequence[str] = ()) -> list[tuple]:
        """``(id, stream, version, topic, state)`` tuples after ``after``, as the SQLite recorder gives."""
        statement = SQL("SELECT notification_id, originator_id, originator_version, topic, state FROM {schema}.{table} "
                        "WHERE notification_id>%s").format(schema=Identifier(self.datastore.schema),
                                                           table=Identifier(self.events_table_name))
        params: list[object] = [after]
        if topics:
            statement += SQL(" AND topic = ANY(%s)")
            params.append(list(topics))
        statement += SQL(" ORDER BY notification_id LIMIT %s")
        params.append(limit)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params)
            return [(r["notification_id"], r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]))
                    for r in curs.fetchall()]

    def select_chain(self, after: int, limit: int) -> list[tuple[int, str]]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT position, hash FROM {table} WHERE position>%s ORDER BY position LIMIT %s").format(
                table=self.chain_table), (after, limit))
            return [(r["position"], r["hash"]) for r in curs.fetchall()]

    def select_chained_rows(self, after: int, limit: int) -> list[tuple]:
        statement = SQL("SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state, c.hash "
                        "FROM {schema}.{table} e LEFT JOIN {chain} c ON c.position = e.notification_id "
                        "WHERE e.notification_id > %s ORDER BY e.notification_id LIMIT %s").format(
            schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name), chain=self.chain_table)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (after, limit))
            return [(r["notification_id"], r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]),
                     r["hash"]) for r in curs.fetchall()]

    def first_orphan_hash(self) -> int | None:
        statement = SQL("SELECT MIN(c.position) AS p FROM {chain} c LEFT JOIN {schema}.{table} e "
                        "ON e.notification_id = c.position WHERE e.notification_id IS NULL").format(
            schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name), chain=self.chain_table)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement)
            row = curs.fetchone()
            return row["p"] if row else None

    def select_hash_before(self, position: int) -> str | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT hash FROM {chain} WHERE position < %s ORDER BY position DESC LIMIT 1").format(
                chain=self.chain_table), (position,))
            row = curs.fetchone()
            return row["hash"] if row else None
