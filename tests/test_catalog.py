"""The event catalog: one registry names every event type and upcaster, each type in one capability's module."""
from __future__ import annotations

import orjson

from events import registered_types
from events.catalog import CAPABILITIES, EVENT_TYPES, UPCASTERS
from events.codec import decode


def test_the_registry_names_every_event_type_once_in_its_capabilitys_module():
    assert set(EVENT_TYPES) == set(registered_types())  # an event type defined anywhere else would be missing
    homes = {name: cls.__module__ for name, cls in EVENT_TYPES.items()}
    assert set(homes.values()) <= {m.__name__ for m in CAPABILITIES}
    assert homes["ExamplesAdded"] == "events.catalog.learning"
    assert homes["TranscriptionCompleted"] == "events.catalog.hearing"


def test_every_upcaster_upgrades_an_older_version_of_a_registered_type():
    for type_name, version in UPCASTERS:
        assert type_name in EVENT_TYPES, type_name
        assert 1 <= version < EVENT_TYPES[type_name].version, (type_name, version)
    # and every version between 1 and the current one can be read: a chain with no gap
    for name, cls in EVENT_TYPES.items():
        assert all((name, v) in UPCASTERS for v in range(1, cls.version)), name


def test_a_version_one_record_reads_as_the_current_version():
    # v1 of MessageReceived had neither ``source`` (Discord was the only transport) nor ``heard``
    v1 = {"v": 1, "at": "2026-01-01T00:00:00+00:00",
          "data": {"conversation_id": "c", "message_id": "m", "channel_id": "ch", "author_id": "a",
                   "author_name": "Ann", "text": "hi"}}
    event, _ = decode("MessageReceived", orjson.dumps(v1))
    assert type(event) is EVENT_TYPES["MessageReceived"]
    assert (event.source, event.heard, event.text) == ("discord", "", "hi")  # type: ignore[attr-defined]
