"""Interactions as Discord sends them today: the ``channel`` object may be missing (``channel_id`` is always there).

discord.py 2.7 reads the channel only from that object, so such a click had no channel at all and Parley failed on
it (``AttributeError`` at the first ``interaction.channel.id``). Before discord.py parses the event, the object is
filled in from the id: the cached channel when discord.py knows it, else the least a channel is (its id, and a DM
when there is no guild), which is all Parley reads of it."""
from __future__ import annotations

import logging
from collections.abc import Callable

import discord

log = logging.getLogger("parley.discord")

GUILD_TEXT, DM = 0, 1  # Discord's channel types


def with_channel(data: dict) -> dict:
    """``data`` (an INTERACTION_CREATE payload) with a ``channel`` object, made from ``channel_id`` if missing."""
    if data.get("channel") or not data.get("channel_id"):
        return data
    channel = {"id": str(data["channel_id"]), "type": GUILD_TEXT if data.get("guild_id") else DM, "name": "",
               "position": 0}
    if not data.get("guild_id"):
        user = data.get("user") or (data.get("member") or {}).get("user")
        channel["recipients"] = [user] if user else []
    return {**data, "channel": channel}


def fill_interaction_channels(bot: discord.Client) -> None:
    """Wrap discord.py's INTERACTION_CREATE parser (in the dict the gateway reads) with ``with_channel``."""
    parsers: dict[str, Callable[[object], None]] = bot._connection.parsers
    parse = parsers["INTERACTION_CREATE"]

    def parse_with_channel(data: object) -> None:
        parse(with_channel(data) if isinstance(data, dict) else data)
    parsers["INTERACTION_CREATE"] = parse_with_channel
