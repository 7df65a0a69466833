"""Read models: built in order, resumed from their tracked position, rebuilt from zero to the same result."""
from __future__ import annotations

from events.catalog.conversation import MessageReceived, ResponseFailed, ResponseGenerated
from events.catalog.delivery import ReplySent
from events.catalog.messages import CommandAnswered
from projections.conversations import Conversations
from projections.deliveries import PendingReplies
from projections.tracking import PostgresReadModels, ProjectionRunner, SQLiteReadModels
from tests.conftest import drop_schema
from tests.helpers import wait_for


def received(n: int, conversation: str, channel: str = "100") -> MessageReceived:
    return MessageReceived(conversation_id=conversation, message_id=str(1000 + n), channel_id=channel,
                           author_id="u", author_name="Ada", text=f"q{n}", source="discord")


def answered(n: int, conversation: str, channel: str = "100") -> ResponseGenerated:
    return ResponseGenerated(conversation_id=conversation, message_id=str(1000 + n), channel_id=channel,
                             source="discord", text=f"a{n}", model="m")


def sent(n: int, conversation: str, channel: str = "100") -> ReplySent:
    return ReplySent(conversation_id=conversation, message_id=str(1000 + n), channel_id=channel, source="discord",
                     sent_message_ids=(str(5000 + n),))


def fill(store) -> None:
    store.append("conversation:a", [received(1, "a"), answered(1, "a")], 0)
    store.append("reply:discord:1001", [sent(1, "a")], 0)
    store.append("conversation:b", [received(2, "b", channel="200"), received(3, "b", channel="200")], 0)
    store.append("conversation:b", [ResponseFailed(conversation_id="b", message_id="1002", channel_id="200",
                                                   source="discord", reason="timeout", reply_text="sorry")], 2)
    store.append("commands:c", [CommandAnswered(conversation_id="c", message_id="1004", channel_id="100",
                                                author_id="u", source="console", command="hi", text="hello")], 0)


def snapshot(conversations: Conversations, pending: PendingReplies) -> dict:
    ids = [str(1000 + n) for n in range(1, 5)] + [str(5000 + n) for n in range(1, 5)]
    return {
        "of": {i: conversations.conversation_of("discord", i) for i in ids},
        "newest": {c: conversations.newest_message("discord", c) for c in ("100", "200", "300")},
        "channels": sorted(conversations.channels("discord")),
        "unanswered": sorted(u.conversation_id for u in conversations.unanswered_conversations()),
        "pending": [(e.type_name, e.message_id) for e in pending.pending()],
        "pending_console": [e.message_id for e in pending.pending("console")],
    }


SCHEMAS: list[str] = []


