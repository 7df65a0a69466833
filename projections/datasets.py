"""Datasets and their examples, searchable: the few-shot lookup and the model each channel uses.

Full-text search is the backend's own: an FTS5 table (Porter stemming) beside the SQLite read models, a
``tsvector`` column with a GIN index (English configuration) in PostgreSQL. Examples get ids made from
their event's position, so re-applying an event changes nothing.
"""
from __future__ import annotations

from events import RecordedEvent
from events.catalog.learning import (DEFAULT_DATASET, DatasetCreated, DatasetDeleted, DatasetSelected, DatasetUsed,
                                     ExamplesAdded, ModelActivated)
from events.catalog.privacy import PersonForgotten
from projections.tracking import ReadModels, Transaction

PER_EVENT = 1_000_000  # example id = position * PER_EVENT + index in its event

COMMON = [
    "CREATE TABLE IF NOT EXISTS datasets (dataset_id TEXT PRIMARY KEY, name TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS dataset_channels (channel TEXT PRIMARY KEY, selected TEXT, used TEXT)",
    "CREATE TABLE IF NOT EXISTS active_models (channel TEXT PRIMARY KEY, model TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS examples_by_dataset ON examples (dataset_id)",
]
EXAMPLES = ("CREATE TABLE IF NOT EXISTS examples (id INTEGER PRIMARY KEY, dataset_id TEXT NOT NULL, prompt TEXT NOT NULL, "
            "answer TEXT NOT NULL, positive INTEGER NOT NULL, author_id TEXT, source TEXT, message_id TEXT, "
            "position INTEGER NOT NULL, subject_id TEXT{extra})")
SCHEMA = {
    "sqlite": [EXAMPLES.format(extra=""),
               "CREATE VIRTUAL TABLE IF NOT EXISTS examples_fts USING fts5(prompt, content='examples', "
               "content_rowid='id', tokenize='porter unicode61')"] + COMMON,
    "postgresql": [EXAMPLES.format(extra=", search tsvector"),
                   "CREATE INDEX IF NOT EXISTS examples_search ON examples USING GIN (search)"] + COMMON,
}
INSERT = {
    "sqlite": "INSERT INTO examples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
    "postgresql": "INSERT INTO examples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, to_tsvector('english', ?)) "
                  "ON CONFLICT (id) DO NOTHING",
}
SIMILAR = {
    "sqlite": "SELECT e.prompt, e.answer, e.positive FROM examples_fts JOIN examples e ON e.id = examples_fts.rowid "
              "WHERE examples_fts MATCH ? AND e.dataset_id = ? ORDER BY examples_fts.rank LIMIT ?",
    "postgresql": "SELECT prompt, answer, positive FROM examples WHERE search @@ to_tsquery('english', ?) AND "
                  "dataset_id = ? ORDER BY ts_rank(search, to_tsquery('english', ?)) DESC, id LIMIT ?",
}


