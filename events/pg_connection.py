"""One psycopg connection that outlives a PostgreSQL restart: when the server has dropped it (restart,
failover, idle timeout), the next statement opens a new one and runs once more. For the small tables kept
beside the log (people's keys, snapshots), whose every statement is idempotent (upserts, deletes, reads), so
running one twice is harmless; the log itself goes through the library's recorder and its pool."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ReconnectingConnection:
    def __init__(self, connect: dict[str, Any], setup: Callable[[Any], None] = lambda conn: None):
        import psycopg

        self._psycopg = psycopg
        self._connect = connect
        self._setup = setup  # run on each new connection (search_path and the like)
        self._conn: Any = None
        self.connection()

    def connection(self) -> Any:
        """The live connection (a new one if the last was dropped); raises psycopg's OperationalError while the
        server is unreachable (``events.store.is_outage``: retried by the callers)."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            conn = self._psycopg.connect(**self._connect, autocommit=True)
            self._setup(conn)
            self._conn = conn
        return self._conn

    def execute(self, sql: str, params: tuple = ()) -> Any:
        try:
            return self.connection().execute(sql, params)
        except self._psycopg.OperationalError:
            if self._conn is not None and not (self._conn.closed or self._conn.broken):
                raise  # the statement failed, not the connection
            return self.connection().execute(sql, params)  # dropped under it: once more on a new one

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
