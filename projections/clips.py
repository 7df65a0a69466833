"""Audio clips received but not transcribed yet, and voice messages answered in writing whose voice-message
answer was not prepared yet (a crash while it was being spoken): a restart finishes both."""
from __future__ import annotations

from events import RecordedEvent
from events.catalog.conversation import ResponseFailed, ResponseGenerated
from events.catalog.hearing import AudioReceived, TranscriptionCompleted, TranscriptionFailed
from events.catalog.speaking import VoiceReplyPrepared, VoiceReplySkipped
from projections.unfinished import Unfinished
from projections.tracking import ReadModels, Transaction

SCHEMA = [
    "DROP TABLE IF EXISTS untranscribed",  # read_models:6 and before (no conversation and channel)
    "CREATE TABLE IF NOT EXISTS untranscribed_clips (source TEXT, message_id TEXT, position INTEGER, "
    "conversation_id TEXT, channel_id TEXT, PRIMARY KEY (source, message_id))",
    # answer: the log position of the written answer (NULL: not answered yet)
    "CREATE TABLE IF NOT EXISTS unspoken_answers (source TEXT, message_id TEXT, conversation_id TEXT, "
    "channel_id TEXT, answer BIGINT, PRIMARY KEY (source, message_id))",
]


class Clips:
    name = "clips"
    tables = ('untranscribed_clips', 'unspoken_answers')

    def __init__(self, db: ReadModels):
        self.db = db
        db.create(SCHEMA)

    def apply(self, db: Transaction, recorded: RecordedEvent) -> None:
        e = recorded.event
        if isinstance(e, AudioReceived):
            db.execute("INSERT INTO untranscribed_clips VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       (e.source, e.message_id, recorded.position, e.conversation_id, e.channel_id))
            if e.voice_message:
                db.execute("INSERT INTO unspoken_answers VALUES (?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING",
                           (e.source, e.message_id, e.conversation_id, e.channel_id))
        elif isinstance(e, (TranscriptionCompleted, TranscriptionFailed)):
            db.execute("DELETE FROM untranscribed_clips WHERE source=? AND message_id=?", (e.source, e.message_id))
            if isinstance(e, TranscriptionFailed):  # told in writing only
                db.execute("DELETE FROM unspoken_answers WHERE source=? AND message_id=?", (e.source, e.message_id))
        elif isinstance(e, ResponseGenerated) and e.heard:
            db.execute("UPDATE unspoken_answers SET answer=? WHERE source=? AND message_id=?",
                       (recorded.position, e.source, e.message_id))
        elif isinstance(e, (VoiceReplyPrepared, VoiceReplySkipped, ResponseFailed)):
            db.execute("DELETE FROM unspoken_answers WHERE source=? AND message_id=?", (e.source, e.message_id))

    def untranscribed(self) -> list[Unfinished]:
        """Clips received and never transcribed (a crash between), oldest first."""
        return [Unfinished(*r) for r in self.db.query(
            "SELECT source, conversation_id, channel_id, message_id FROM untranscribed_clips ORDER BY position")]

    def unspoken(self) -> list[tuple[Unfinished, int]]:
        """Voice messages answered in writing and not yet in speech: where, and the answer's log position."""
        rows = self.db.query("SELECT source, conversation_id, channel_id, message_id, answer FROM unspoken_answers "
                             "WHERE answer IS NOT NULL ORDER BY answer")
        return [(Unfinished(*r[:4]), int(r[4])) for r in rows]
