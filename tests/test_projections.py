"""Read models: built in order, resumed from their tracked position, rebuilt from zero to the same result."""
from __future__ import annotations

from events.catalog import (CommandAnswered, MessageReceived, ReplySent, ResponseFailed, ResponseGenerated)
from projections.conversations import Conversations
from projections.deliveries import PendingReplies
from projections.tracking import ProjectionRunner, ReadModelDB
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
        "unanswered": sorted(conversations.unanswered_conversations()),
        "pending": [(e.type_name, e.message_id) for e in pending.pending()],
        "pending_console": [e.message_id for e in pending.pending("console")],
    }


def models(path):
    db = ReadModelDB(path)
    conversations, pending = Conversations(db), PendingReplies(db)
    return db, conversations, pending


def test_the_read_models_answer_what_the_transports_ask(store, tmp_path):
    fill(store)
    db, conversations, pending = models(tmp_path / "rm.sqlite3")
    ProjectionRunner(store, db, [conversations, pending]).catch_up()
    view = snapshot(conversations, pending)
    assert view["of"]["1001"] == "a" and view["of"]["5001"] == "a"  # the user's message and Parley's reply
    assert view["newest"] == {"100": "1001", "200": "1003", "300": None}
    assert view["unanswered"] == ["b"]  # 1003 was neither answered nor failed
    assert view["pending"] == [("ResponseFailed", "1002"), ("CommandAnswered", "1004")]
    assert view["pending_console"] == ["1004"]
    db.close()


def test_resumed_and_rebuilt_read_models_equal_one_built_in_a_single_pass(store, tmp_path):
    store.append("conversation:a", [received(1, "a")], 0)
    db, conversations, pending = models(tmp_path / "incremental.sqlite3")
    runner = ProjectionRunner(store, db, [conversations, pending])
    assert runner.catch_up() == 1
    db.close()
    fill_rest = [answered(1, "a")]
    store.append("conversation:a", fill_rest, 1)
    store.append("reply:discord:1001", [sent(1, "a")], 0)
    # Reopened: it resumes after the tracked position and applies only what is new.
    db, conversations, pending = models(tmp_path / "incremental.sqlite3")
    runner = ProjectionRunner(store, db, [conversations, pending])
    assert runner.position == 1 and runner.catch_up() == 2 and runner.catch_up() == 0
    resumed = snapshot(conversations, pending)
    db.close()
    fresh_db, fresh_conversations, fresh_pending = models(tmp_path / "from-zero.sqlite3")
    ProjectionRunner(store, fresh_db, [fresh_conversations, fresh_pending]).catch_up()
    assert snapshot(fresh_conversations, fresh_pending) == resumed
    fresh_db.close()


def test_the_runner_follows_new_events(store, tmp_path):
    db, conversations, pending = models(tmp_path / "rm.sqlite3")
    runner = ProjectionRunner(store, db, [conversations, pending], poll_seconds=0.05).start()
    try:
        store.append("conversation:a", [received(7, "a")], 0)
        wait_for(lambda: conversations.conversation_of("discord", "1007") == "a", what="the runner to apply it")
        assert conversations.unanswered_conversations() == ["a"]
    finally:
        runner.stop()
        db.close()
