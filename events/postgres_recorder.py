"""The library's PostgreSQL application recorder, inserting without psycopg's pipeline mode.

The library pipelines the table lock, the NOTIFY and the INSERT of a batch. Over a Unix socket (an
embedded server, or ``?host=/var/run/postgresql``) a pipelined batch of a few hundred KB deadlocks:
client and server both block writing into full socket buffers (seen with psycopg 3.3, 2,500 events).
The same three statements, in the same transaction, one after the other, never do; the lock that keeps
notification ids in commit order and the NOTIFY that wakes followers are unchanged.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry


class UnpipelinedPostgresApplicationRecorder(PostgresApplicationRecorder):
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_stored_events(curs, stored_events, **kwargs)  # lock table, NOTIFY, INSERT
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
