"""Replies decided but not yet delivered: what the outbox must (re)send after a restart."""
from __future__ import annotations

import orjson

from events import RecordedEvent
from events.catalog import REPLY_EVENTS, AboutMessage, ReplyDeliveryFailed, ReplySent
from events.model import event_class
from projections.tracking import ReadModels, Transaction

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS pending_reply (source TEXT, message_id TEXT, position INTEGER, type TEXT, "
    "data BLOB, PRIMARY KEY (source, message_id))",
]


class PendingReplies:
    def __init__(self, db: ReadModels):
        self.db = db
        db.create(SCHEMA)

    def apply(self, db: Transaction, recorded: RecordedEvent) -> None:
        e = recorded.event
        if isinstance(e, REPLY_EVENTS):
            db.execute("INSERT INTO pending_reply VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       (e.source, e.message_id, recorded.position, e.type_name, orjson.dumps(e.to_data())))
        elif isinstance(e, (ReplySent, ReplyDeliveryFailed)):
            db.execute("DELETE FROM pending_reply WHERE source=? AND message_id=?", (e.source, e.message_id))

    def pending(self, source: str | None = None) -> list[AboutMessage]:
        sql = "SELECT type, data FROM pending_reply {} ORDER BY position".format("WHERE source=?" if source else "")
        rows = self.db.query(sql, (source,) if source else ())
        return [event_class(kind).from_data(orjson.loads(bytes(data))) for kind, data in rows]  # type: ignore[union-attr,misc]
