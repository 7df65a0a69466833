"""Which Discord messages are for Parley, and which conversation each one continues.

- DMs: every message; one conversation per DM channel.
- Replies to one of Parley's messages: they continue that message's conversation.
- Threads: messages that mention Parley, or in threads of a listening channel; one conversation per thread.
- Channels in ``PARLEY_CHANNELS``: every message; one conversation per channel.
- Elsewhere, a mention starts a conversation of its own, which replies then continue.
Messages from bots (Parley included) are ignored.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MessageFacts:
    message_id: str
    channel_id: str
    channel_kind: str  # "dm" | "thread" | "guild"
    parent_id: str | None  # a thread's channel
    author_is_bot: bool
    content: str
    mentions_bot: bool
    reply_to_id: str | None
    reply_to_bot: bool


@dataclass(frozen=True)
class Addressed:
    conversation_id: str
    text: str


def addressed(facts: MessageFacts, bot_id: str, listen: frozenset[str],
              conversation_of: Callable[[str], str | None]) -> Addressed | None:
    if facts.author_is_bot:
        return None
    text = strip_mention(facts.content, bot_id)
    if facts.channel_kind == "dm":
        return Addressed(f"discord:dm:{facts.channel_id}", text)
    if facts.reply_to_id and facts.reply_to_bot:
        known = conversation_of(facts.reply_to_id)
        return Addressed(known or f"discord:chain:{facts.reply_to_id}", text)
    listening = facts.channel_id in listen or (facts.parent_id is not None and facts.parent_id in listen)
    if facts.channel_kind == "thread" and (facts.mentions_bot or listening):
        return Addressed(f"discord:thread:{facts.channel_id}", text)
    if listening:
        return Addressed(f"discord:channel:{facts.channel_id}", text)
    if facts.mentions_bot:
        return Addressed(f"discord:chain:{facts.message_id}", text)
    return None


def strip_mention(content: str, bot_id: str) -> str:
    return re.sub(rf"<@!?{re.escape(bot_id)}>", "", content).strip()


def is_command(content: str, prefix: str) -> bool:
    return content.startswith(prefix) and len(content) > len(prefix) and not content[len(prefix)].isspace()
