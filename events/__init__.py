"""Parley's event log: event types, their serialization, and the store.

This package knows nobody else in the project (no actors, adapters or projections).
"""
from events.model import DamagedEvent, DamagedRecord, Event, RecordedEvent, UnknownEvent, event_class, registered_types
from events.store import EventStore, StoreMissing, StoreUnavailable, StreamConflict, is_outage, open_store

__all__ = [
    "DamagedEvent", "DamagedRecord", "Event", "RecordedEvent", "UnknownEvent", "event_class", "registered_types",
    "EventStore", "StreamConflict", "StoreMissing", "StoreUnavailable", "is_outage", "open_store",
]
