"""Stored events of the wrong shape (damaged, or written by something else) give one clear error, and the
log is read past them (issue 16)."""
from __future__ import annotations

import json
import sqlite3

import pytest
from hypothesis import given, settings, strategies as st

from events import DamagedEvent, DamagedRecord, open_store
from events.catalog import EVENT_TYPES
from events.catalog.desk import TransportConnected
from events.codec import decode
from tests.conftest import parley_env, run_parley


@pytest.mark.parametrize("type_name,state", [
    ("ReplySent", b"1"), ("", b"[]"), ("ResponseFailed", b'{"data":[]}'), ("AudioReceived", b'{"data":null}'),
    ("", b"{}"), ("DatasetUsed", b'{"v":true}'), ("ReplySent", b'{"v":2,"at":"2026-01-01T00:00:00+00:00","data":{}}'),
    ("MessageReceived", b"\xff\xfe"),
])
def test_a_stored_event_of_the_wrong_shape_is_one_clear_error(type_name, state):
    with pytest.raises(DamagedRecord, match="cannot be read"):
        decode(type_name, state)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(EVENT_TYPES) + ["", "NoSuchEvent"]),
       st.one_of(st.binary(max_size=64), st.recursive(
           st.none() | st.booleans() | st.integers() | st.text(max_size=8),
           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["v", "at", "data", "text"]),
                                                                        inner, max_size=4), max_leaves=12,
       ).map(lambda doc: json.dumps(doc).encode())))
def test_decoding_any_bytes_gives_an_event_or_a_damaged_record(type_name, state):
    try:
        decode(type_name, state)
    except DamagedRecord:
        pass


def test_the_log_is_read_past_a_damaged_row_and_replay_names_its_position(tmp_path, llm_server):
    data = tmp_path / "data"
    data.mkdir()
    store = open_store("sqlite", data)
    for n in range(3):
        store.append(f"transport:t{n}", [TransportConnected(source=f"t{n}", mark=str(n))], 0)
    store.close()
    db = sqlite3.connect(data / "parley.sqlite3")
    db.execute("UPDATE stored_events SET state = ? WHERE rowid = 2", (b'{"data": null}',))
    db.commit()
    db.close()
    store = open_store("sqlite", data)
    events = [(r.position, type(r.event).__name__) for r in store.read_all()]
    assert events == [(1, "TransportConnected"), (2, "DamagedEvent"), (3, "TransportConnected")]
    [damaged] = [r for r in store.read_all() if isinstance(r.event, DamagedEvent)]
    assert damaged.type_name == "TransportConnected" and "cannot be read" in damaged.event.error
    store.close()
    out = run_parley(["replay"], parley_env(data, llm_server))
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 3, out.stderr
    assert "position 2" in out.stderr and "cannot be read" in out.stderr
