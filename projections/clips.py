"""Audio clips received but not transcribed yet (a restart finishes them)."""
from __future__ import annotations

from events import RecordedEvent
from events.catalog.hearing import AudioReceived, TranscriptionCompleted, TranscriptionFailed
from projections.tracking import ReadModels, Transaction

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS untranscribed (source TEXT, message_id TEXT, position INTEGER, "
    "PRIMARY KEY (source, message_id))",
]


class Clips:
    name = "clips"
    tables = ('untranscribed',)

    def __init__(self, db: ReadModels):
        self.db = db
        db.create(SCHEMA)

    def apply(self, db: Transaction, recorded: RecordedEvent) -> None:
        e = recorded.event
        if isinstance(e, AudioReceived):
            db.execute("INSERT INTO untranscribed VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                       (e.source, e.message_id, recorded.position))
        elif isinstance(e, (TranscriptionCompleted, TranscriptionFailed)):
            db.execute("DELETE FROM untranscribed WHERE source=? AND message_id=?", (e.source, e.message_id))

    def untranscribed(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.db.query("SELECT source, message_id FROM untranscribed ORDER BY position")]
