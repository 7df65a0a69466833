"""Every read model, in the order the runner feeds them, and rebuilding some of them from zero."""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from events import EventStore
from projections.answers import Answers
from projections.clips import Clips
from projections.conversations import Conversations
from projections.datasets import Datasets
from projections.deliveries import PendingReplies
from projections.tracking import BATCH, ProjectionRunner, ReadModels
from projections.voice import VoiceSessions

PROJECTIONS = (Conversations, PendingReplies, Clips, VoiceSessions, Datasets, Answers)
NAMES = tuple(p.name for p in PROJECTIONS)


def all_projections(db: ReadModels) -> list:
    return [p(db) for p in PROJECTIONS]


class Following(NamedTuple):
    """The read models of a running system, fed by a runner that follows the log."""

    runner: ProjectionRunner
    conversations: Conversations
    pending_replies: PendingReplies
    clips: Clips
    voice_sessions: VoiceSessions
    datasets: Datasets
    answers: Answers


def following(store: EventStore, db: ReadModels, applies: bool = True) -> Following:
    """Every read model, resumed from its tracked position (a deleted file is rebuilt from zero) and complete
    before anything is served; then a runner keeps them following the log in order. With ``applies``
    False, a worker of its own feeds them and this process only reads them."""
    projections = all_projections(db)
    runner = ProjectionRunner(store, db, projections, applies=applies)
    runner.catch_up()
    return Following(runner.start(), *projections)


def caught_up(store: EventStore, db: ReadModels) -> list:
    """Every read model, fed the log to its end (for the command-line tools, which run no follower)."""
    projections = all_projections(db)
    ProjectionRunner(store, db, projections).catch_up()
    return projections


def rebuild(store: EventStore, db: ReadModels, names: list[str],
            progress: Callable[[int, int], None] | None = None) -> int:
    """Drop the tables of the read models ``names`` and build them again from the log, up to the position
    the read models have applied (the others are left as they are). Returns the events read."""
    chosen = [p for p in PROJECTIONS if p.name in names]
    for p in chosen:
        db.create([f"DROP TABLE IF EXISTS {table}" for table in p.tables])
    built = [p(db) for p in chosen]  # creates the tables again, empty
    until, done = db.position(), 0
    while done < until:
        batch = [r for r in store.read_all(after=done, limit=BATCH) if (r.position or 0) <= until]
        if not batch:
            break
        with db.transaction() as tx:  # the tracked position is not moved: the others are not fed again
            for recorded in batch:
                for p in built:
                    p.apply(tx, recorded)
        done = batch[-1].position or until
        if progress is not None:
            progress(done, until)
    return done
