"""Work a previous run left half done, and where it belongs (a shard takes only its own channels')."""
from __future__ import annotations

from typing import NamedTuple


class Unfinished(NamedTuple):
    source: str
    conversation_id: str
    channel_id: str
    message_id: str
