"""Which voice channel Parley is in, per guild: what a restart rejoins."""
from __future__ import annotations

from events import RecordedEvent
from events.catalog.voice import VoiceChannelJoined, VoiceChannelLeft
from projections.tracking import ReadModels, Transaction

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS voice_sessions (source TEXT, guild_id TEXT, voice_channel_id TEXT, "
    "PRIMARY KEY (source, guild_id))",
]


class VoiceSessions:
    name = "voice"
    tables = ('voice_sessions',)

    def __init__(self, db: ReadModels):
        self.db = db
        db.create(SCHEMA)

    def apply(self, db: Transaction, recorded: RecordedEvent) -> None:
        e = recorded.event
        if isinstance(e, VoiceChannelJoined):
            db.execute("INSERT INTO voice_sessions VALUES (?, ?, ?) ON CONFLICT (source, guild_id) "
                       "DO UPDATE SET voice_channel_id=excluded.voice_channel_id",
                       (e.source, e.guild_id, e.voice_channel_id))
        elif isinstance(e, VoiceChannelLeft):
            db.execute("DELETE FROM voice_sessions WHERE source=? AND guild_id=?", (e.source, e.guild_id))

    def joined(self, source: str) -> list[str]:
        """The guilds where Parley was in a voice channel when it last stopped."""
        return [r[0] for r in self.db.query("SELECT guild_id FROM voice_sessions WHERE source=? ORDER BY guild_id",
                                            (source,))]
