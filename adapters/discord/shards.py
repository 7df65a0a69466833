"""Which guilds, channels and DMs this process answers when one bot is split into shard processes.

Discord routes a guild's events to shard ``(guild_id >> 22) % shard_count`` and DMs to shard 0. Every
shard shares one event store, so work the log says is unfinished (replies not delivered, questions not
answered, clips not transcribed, voice channels to rejoin, history to catch up) is taken by the shard
whose gateway would have brought it, and by no other: two shards never answer the same message.
"""
from __future__ import annotations

from dataclasses import dataclass

import discord

from adapters.config import Settings

DM_CONVERSATION = "discord:dm:"  # adapters.discord.addressing names DM conversations so


@dataclass(frozen=True)
class Shards:
    count: int = 0  # 0: not split (one connection gets everything)
    ids: frozenset[int] = frozenset()

    @classmethod
    def of(cls, settings: Settings) -> Shards:
        if not settings.shard_count:
            return cls()
        return cls(settings.shard_count, frozenset(settings.shard_ids or range(settings.shard_count)))

    @property
    def split(self) -> bool:
        return self.count > 0

    def owns_guild(self, guild_id: int | str) -> bool:
        return not self.split or (int(guild_id) >> 22) % self.count in self.ids

    @property
    def owns_dms(self) -> bool:
        return not self.split or 0 in self.ids

    def owns_channel(self, channel: object) -> bool:
        guild = getattr(channel, "guild", None)
        return self.owns_guild(guild.id) if guild is not None else self.owns_dms

    def owner(self, bot: discord.Client):  # noqa: ANN201  (a predicate over (conversation_id, channel_id))
        """Whether this process owns the work of a conversation in a channel: a DM conversation belongs to
        shard 0; a guild channel to its guild's shard, known from the channels this process can see (a
        shard sees only its guilds)."""
        def owns(conversation_id: str, channel_id: str) -> bool:
            if not self.split:
                return True
            if conversation_id.startswith(DM_CONVERSATION):
                return self.owns_dms
            channel = bot.get_channel(int(channel_id)) if channel_id.isdigit() else None
            return channel is not None and self.owns_channel(channel)
        return owns

    def mark_source(self, source: str, shard_id: int) -> str:
        """Where a shard records when it connected: its own mark, so a shard that was down reads its
        channels from when it was last there, not from when another shard was."""
        return f"{source}:shard:{shard_id}/{self.count}"
