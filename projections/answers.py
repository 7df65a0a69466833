"""Parley's answers (what each question got), which sent messages carry them, and the corrections and
feedback about them: what ``correct`` and the vote buttons look up, and what ``corrections list`` and
``feedback list`` print."""
from __future__ import annotations

from events import RecordedEvent
from events.catalog.conversation import MessageReceived, ResponseGenerated
from events.catalog.corrections import CorrectionRecorded, CorrectionReviewed, FeedbackRecorded
from events.catalog.delivery import ReplySent
from events.catalog.privacy import PersonForgotten
from events.personal import FORGOTTEN
from projections.tracking import ReadModels, Transaction

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS answers (source TEXT, question_id TEXT, conversation_id TEXT, channel_id TEXT, "
    "question TEXT, answer TEXT, asker_id TEXT, PRIMARY KEY (source, question_id))",
    "CREATE TABLE IF NOT EXISTS answer_messages (source TEXT, sent_id TEXT, question_id TEXT, "
    "PRIMARY KEY (source, sent_id))",
    "CREATE TABLE IF NOT EXISTS corrections (position INTEGER PRIMARY KEY, source TEXT, question_id TEXT, "
    "question TEXT, original TEXT, corrected TEXT, by_id TEXT, by_name TEXT, via TEXT, recorded_at TEXT, asker_id TEXT)",
    "CREATE TABLE IF NOT EXISTS feedback (position INTEGER PRIMARY KEY, source TEXT, question_id TEXT, "
    "rating TEXT, text TEXT, by_id TEXT, by_name TEXT, via TEXT, recorded_at TEXT)",
    # whose each question was (``events.scopes``), and where each correction stands: approved, pending, rejected
    "CREATE TABLE IF NOT EXISTS answer_scopes (source TEXT, question_id TEXT, scope TEXT NOT NULL, "
    "PRIMARY KEY (source, question_id))",
    "CREATE TABLE IF NOT EXISTS correction_reviews (position INTEGER PRIMARY KEY, scope TEXT NOT NULL, "
    "message_id TEXT NOT NULL, status TEXT NOT NULL)",
]


FORGET = [
    "UPDATE answers SET question = CASE WHEN question = '' THEN question ELSE ? END WHERE asker_id = ?",
    "UPDATE answers SET answer = CASE WHEN answer IS NULL OR answer = '' THEN answer ELSE ? END WHERE asker_id = ?",
    "UPDATE corrections SET question = ? WHERE asker_id = ?",
    "UPDATE corrections SET original = ? WHERE asker_id = ?",
    "UPDATE corrections SET corrected = ? WHERE by_id = ?",
    "UPDATE corrections SET by_name = CASE WHEN by_name = '' THEN by_name ELSE ? END WHERE by_id = ?",
    "UPDATE feedback SET text = CASE WHEN text = '' THEN text ELSE ? END WHERE by_id = ?",
    "UPDATE feedback SET by_name = CASE WHEN by_name = '' THEN by_name ELSE ? END WHERE by_id = ?",
]


