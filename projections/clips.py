"""Audio clips received but not transcribed yet (a restart finishes them)."""
from __future__ import annotations

from events import RecordedEvent
from events.catalog.hearing import AudioReceived, TranscriptionCompleted, TranscriptionFailed
from projections.unfinished import Unfinished
from projections.tracking import ReadModels, Transaction

SCHEMA = [
    "DROP TABLE IF EXISTS untranscribed",  # read_models:6 and before (no conversation and channel)
    "CREATE TABLE IF NOT EXISTS untranscribed_clips (source TEXT, message_id TEXT, position INTEGER, "
    "conversation_id TEXT, channel_id TEXT, PRIMARY KEY (source, message_id))",
]


class Clips:
    name = "clips"
    tables = ('untranscribed_clips',)

    def __init__(self, db: ReadModels):
        self.db = db
        db.create(SCHEMA)

    def apply(self, db: Transaction, recorded: RecordedEvent) -> None:
        e = recorded.event
        if isinstance(e, AudioReceived):
            db.execute("INSERT INTO untranscribed_clips VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       (e.source, e.message_id, recorded.position, e.conversation_id, e.channel_id))
        elif isinstance(e, (TranscriptionCompleted, TranscriptionFailed)):
            db.execute("DELETE FROM untranscribed_clips WHERE source=? AND message_id=?", (e.source, e.message_id))

    def untranscribed(self) -> list[Unfinished]:
        """Clips received and never transcribed (a crash between), oldest first."""
        return [Unfinished(*r) for r in self.db.query(
            "SELECT source, conversation_id, channel_id, message_id FROM untranscribed_clips ORDER BY position")]
