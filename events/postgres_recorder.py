"""The library's PostgreSQL application recorder, appending a batch in one round trip.

An append must take the log's table lock (so notification ids are committed in order), NOTIFY the
followers, insert the events and link each into the log's hash chain (``events.chain``) under that lock.
Done statement by statement from Python that is seven round trips with the lock held, and under load
each of them also waits for the GIL: appends from a busy process queued behind the lock (PostgreSQL ran
at less than half of SQLite's msgs/s, bench/load.py). ``parley_append``, a PL/pgSQL function created with
the tables, does all of it on the server in one call and one implicit transaction, computing the same
hashes as ``events.chain.link`` (sha256 over the same header and the stored bytes). The library's
pipelined insert is not used: over a Unix socket a pipelined batch of a few hundred KB deadlocked (client
and server both blocked writing into full socket buffers, psycopg 3.3, 2,500 events).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier, Literal

from events.chain import CHAIN_TABLE, GENESIS


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


APPEND_FUNCTION = "parley_append"

# One batch: lock, notify, insert, chain. The hash is events.chain.link's:
# sha256(f"{previous}\n{position}\n{version}\n{len(stream)}:{stream}\n{len(topic)}:{topic}\n" + state),
# lengths in UTF-8 bytes.
APPEND_BODY = """
DECLARE
  e record;
  pos bigint;
  previous text;
BEGIN
  SET LOCAL lock_timeout = '{lock_timeout}s';
  LOCK TABLE {events} IN EXCLUSIVE MODE;
  NOTIFY {channel};
  SELECT c.hash INTO previous FROM {chain} c ORDER BY c.position DESC LIMIT 1;
  previous := COALESCE(previous, {genesis});
  FOR e IN SELECT * FROM unnest(batch) LOOP
    INSERT INTO {events} (originator_id, originator_version, topic, state)
      VALUES (e.originator_id, e.originator_version, e.topic, e.state) RETURNING notification_id INTO pos;
    previous := encode(sha256(convert_to(
        previous || E'\\n' || pos::text || E'\\n' || e.originator_version::text || E'\\n'
        || octet_length(convert_to(e.originator_id::text, 'UTF8'))::text || ':' || e.originator_id::text || E'\\n'
        || octet_length(convert_to(e.topic, 'UTF8'))::text || ':' || e.topic || E'\\n', 'UTF8') || e.state), 'hex');
    INSERT INTO {chain} (position, hash) VALUES (pos, previous);
    RETURN NEXT pos;
  END LOOP;
END;
"""


class UnpipelinedPostgresApplicationRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        schema = Identifier(self.datastore.schema)
        self.chain_table = SQL("{schema}.{table}").format(schema=schema, table=Identifier(CHAIN_TABLE))
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {table} (position bigint PRIMARY KEY, hash text NOT NULL)").format(
            table=self.chain_table))
        function = SQL("{schema}.{name}").format(schema=schema, name=Identifier(APPEND_FUNCTION))
        body = SQL(APPEND_BODY).format(
            lock_timeout=SQL(str(int(self.datastore.lock_timeout))),
            events=SQL("{schema}.{table}").format(schema=schema, table=Identifier(self.events_table_name)),
            channel=Identifier(self.channel_name), chain=self.chain_table, genesis=Literal(GENESIS))
        self.sql_create_statements.append(SQL(
            "CREATE OR REPLACE FUNCTION {function}(batch {schema}.{event}[]) RETURNS SETOF bigint "
            "LANGUAGE plpgsql AS $BODY${body}$BODY$").format(function=function, schema=schema,
                                                             event=Identifier(self.stored_event_type_name), body=body))
        self.append_statement = SQL("SELECT * FROM {function}(%s)").format(function=function)

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
        batch = [self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
                 for e in stored_events]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:  # autocommit: one transaction
            curs.execute(self.append_statement, (batch,), prepare=True)
            return [row[APPEND_FUNCTION] for row in curs.fetchall()]

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