class Datasets:
    name = "datasets"
    tables = ('examples_fts', 'examples', 'datasets', 'dataset_channels', 'active_models')

    def __init__(self, db: ReadModels):
        self.db = db
        self.dialect = db.dialect
        db.create(SCHEMA[self.dialect])

    def apply(self, db: Transaction, recorded: RecordedEvent) -> None:
        e = recorded.event
        if isinstance(e, ExamplesAdded):
            base = (recorded.position or 0) * PER_EVENT
            rows = [(base + i, e.dataset_id, x["prompt"], x["answer"], int(x["positive"]), e.author_id, e.source,
                     e.message_id, recorded.position or 0, e.subject_id) for i, x in enumerate(e.examples)]
            if rows and db.execute("SELECT 1 FROM examples WHERE id = ?", (base,)).fetchone():
                return  # applied already (the read models were fed this part of the log again)
            if self.dialect == "sqlite":
                db.executemany(INSERT["sqlite"], rows)
                db.executemany("INSERT INTO examples_fts (rowid, prompt) VALUES (?, ?)", [(r[0], r[2]) for r in rows])
            else:
                db.executemany(INSERT["postgresql"], [r + (r[2],) for r in rows])
        elif isinstance(e, DatasetCreated):
            db.execute("INSERT INTO datasets VALUES (?, ?) ON CONFLICT (dataset_id) DO NOTHING", (e.dataset_id, e.name))
        elif isinstance(e, DatasetDeleted):
            if self.dialect == "sqlite":  # an external-content index is told what it indexed
                db.execute("INSERT INTO examples_fts (examples_fts, rowid, prompt) SELECT 'delete', id, prompt "
                           "FROM examples WHERE dataset_id = ?", (e.dataset_id,))
            db.execute("DELETE FROM examples WHERE dataset_id = ?", (e.dataset_id,))
            db.execute("DELETE FROM datasets WHERE dataset_id = ?", (e.dataset_id,))
            db.execute("UPDATE dataset_channels SET selected = NULL WHERE selected = ?", (e.dataset_id,))
            db.execute("UPDATE dataset_channels SET used = NULL WHERE used = ?", (e.dataset_id,))
        elif isinstance(e, (DatasetSelected, DatasetUsed)):
            column = "selected" if isinstance(e, DatasetSelected) else "used"
            db.execute(f"INSERT INTO dataset_channels (channel, {column}) VALUES (?, ?) ON CONFLICT (channel) "
                       f"DO UPDATE SET {column} = excluded.{column}", (e.channel, e.dataset_id))
        elif isinstance(e, PersonForgotten):  # their examples read back as none now: drop them, index included
            if self.dialect == "sqlite":
                db.execute("INSERT INTO examples_fts (examples_fts, rowid, prompt) SELECT 'delete', id, prompt "
                           "FROM examples WHERE author_id = ? OR subject_id = ?", (e.person, e.person))
                db.execute("INSERT INTO examples_fts (examples_fts) VALUES ('optimize')")  # no stale terms on disk
            db.execute("DELETE FROM examples WHERE author_id = ? OR subject_id = ?", (e.person, e.person))
        elif isinstance(e, ModelActivated):
            db.execute("INSERT INTO active_models VALUES (?, ?) ON CONFLICT (channel) DO UPDATE SET model = "
                       "excluded.model", (e.channel, e.model))

    # -- reads ---------------------------------------------------------------------------------
    def teaching(self, channel: str) -> str | None:
        """The dataset that teaches in ``channel`` (``source:channel_id``): the one used there, else the
        one selected there, else ``default``."""
        rows = self.db.query("SELECT COALESCE(used, selected) FROM dataset_channels WHERE channel = ?", (channel,))
        if rows and rows[0][0]:
            return rows[0][0]
        rows = self.db.query("SELECT dataset_id FROM datasets WHERE LOWER(name) = ?", (DEFAULT_DATASET,))
        return rows[0][0] if rows else None

    def similar(self, channel: str, words: list[str], limit: int) -> list[tuple[str, str, bool]]:
        """Up to ``limit`` (prompt, answer, positive) of the channel's dataset whose prompts best match
        any of ``words`` (plain words: see ``actors.learning.teaching.terms``); none when no word matches."""
        if not words or limit <= 0:
            return []
        dataset_id = self.teaching(channel)
        if dataset_id is None:
            return []
        if self.dialect == "sqlite":
            params: tuple = (" OR ".join(f'"{w}"' for w in words), dataset_id, limit)
        else:
            query = " | ".join(words)
            params = (query, dataset_id, query, limit)
        return [(p, a, bool(pos)) for p, a, pos in self.db.query(SIMILAR[self.dialect], params)]

    def active_models(self) -> dict[str, str]:
        return dict(self.db.query("SELECT channel, model FROM active_models"))

    def count(self, dataset_id: str) -> int:
        return self.db.query("SELECT COUNT(*) FROM examples WHERE dataset_id = ?", (dataset_id,))[0][0]
