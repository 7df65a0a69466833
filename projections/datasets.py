"""Datasets and their examples, searchable: the few-shot lookup and the model each channel uses, each within
its scope (``events.scopes``): a question is taught only by its own scope's dataset, or by the operators' one
that an operator lent to its channel.

Full-text search is the backend's own: an FTS5 table (Porter stemming) beside the SQLite read models, a
``tsvector`` column with a GIN index (English configuration) in PostgreSQL. Examples get ids made from
their event's position, so re-applying an event changes nothing.
"""
from __future__ import annotations

from events import RecordedEvent
from events.catalog.learning import (DEFAULT_DATASET, DatasetCreated, DatasetDeleted, DatasetSelected, DatasetUsed,
                                     ExamplesAdded, ModelActivated)
from events.catalog.privacy import PersonForgotten
from events.scopes import OPERATORS
from projections.tracking import ReadModels, Transaction

PER_EVENT = 1_000_000  # example id = position * PER_EVENT + index in its event

COMMON = [
    "CREATE TABLE IF NOT EXISTS scoped_datasets (dataset_id TEXT PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS scoped_channels (channel TEXT PRIMARY KEY, selected TEXT, used TEXT, "
    "used_shared INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS scoped_models (scope TEXT NOT NULL, channel TEXT NOT NULL, model TEXT NOT NULL, "
    "PRIMARY KEY (scope, channel))",
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
    tables = ('examples_fts', 'examples', 'scoped_datasets', 'scoped_channels', 'scoped_models')

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
            db.execute("INSERT INTO scoped_datasets VALUES (?, ?, ?) ON CONFLICT (dataset_id) DO NOTHING",
                       (e.dataset_id, e.name, e.scope))
        elif isinstance(e, DatasetDeleted):
            if self.dialect == "sqlite":  # an external-content index is told what it indexed
                db.execute("INSERT INTO examples_fts (examples_fts, rowid, prompt) SELECT 'delete', id, prompt "
                           "FROM examples WHERE dataset_id = ?", (e.dataset_id,))
            db.execute("DELETE FROM examples WHERE dataset_id = ?", (e.dataset_id,))
            db.execute("DELETE FROM scoped_datasets WHERE dataset_id = ?", (e.dataset_id,))
            db.execute("UPDATE scoped_channels SET selected = NULL WHERE selected = ?", (e.dataset_id,))
            db.execute("UPDATE scoped_channels SET used = NULL WHERE used = ?", (e.dataset_id,))
        elif isinstance(e, DatasetSelected):
            db.execute("INSERT INTO scoped_channels (channel, selected) VALUES (?, ?) ON CONFLICT (channel) "
                       "DO UPDATE SET selected = excluded.selected", (e.channel, e.dataset_id))
        elif isinstance(e, DatasetUsed):
            db.execute("INSERT INTO scoped_channels (channel, used, used_shared) VALUES (?, ?, ?) ON CONFLICT "
                       "(channel) DO UPDATE SET used = excluded.used, used_shared = excluded.used_shared",
                       (e.channel, e.dataset_id, int(e.shared)))
        elif isinstance(e, PersonForgotten):  # their examples read back as none now: drop them, index included
            if self.dialect == "sqlite":
                db.execute("INSERT INTO examples_fts (examples_fts, rowid, prompt) SELECT 'delete', id, prompt "
                           "FROM examples WHERE author_id = ? OR subject_id = ?", (e.person, e.person))
                db.execute("INSERT INTO examples_fts (examples_fts) VALUES ('optimize')")  # no stale terms on disk
            db.execute("DELETE FROM examples WHERE author_id = ? OR subject_id = ?", (e.person, e.person))
        elif isinstance(e, ModelActivated):
            db.execute("INSERT INTO scoped_models VALUES (?, ?, ?) ON CONFLICT (scope, channel) DO UPDATE SET "
                       "model = excluded.model", (e.scope, e.channel, e.model))

    # -- reads ---------------------------------------------------------------------------------
    def teaching(self, scope: str, channel: str) -> str | None:
        """The dataset that teaches in ``channel`` (``source:channel_id``) for ``scope``: the one used there
        (the scope's own, or the operators' when an operator lent it), else the one selected there, else the
        scope's ``default``. A dataset of another scope never teaches here, whatever a channel row says."""
        rows = self.db.query("SELECT used, used_shared, selected FROM scoped_channels WHERE channel = ?", (channel,))
        used, shared, selected = rows[0] if rows else (None, 0, None)
        for dataset_id, may_be_shared in ((used, bool(shared)), (selected, False)):
            if dataset_id and (owner := self._scope_of(dataset_id)) is not None:
                if owner == scope or may_be_shared and owner == OPERATORS:
                    return dataset_id
        rows = self.db.query("SELECT dataset_id FROM scoped_datasets WHERE LOWER(name) = ? AND scope = ?",
                             (DEFAULT_DATASET, scope))
        return rows[0][0] if rows else None

    def _scope_of(self, dataset_id: str) -> str | None:
        rows = self.db.query("SELECT scope FROM scoped_datasets WHERE dataset_id = ?", (dataset_id,))
        return rows[0][0] if rows else None

    def similar(self, scope: str, channel: str, words: list[str], limit: int) -> list[tuple[str, str, bool]]:
        """Up to ``limit`` (prompt, answer, positive) of the dataset teaching in ``channel`` for ``scope`` whose
        prompts best match any of ``words`` (see ``actors.learning.teaching.terms``); none when no word matches."""
        if not words or limit <= 0:
            return []
        dataset_id = self.teaching(scope, channel)
        if dataset_id is None:
            return []
        if self.dialect == "sqlite":
            params: tuple = (" OR ".join(f'"{w}"' for w in words), dataset_id, limit)
        else:
            query = " | ".join(words)
            params = (query, dataset_id, query, limit)
        return [(p, a, bool(pos)) for p, a, pos in self.db.query(SIMILAR[self.dialect], params)]

    def active_models(self) -> dict[tuple[str, str], str]:
        return {(scope, channel): model for scope, channel, model in
                self.db.query("SELECT scope, channel, model FROM scoped_models")}

    def count(self, dataset_id: str) -> int:
        return self.db.query("SELECT COUNT(*) FROM examples WHERE dataset_id = ?", (dataset_id,))[0][0]
