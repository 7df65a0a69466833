"""Reading what was written while Parley was away, after every (re)connection.

The anchor of each channel is the newest message recorded *before this connection*: it is taken when
the gateway's READY arrives, before any message of the new session is handled, because on a live
server messages arrive right after IDENTIFY and would move a later anchor past the whole gap. Channels
Parley never answered in (text channels and active threads it can see) are read from the newest moment
it knows it was connected (its ``mark``). A margin before each anchor covers messages that reached a
process that died before recording them (answers are recorded in parallel, not in arrival order); the
Responder ignores what it recorded already, so reading a message twice costs nothing.

DMs opened while Parley was away cannot be found: Discord lists no DM channels to a bot.

A shard of a split bot reads only its own channels (its guilds', and DMs on shard 0), from its own mark:
the shards that stayed up moved the shared marks past the time this one was down.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

import discord

from adapters.discord.shards import Shards

log = logging.getLogger("parley.discord")
MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class Anchors:
    """What was recorded before this connection: newest message per channel, and the newest mark."""

    newest: dict[str, str]
    mark: str | None

    def start(self, channel_id: str) -> int | None:
        """The snowflake after which to read ``channel_id``, or None (nothing to catch up)."""
        candidates = [int(x) for x in (self.newest.get(channel_id), self.mark) if x and x.isdigit()]
        if not candidates:
            return None
        newest = max(candidates)
        moment = discord.utils.snowflake_time(newest) - MARGIN
        return max(0, discord.utils.time_snowflake(moment))

    def of_shards(self, bot: discord.Client, shards: Shards) -> Anchors:
        """Only this process's channels, and its mark raised to the newest message recorded in them. A
        channel this process cannot see stays only where it may be a DM of shard 0 (checked once fetched)."""
        if not shards.split:
            return self
        newest: dict[str, str] = {}
        for channel_id, message_id in self.newest.items():
            channel = bot.get_channel(int(channel_id)) if channel_id.isdigit() else None
            if (channel is None and shards.owns_dms) or (channel is not None and shards.owns_channel(channel)):
                newest[channel_id] = message_id
        owned = [int(m) for c, m in newest.items() if m.isdigit() and bot.get_channel(int(c)) is not None]
        marks = [int(self.mark)] if self.mark and self.mark.isdigit() else []
        mark = max(marks + owned) if marks + owned else None
        return Anchors(newest, str(mark) if mark is not None else None)


@dataclass
class CatchUpReport:
    channels_read: int = 0
    messages_offered: int = 0
    failures: int = 0
    channels_at_limit: list[str] = field(default_factory=list)


async def catch_up(bot: discord.Client, anchors: Anchors, limit: int,
                   offer: Callable[[discord.Message], Awaitable[bool]], shards: Shards = Shards()) -> CatchUpReport:
    """Offer every message after each channel's anchor, oldest first, at most ``limit`` per channel.
    A message or a channel that fails costs only itself."""
    report = CatchUpReport()
    if limit <= 0:
        return report
    anchors = anchors.of_shards(bot, shards)
    for channel_id, channel in _channels(bot, anchors):
        after = anchors.start(channel_id)
        if after is None:
            continue
        last = getattr(channel, "last_message_id", None)
        if channel is not None and last is not None and last <= after:
            continue  # nothing new there: no request needed
        try:
            if channel is None:
                channel = await bot.fetch_channel(int(channel_id))
                if not shards.owns_channel(channel):
                    continue  # another shard's channel (a guild this process does not run)
            read = 0
            async for raw in _history(bot, channel_id, after, limit):
                read += 1
                try:
                    # Built here, one at a time (not by discord.py's history iterator, which stops at the
                    # first message it cannot parse): one malformed message costs only itself.
                    message = discord.Message(state=bot._connection, channel=channel, data=raw)  # type: ignore[arg-type]
                    if await offer(message):
                        report.messages_offered += 1
                except Exception as e:  # noqa: BLE001
                    report.failures += 1
                    log.warning("catch-up: message %s in channel %s failed: %r", raw.get("id"), channel_id, e)
            report.channels_read += 1
            if read >= limit:
                report.channels_at_limit.append(channel_id)
                log.warning("catch-up: channel %s has more than %d messages since Parley was last there; "
                            "older ones beyond PARLEY_CATCH_UP_LIMIT are not answered", channel_id, limit)
        except Exception as e:  # a channel gone, forbidden, or malformed: the others still count
            report.failures += 1
            log.warning("catch-up: cannot read channel %s: %r", channel_id, e)
    return report


PAGE = 100  # Discord's most messages per history request


async def _history(bot: discord.Client, channel_id: str, after: int, limit: int) -> AsyncIterator[dict]:
    """Raw messages after ``after``, oldest first, page by page, at most ``limit``."""
    left = limit
    while left > 0:
        want = min(PAGE, left)
        page = await bot.http.logs_from(int(channel_id), want, after=after)
        if not isinstance(page, list):
            raise TypeError(f"history of channel {channel_id} is not a list")
        ordered = sorted((m for m in page if isinstance(m, dict) and str(m.get("id", "")).isdigit()),
                         key=lambda m: int(m["id"]))
        for raw in ordered:
            yield raw
        left -= len(ordered)
        if len(page) < want or not ordered:
            return
        after = int(ordered[-1]["id"])


def _channels(bot: discord.Client, anchors: Anchors) -> Iterable[tuple[str, object | None]]:
    """Channels with recorded conversations (DMs too), then every text channel and active thread the
    bot can see (only when a mark says since when)."""
    seen: set[str] = set()
    for channel_id in sorted(anchors.newest, key=lambda c: int(c) if c.isdigit() else 0):
        if channel_id.isdigit():
            seen.add(channel_id)
            yield channel_id, bot.get_channel(int(channel_id))
    if anchors.mark is None:
        return
    me = bot.user
    for guild in bot.guilds:  # a shard's bot has only its own guilds
        member = guild.me if me is not None else None
        visible: list[discord.abc.GuildChannel | discord.Thread] = [*guild.text_channels, *guild.threads]
        for channel in visible:
            channel_id = str(channel.id)
            if channel_id in seen:
                continue
            if member is not None:
                permissions = channel.permissions_for(member)
                if not (permissions.view_channel and permissions.read_message_history):
                    continue
            seen.add(channel_id)
            yield channel_id, channel
