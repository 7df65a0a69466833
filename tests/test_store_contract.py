"""The event store's contract, run against SQLite and against the PostgreSQL server."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timezone

import pytest
from eventsourcing.persistence import StoredEvent

from events import StreamConflict, UnknownEvent, open_store
from events.catalog.conversation import MessageReceived, ResponseGenerated
from events.catalog.delivery import ReplySent


def message(n: int, conversation: str = "console:1") -> MessageReceived:
    return MessageReceived(conversation_id=conversation, message_id=str(n), channel_id="1", author_id="u1",
                           author_name="Ada", text=f"hello {n}", source="console")


def test_appended_events_read_back_equal_and_in_order(store):
    first = store.append("conversation:a", [message(1), message(2)], expected_version=0)
    assert [r.stream_version for r in first] == [1, 2]
    assert first[0].position < first[1].position
    back = store.read_stream("conversation:a")
    assert [r.event for r in back] == [message(1), message(2)]
    assert store.stream_version("conversation:a") == 2
    assert store.stream_version("conversation:none") == 0


def test_append_with_stale_expected_version_raises_conflict_and_writes_nothing(store):
    store.append("conversation:a", [message(1)], expected_version=0)
    with pytest.raises(StreamConflict):
        store.append("conversation:a", [message(2), message(3)], expected_version=0)
    assert [r.event for r in store.read_stream("conversation:a")] == [message(1)]
    # Retrying from fresh state succeeds.
    store.append("conversation:a", [message(2)], expected_version=store.stream_version("conversation:a"))
    assert store.stream_version("conversation:a") == 2


def test_concurrent_writers_to_one_stream_lose_nothing_by_retrying(store):
    def writer(offset: int):
        for n in range(10):
            while True:
                try:
                    store.append("conversation:race", [message(offset + n)], store.stream_version("conversation:race"))
                    break
                except StreamConflict:
                    continue

    threads = [threading.Thread(target=writer, args=(k * 100,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    texts = sorted(r.event.message_id for r in store.read_stream("conversation:race"))
    assert texts == sorted(str(k * 100 + n) for k in range(3) for n in range(10))


def test_read_all_is_global_order_from_a_position_and_filters_by_type(store):
    store.append("conversation:a", [message(1)], 0)
    store.append("conversation:b", [message(2)], 0)
    answer = ResponseGenerated(conversation_id="console:1", message_id="1", channel_id="1", source="console",
                               text="hi!", model="m")
    store.append("conversation:a", [answer], 1)
    everything = list(store.read_all())
    assert [r.stream for r in everything] == ["conversation:a", "conversation:b", "conversation:a"]
    assert [r.position for r in everything] == sorted(r.position for r in everything)
    assert store.head() == everything[-1].position
    after_first = list(store.read_all(after=everything[0].position))
    assert [r.event for r in after_first] == [message(2), answer]
    only_answers = list(store.read_all(types=["ResponseGenerated"]))
    assert [r.event for r in only_answers] == [answer]
    assert len(list(store.read_all(limit=2))) == 2


def test_read_all_pages_through_more_than_one_page(store):
    batch = [message(n) for n in range(2500)]
    store.append("conversation:big", batch, 0)
    got = list(store.read_all())
    assert len(got) == 2500 and got[-1].event == batch[-1]


def test_follow_yields_events_appended_after_it_started(store):
    store.append("conversation:a", [message(1)], 0)
    stop = threading.Event()
    seen = []

    start = store.head()  # read before the appends below, not in the thread (which may start late)

    def follower():
        for recorded in store.follow(after=start, stop=stop, poll_seconds=0.05):
            seen.append(recorded.event)
            if len(seen) == 2:
                stop.set()

    t = threading.Thread(target=follower)
    t.start()
    store.append("conversation:b", [message(2)], 0)
    store.append("conversation:a", [message(3)], 1)
    t.join(timeout=10)
    assert not t.is_alive()
    assert seen == [message(2), message(3)]


def test_tuple_fields_survive_the_round_trip(store):
    sent = ReplySent(conversation_id="c", message_id="1", channel_id="1", source="discord",
                     sent_message_ids=("10", "11"))
    store.append("reply:discord:1", [sent], 0)
    assert store.read_stream("reply:discord:1")[0].event == sent


def test_a_version_1_event_is_upcast_on_read(store):
    # Written the way Parley's first release wrote MessageReceived: no `source` field, v1.
    v1 = {"v": 1, "at": datetime.now(timezone.utc).isoformat(),
          "data": {"conversation_id": "discord:channel:5", "message_id": "9", "channel_id": "5",
                   "author_id": "u", "author_name": "Old", "text": "from the past"}}
    store._recorder.insert_events([StoredEvent("conversation:old", 1, "MessageReceived", json.dumps(v1).encode())])
    [old] = store.read_stream("conversation:old")
    assert isinstance(old.event, MessageReceived)
    assert old.event.source == "discord" and old.event.text == "from the past"


def test_an_unknown_event_type_is_kept_readable(store):
    doc = {"v": 3, "at": datetime.now(timezone.utc).isoformat(), "data": {"x": 1}}
    store._recorder.insert_events([StoredEvent("future:1", 1, "SomethingNew", json.dumps(doc).encode())])
    [rec] = list(store.read_all())
    assert isinstance(rec.event, UnknownEvent)
    assert rec.type_name == "SomethingNew" and rec.event.to_data() == {"x": 1}


def test_events_survive_reopening_the_store(store_spec, tmp_path):
    s = open_store(store_spec, tmp_path)
    s.append("conversation:a", [message(1)], 0)
    s.close()
    again = open_store(store_spec, tmp_path)
    try:
        assert [r.event for r in again.read_stream("conversation:a")] == [message(1)]
    finally:
        again.close()


def test_events_are_immutable():
    m = message(1)
    with pytest.raises(Exception):
        m.text = "changed"  # type: ignore[misc]


def test_positions_returned_by_a_batch_append_are_the_positions_read_back(store):
    store.append("conversation:a", [message(0)], 0)
    batch = store.append("conversation:b", [message(n) for n in range(1, 51)], 0)
    store.append("conversation:a", [message(99)], 1)
    read = {r.event.message_id: r.position for r in store.read_all()}
    assert [r.position for r in batch] == [read[str(n)] for n in range(1, 51)]
    assert len(set(read.values())) == 52


def test_a_big_batch_over_a_unix_socket_does_not_deadlock(tmp_path):
    """psycopg's pipeline mode deadlocks on a few hundred KB over a Unix socket; the store does not use it."""
    import os

    from events import open_store
    from tests.conftest import postgres_url, with_query, drop_schema
    import uuid

    url = postgres_url()
    if "host=/" not in url:  # the machine's server: reach it through its socket instead of TCP
        assert os.path.exists("/var/run/postgresql"), "no PostgreSQL socket directory to test with"
        url = url.split("@", 1)[0] + "@/" + url.rsplit("/", 1)[1] + "?host=/var/run/postgresql"
    schema = f"t_{uuid.uuid4().hex[:12]}"
    store = open_store(with_query(url, schema=schema), tmp_path)
    try:
        batch = [message(n) for n in range(2500)]
        assert len(store.append("conversation:big", batch, 0)) == 2500
        assert store.head() == 2500
    finally:
        store.close()
        drop_schema(schema)
