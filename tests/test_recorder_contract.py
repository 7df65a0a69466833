"""The eventsourcing library's own recorder test cases, run against Parley's recorders (SQLite and
PostgreSQL): what the library promises of an application recorder holds for Parley's subclasses too."""
from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import psycopg
from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory
from eventsourcing.tests.persistence import ApplicationRecorderTestCase, NonInterleavingNotificationIDsBaseCase

from events.store import _postgres_env
from tests.conftest import drop_schema, postgres_schema_url


class SQLiteRecorder:
    def setUp(self) -> None:  # noqa: N802  (unittest's name)
        self._dir = tempfile.TemporaryDirectory()
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:  # noqa: N802
        super().tearDown()  # type: ignore[misc]
        self._dir.cleanup()

    def create_recorder(self) -> ApplicationRecorder:
        factory = InfrastructureFactory.construct({
            "PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(Path(self._dir.name) / "events.db"),
            "SQLITE_LOCK_TIMEOUT": "10",
            "APPLICATION_RECORDER_TOPIC": "events.sqlite_recorder:BatchSQLiteApplicationRecorder"})
        return factory.application_recorder()


class PostgresRecorder:
    def setUp(self) -> None:  # noqa: N802
        self._schema = f"t_{uuid.uuid4().hex[:12]}"
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:  # noqa: N802
        super().tearDown()  # type: ignore[misc]
        drop_schema(self._schema)

    def create_recorder(self) -> ApplicationRecorder:
        env, _ = _postgres_env(postgres_schema_url(self._schema))
        return InfrastructureFactory.construct(env).application_recorder()


class TestSQLiteApplicationRecorder(SQLiteRecorder, ApplicationRecorderTestCase):
    pass


class TestSQLiteNonInterleavingNotificationIDs(SQLiteRecorder, NonInterleavingNotificationIDsBaseCase):
    pass


class TestPostgresApplicationRecorder(PostgresRecorder, ApplicationRecorderTestCase):
    pass


class TestPostgresNonInterleavingNotificationIDs(PostgresRecorder, NonInterleavingNotificationIDsBaseCase):
    pass


assert psycopg  # the PostgreSQL cases need the driver the store uses
