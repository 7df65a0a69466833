"""Conversations as the transports need to see them.

- which conversation a platform message belongs to (a user's message or one of Parley's replies), so a
  reply to an answer continues that answer's conversation;
- the newest user message recorded per channel, so the bot can read what it missed while it was down;
- which conversations have messages received but not answered (to finish after a restart).
"""
from __future__ import annotations

from events import RecordedEvent
from events.catalog.conversation import MessageReceived, MessageRejected, ResponseFailed, ResponseGenerated
from events.catalog.delivery import ReplySent
from events.catalog.desk import TransportConnected
from events.catalog.hearing import AudioReceived
from projections.unfinished import Unfinished
from projections.tracking import ReadModels, Transaction

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS message_conversation (source TEXT, message_id TEXT, conversation_id TEXT, "
    "PRIMARY KEY (source, message_id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS channel_newest (source TEXT, channel_id TEXT, message_id TEXT, "
    "PRIMARY KEY (source, channel_id)) WITHOUT ROWID",
    "DROP TABLE IF EXISTS unanswered",  # read_models:6 and before (no source and channel)
    "CREATE TABLE IF NOT EXISTS unanswered_messages (conversation_id TEXT, message_id TEXT, source TEXT, "
    "channel_id TEXT, PRIMARY KEY (conversation_id, message_id)) WITHOUT ROWID",
    # The newest platform id seen per transport (a connection, a message, a reply): Parley was
    # connected then, so a catch-up reads channels it never answered in from there.
    "CREATE TABLE IF NOT EXISTS source_mark (source TEXT PRIMARY KEY, mark TEXT) WITHOUT ROWID",
]


SET_CONVERSATION = ("INSERT INTO message_conversation VALUES (?, ?, ?) ON CONFLICT (source, message_id) "
                    "DO UPDATE SET conversation_id=excluded.conversation_id")


class Conversations:
    name = "conversations"
    tables = ('message_conversation', 'channel_newest', 'unanswered_messages', 'source_mark')

    def __init__(self, db: ReadModels):
        self.db = db
        db.create(SCHEMA)

    def apply(self, db: Transaction, recorded: RecordedEvent) -> None:
        e = recorded.event
        if isinstance(e, (MessageReceived, MessageRejected, AudioReceived)):
            db.execute(SET_CONVERSATION, (e.source, e.message_id, e.conversation_id))
            newest = db.execute("SELECT message_id FROM channel_newest WHERE source=? AND channel_id=?",
                                (e.source, e.channel_id)).fetchone()
            if newest is None or _newer(e.message_id, newest[0]):
                db.execute("INSERT INTO channel_newest VALUES (?, ?, ?) ON CONFLICT (source, channel_id) "
                           "DO UPDATE SET message_id=excluded.message_id", (e.source, e.channel_id, e.message_id))
            if isinstance(e, MessageReceived):
                db.execute("INSERT INTO unanswered_messages VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                           (e.conversation_id, e.message_id, e.source, e.channel_id))
            _advance_mark(db, e.source, e.message_id)
        elif isinstance(e, (ResponseGenerated, ResponseFailed)):
            db.execute("DELETE FROM unanswered_messages WHERE conversation_id=? AND message_id=?",
                       (e.conversation_id, e.message_id))
        elif isinstance(e, ReplySent):
            db.executemany(SET_CONVERSATION, [(e.source, sent, e.conversation_id) for sent in e.sent_message_ids])
            for sent in e.sent_message_ids:
                _advance_mark(db, e.source, sent)
        elif isinstance(e, TransportConnected):
            _advance_mark(db, e.source, e.mark)

    def conversation_of(self, source: str, message_id: str) -> str | None:
        rows = self.db.query("SELECT conversation_id FROM message_conversation WHERE source=? AND message_id=?",
                             (source, message_id))
        return rows[0][0] if rows else None

    def newest_message(self, source: str, channel_id: str) -> str | None:
        rows = self.db.query("SELECT message_id FROM channel_newest WHERE source=? AND channel_id=?",
                             (source, channel_id))
        return rows[0][0] if rows else None

    def channels(self, source: str) -> list[str]:
        return [r[0] for r in self.db.query("SELECT channel_id FROM channel_newest WHERE source=?", (source,))]

    def newest_by_channel(self, source: str) -> dict[str, str]:
        return dict(self.db.query("SELECT channel_id, message_id FROM channel_newest WHERE source=?", (source,)))

    def mark(self, source: str) -> str | None:
        """The newest platform id seen from ``source``: Parley was connected at that moment."""
        rows = self.db.query("SELECT mark FROM source_mark WHERE source=?", (source,))
        return rows[0][0] if rows else None

    def unanswered_conversations(self) -> list[Unfinished]:
        """One message of each conversation with a question never answered (a crash between)."""
        rows = self.db.query("SELECT source, conversation_id, channel_id, MIN(message_id) FROM unanswered_messages "
                             "GROUP BY source, conversation_id, channel_id")
        return [Unfinished(*r) for r in rows]


def _advance_mark(db: Transaction, source: str, mark: str) -> None:
    if not mark.isdigit():
        return  # only platforms whose ids grow with time (Discord snowflakes) have marks
    current = db.execute("SELECT mark FROM source_mark WHERE source=?", (source,)).fetchone()
    if current is None or _newer(mark, current[0]):
        db.execute("INSERT INTO source_mark VALUES (?, ?) ON CONFLICT (source) DO UPDATE SET mark=excluded.mark",
                   (source, mark))


def _newer(candidate: str, current: str) -> bool:
    if candidate.isdigit() and current.isdigit():
        return int(candidate) > int(current)  # Discord snowflakes grow with time
    return True