def models(store, path):
    """Read models on the store's backend: an SQLite file, or tables in a PostgreSQL schema of their own
    (``path``'s name), so one test can hold several independent sets."""
    if store.postgres_params is None:
        db = SQLiteReadModels(path)
    else:
        connect, schema = store.postgres_params
        own = f"{schema}_{path.stem.replace('-', '_')}"
        import psycopg
        with psycopg.connect(**connect, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{own}"')
        SCHEMAS.append(own)
        db = PostgresReadModels(connect, own)
    conversations, pending = Conversations(db), PendingReplies(db)
    return db, conversations, pending


def teardown_function() -> None:
    while SCHEMAS:
        drop_schema(SCHEMAS.pop())


def test_the_read_models_answer_what_the_transports_ask(store, tmp_path):
    fill(store)
    db, conversations, pending = models(store, tmp_path / "rm.sqlite3")
    ProjectionRunner(store, db, [conversations, pending]).catch_up()
    view = snapshot(conversations, pending)
    assert view["of"]["1001"] == "a" and view["of"]["5001"] == "a"  # the user's message and Parley's reply
    assert view["newest"] == {"100": "1001", "200": "1003", "300": None}
    assert view["unanswered"] == ["b"]  # 1003 was neither answered nor failed
    assert [(u.channel_id, u.message_id) for u in conversations.unanswered_conversations()] == [("200", "1003")]
    assert view["pending"] == [("ResponseFailed", "1002"), ("CommandAnswered", "1004")]
    assert view["pending_console"] == ["1004"]
    db.close()


def test_resumed_and_rebuilt_read_models_equal_one_built_in_a_single_pass(store, tmp_path):
    store.append("conversation:a", [received(1, "a")], 0)
    db, conversations, pending = models(store, tmp_path / "incremental.sqlite3")
    runner = ProjectionRunner(store, db, [conversations, pending])
    assert runner.catch_up() == 1
    db.close()
    fill_rest = [answered(1, "a")]
    store.append("conversation:a", fill_rest, 1)
    store.append("reply:discord:1001", [sent(1, "a")], 0)
    # Reopened: it resumes after the tracked position and applies only what is new.
    db, conversations, pending = models(store, tmp_path / "incremental.sqlite3")
    runner = ProjectionRunner(store, db, [conversations, pending])
    assert runner.position == 1 and runner.catch_up() == 2 and runner.catch_up() == 0
    resumed = snapshot(conversations, pending)
    db.close()
    fresh_db, fresh_conversations, fresh_pending = models(store, tmp_path / "from-zero.sqlite3")
    ProjectionRunner(store, fresh_db, [fresh_conversations, fresh_pending]).catch_up()
    assert snapshot(fresh_conversations, fresh_pending) == resumed
    fresh_db.close()


def test_the_runner_follows_new_events(store, tmp_path):
    db, conversations, pending = models(store, tmp_path / "rm.sqlite3")
    runner = ProjectionRunner(store, db, [conversations, pending], poll_seconds=0.05).start()
    try:
        store.append("conversation:a", [received(7, "a")], 0)
        wait_for(lambda: conversations.conversation_of("discord", "1007") == "a", what="the runner to apply it")
        assert [u.conversation_id for u in conversations.unanswered_conversations()] == ["a"]
    finally:
        runner.stop()
        db.close()


def test_two_processes_sharing_read_models_apply_each_event_once(store, tmp_path):
    """Two runners on one set of read models (two processes on one PostgreSQL store, or on one data dir)
    take turns through the tracked position: every event applied once, none skipped."""
    db_a, conversations_a, pending_a = models(store, tmp_path / "shared.sqlite3")
    if store.postgres_params is None:
        db_b = SQLiteReadModels(tmp_path / "shared.sqlite3")
    else:
        db_b = PostgresReadModels(store.postgres_params[0], SCHEMAS[-1])
    conversations_b, pending_b = Conversations(db_b), PendingReplies(db_b)
    runner_a = ProjectionRunner(store, db_a, [conversations_a, pending_a])
    runner_b = ProjectionRunner(store, db_b, [conversations_b, pending_b])
    fill(store)
    assert runner_a.catch_up() == 7
    assert runner_b.catch_up() == 0 and runner_b.position == runner_a.position  # it saw A's work
    store.append("conversation:c", [received(9, "c")], 0)
    assert runner_b.catch_up() == 1 and runner_a.catch_up() == 0
    assert snapshot(conversations_a, pending_a) == snapshot(conversations_b, pending_b)
    assert conversations_a.conversation_of("discord", "1009") == "c"
    db_a.close()
    db_b.close()


def test_on_postgresql_a_follower_hears_appends_of_other_processes(postgres_url, tmp_path):
    """LISTEN/NOTIFY: the runner waits up to a minute between polls, yet applies another process's append."""
    from events import open_store

    here, there = open_store(postgres_url, tmp_path), open_store(postgres_url, tmp_path)
    db, conversations, pending = models(here, tmp_path / "followed.sqlite3")
    runner = ProjectionRunner(here, db, [conversations, pending], poll_seconds=60).start()
    try:
        wait_for(here.listening.is_set, what="the follower to LISTEN")
        there.append("conversation:z", [received(8, "z")], 0)
        wait_for(lambda: conversations.conversation_of("discord", "1008") == "z", timeout=20,
                 what="the other process's event applied")
    finally:
        runner.stop()
        db.close()
        here.close()
        there.close()
