"""Long streams (issue 16): actors start from snapshots, and the learning stream folds in linear time."""
from __future__ import annotations

import functools

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.conversation import decider as conversation
from actors.learning import decider as training
from actors.learning.folding import fold
from actors.streams import DecidedStreams
from events import open_store
from events.catalog.conversation import MessageReceived, ResponseGenerated
from events.catalog.learning import LEARNING_STREAM, DatasetCreated, DatasetDeleted, ExamplesAdded
from events.snapshots import decode, encode

EXAMPLE = st.fixed_dictionaries({"prompt": st.sampled_from(["How?", "Why?", "what", "How? "]),
                                 "answer": st.sampled_from(["So.", "No.", "so."]), "positive": st.booleans()},
                                optional={"pair": st.sampled_from(["p1", "p2"])})
LEARNING_EVENT = st.one_of(
    st.builds(DatasetCreated, dataset_id=st.sampled_from(["a", "b"]), name=st.sampled_from(["default", "x"]),
              by=st.just("u")),
    st.builds(DatasetDeleted, dataset_id=st.sampled_from(["a", "b"]), name=st.just("x"), by=st.just("u")),
    st.builds(ExamplesAdded, dataset_id=st.sampled_from(["a", "b"]), examples=st.lists(EXAMPLE, max_size=4).map(tuple),
              duplicates=st.integers(0, 3), author_id=st.just("u"), source=st.just("s"),
              message_id=st.text("0123456789", max_size=3)))


@settings(max_examples=300, deadline=None)
@given(st.lists(LEARNING_EVENT, max_size=40))
def test_the_linear_fold_gives_the_state_evolving_one_event_at_a_time_gives(events):
    assert fold(training.Learning(), events) == functools.reduce(training.evolve, events, training.Learning())


@settings(max_examples=100, deadline=None)
@given(st.lists(LEARNING_EVENT, max_size=30))
def test_a_snapshot_gives_back_the_state_it_was_made_of(events):
    state = fold(training.Learning(), events)
    assert decode(encode(state)) == state


def long_conversation(store, turns: int) -> None:
    about = dict(conversation_id="c:long", channel_id="c", source="s")
    events = []
    for n in range(turns):
        events += [MessageReceived(**about, message_id=f"m{n}", author_id="u", author_name="Ann", text=f"q{n}"),
                   ResponseGenerated(**about, message_id=f"m{n}", text=f"a{n}", model="m")]
    store.append("conversation:c:long", events, 0)


def test_a_long_stream_is_loaded_from_its_snapshot_and_its_tail(store):
    long_conversation(store, 600)  # 1,200 events: past the snapshot threshold
    streams = lambda: DecidedStreams(store, lambda r: None, conversation.Conversation(), conversation.evolve,  # noqa: E731
                                     lambda k: f"conversation:{k}", snapshot_every=1000)
    folded = streams().load("c:long")  # folds all, writes a snapshot
    assert store.snapshots.get("conversation:c:long", streams()._code)[0] == 1200
    more = [MessageReceived(conversation_id="c:long", channel_id="c", source="s", message_id="m-late",
                            author_id="u", author_name="Ann", text="one more")]
    store.append("conversation:c:long", more, 1200)
    read: list[int] = []
    original = store.read_stream
    store.read_stream = lambda stream, after_version=0: read.append(after_version) or original(stream, after_version)
    loaded = streams().load("c:long")
    store.read_stream = original
    assert read == [1200]  # only the tail was read
    assert loaded == conversation.evolve(folded, more[0])  # the same state as folding the whole stream
    assert loaded == functools.reduce(conversation.evolve, [r.event for r in store.read_stream("conversation:c:long")],
                                      conversation.Conversation())


def test_forgetting_a_person_deletes_every_snapshot_and_a_changed_decider_ignores_old_ones(store):
    long_conversation(store, 600)
    streams = DecidedStreams(store, lambda r: None, conversation.Conversation(), conversation.evolve,
                             lambda k: f"conversation:{k}", snapshot_every=1000)
    streams.load("c:long")
    assert store.snapshots.get("conversation:c:long", streams._code) is not None
    assert store.snapshots.get("conversation:c:long", "another-decider") is None  # a new version folds again
    store.forgotten("someone")
    assert store.snapshots.get("conversation:c:long", streams._code) is None


def test_the_trainer_starts_from_a_learning_stream_of_many_events(tmp_path):
    store = open_store("sqlite", tmp_path)
    try:
        store.append(LEARNING_STREAM, [DatasetCreated(dataset_id="a", name="default", by="u")], 0)
        events = [ExamplesAdded(dataset_id="a", examples=({"prompt": f"q{n}?", "answer": f"a{n}.", "positive": True},),
                                duplicates=0, author_id="u", source="s", message_id=str(n)) for n in range(20_000)]
        store.append(LEARNING_STREAM, events, 1)
        streams = DecidedStreams(store, lambda r: None, training.Learning(), training.evolve,
                                 lambda _: LEARNING_STREAM, fold=fold)
        state = streams.load("")
        assert state.version == 20_001 and len(state.datasets["a"].keys) == 20_000
    finally:
        store.close()


def test_no_word_of_a_forgotten_person_stays_in_the_snapshot_files(tmp_path):
    store = open_store("sqlite", tmp_path)
    try:
        about = dict(conversation_id="c:long", channel_id="c", source="s")
        events = [MessageReceived(**about, message_id=f"m{n}", author_id="u", author_name="Ann",
                                  text=f"my secret word is Xylophonicus{n}") for n in range(1100)]
        store.append("conversation:c:long", events, 0)
        DecidedStreams(store, lambda r: None, conversation.Conversation(), conversation.evolve,
                       lambda k: f"conversation:{k}", snapshot_every=1000).load("c:long")
        files = [p for p in tmp_path.iterdir() if p.name.startswith("snapshots")]
        assert any(b"Xylophonicus1099" in p.read_bytes() for p in files)  # the snapshot holds the words
        store.forgotten("u")
        assert not any(b"Xylophonicus" in p.read_bytes() for p in tmp_path.iterdir()
                       if p.name.startswith("snapshots"))
    finally:
        store.close()