class Answers:
    name = "corrections"
    tables = ('answers', 'answer_messages', 'corrections', 'feedback', 'answer_scopes', 'correction_reviews')

    def __init__(self, db: ReadModels):
        self.db = db
        db.create(SCHEMA)

    def apply(self, db: Transaction, recorded: RecordedEvent) -> None:
        e = recorded.event
        if isinstance(e, MessageReceived):
            db.execute("INSERT INTO answers VALUES (?, ?, ?, ?, ?, NULL, ?) ON CONFLICT (source, question_id) DO NOTHING",
                       (e.source, e.message_id, e.conversation_id, e.channel_id, e.text, e.author_id))
            db.execute("INSERT INTO answer_scopes VALUES (?, ?, ?) ON CONFLICT (source, question_id) DO NOTHING",
                       (e.source, e.message_id, e.scope))
        elif isinstance(e, ResponseGenerated):
            db.execute("UPDATE answers SET answer = ? WHERE source = ? AND question_id = ?",
                       (e.text, e.source, e.message_id))
        elif isinstance(e, ReplySent) and not e.part:
            db.executemany("INSERT INTO answer_messages VALUES (?, ?, ?) ON CONFLICT (source, sent_id) DO NOTHING",
                           [(e.source, sent, e.message_id) for sent in e.sent_message_ids])
        elif isinstance(e, CorrectionRecorded):
            db.execute("INSERT INTO corrections VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (position) DO NOTHING",
                       (recorded.position, e.source, e.question_message_id, e.question, e.original, e.corrected, e.by,
                        e.by_name, e.via, recorded.recorded_at.isoformat(), e.asker_id))
            db.execute("INSERT INTO correction_reviews VALUES (?, ?, ?, ?) ON CONFLICT (position) DO NOTHING",
                       (recorded.position, e.scope, e.message_id, "approved" if e.approved else "pending"))
        elif isinstance(e, CorrectionReviewed):
            db.execute("UPDATE correction_reviews SET status = ? WHERE message_id = ? AND status = 'pending'",
                       ("approved" if e.approved else "rejected", e.correction_id))
        elif isinstance(e, PersonForgotten):  # as a rebuild would read their words now: "(forgotten)"
            for sql in FORGET:
                db.execute(sql, (FORGOTTEN, e.person))
        elif isinstance(e, FeedbackRecorded):
            db.execute("INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (position) DO NOTHING",
                       (recorded.position, e.source, e.question_message_id, e.rating, e.text, e.by, e.by_name, e.via,
                        recorded.recorded_at.isoformat()))

    def find(self, source: str, message_id: str, by_question: bool = False) -> tuple[tuple | None, str]:
        """((conversation, channel, question id, question, answer), "") for one of Parley's answers, named
        by a message that carries it (or, ``by_question``, by the question's id, as the console does);
        else (None, why): "pending" (not answered yet), "not_parleys" (a person's message, or a reply of
        Parley's that is not an answer), "unknown" (not recorded, or not yet in the read model)."""
        if not message_id:
            return None, "no_target"
        columns = "a.conversation_id, a.channel_id, a.question_id, a.question, a.answer, a.asker_id, s.scope"
        scoped = "LEFT JOIN answer_scopes s ON s.source = a.source AND s.question_id = a.question_id"
        if by_question:
            rows = self.db.query(f"SELECT {columns} FROM answers a {scoped} WHERE a.source = ? AND a.question_id = ?",
                                 (source, message_id))
        else:
            rows = self.db.query(f"SELECT {columns} FROM answer_messages m LEFT JOIN answers a ON a.source = m.source "
                                 f"AND a.question_id = m.question_id {scoped} WHERE m.source = ? AND m.sent_id = ?",
                                 (source, message_id))
            if rows and rows[0][2] is None:
                return None, "not_parleys"  # Parley's reply to a command, say
            if not rows and self.db.query("SELECT 1 FROM answers WHERE source = ? AND question_id = ?",
                                          (source, message_id)):
                return None, "not_parleys"  # a person's own message
        if not rows:
            return None, "unknown"
        if rows[0][4] is None:
            return None, "pending"
        return rows[0], ""

    def corrections(self) -> list[dict]:
        return [dict(zip(("position", "source", "question_id", "question", "original", "corrected", "by", "by_name",
                          "via", "recorded_at", "asker_id"), r))
                for r in self.db.query("SELECT * FROM corrections ORDER BY position")]

    def suggestions(self, scope: str | None, limit: int = 20) -> list[dict]:
        """Members' corrections waiting for an admin of their scope (every scope's, for ``None``), oldest first."""
        where = "r.status = 'pending'" + (" AND r.scope = ?" if scope is not None else "")
        rows = self.db.query("SELECT c.position, c.source, c.question_id, c.question, c.original, c.corrected, c.by_name, "
                             f"r.scope, r.message_id FROM corrections c JOIN correction_reviews r ON r.position = "
                             f"c.position WHERE {where} ORDER BY c.position LIMIT ?",
                             (scope, limit) if scope is not None else (limit,))
        return [dict(zip(("position", "source", "question_id", "question", "original", "corrected", "by_name",
                          "scope", "message_id"), r)) for r in rows]

    def feedback(self) -> list[dict]:
        return [dict(zip(("position", "source", "question_id", "rating", "text", "by", "by_name", "via",
                          "recorded_at"), r))
                for r in self.db.query("SELECT * FROM feedback ORDER BY position")]
