"""Replies decided but not yet delivered: what the outbox must (re)send after a restart."""
from __future__ import annotations

import orjson

from events import RecordedEvent
from events.catalog.delivery import REPLY_EVENTS, ReplyDeliveryFailed, ReplySent, reply_part
from events.catalog.messages import AboutMessage
from events.model import event_class
from projections.tracking import ReadModels, Transaction

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS pending_delivery (source TEXT, message_id TEXT, part TEXT, position INTEGER, "
    "type TEXT, data BLOB, PRIMARY KEY (source, message_id, part))",
]


class PendingReplies:
    name = "deliveries"
    tables = ('pending_delivery',)

    def __init__(self, db: ReadModels):
        self.db = db
        db.create(SCHEMA)

    def apply(self, db: Transaction, recorded: RecordedEvent) -> None:
        e = recorded.event
        if isinstance(e, REPLY_EVENTS):
            db.execute("INSERT INTO pending_delivery VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       (e.source, e.message_id, reply_part(e), recorded.position, e.type_name,
                        orjson.dumps(e.to_data())))
        elif isinstance(e, (ReplySent, ReplyDeliveryFailed)):
            db.execute("DELETE FROM pending_delivery WHERE source=? AND message_id=? AND part=?",
                       (e.source, e.message_id, e.part))

    def pending(self, source: str | None = None) -> list[AboutMessage]:
        sql = "SELECT type, data FROM pending_delivery {} ORDER BY position".format("WHERE source=?" if source else "")
        rows = self.db.query(sql, (source,) if source else ())
        return [event_class(kind).from_data(orjson.loads(bytes(data))) for kind, data in rows]  # type: ignore[union-attr,misc]
