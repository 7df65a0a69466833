"""Who may talk to Parley, and who is an admin: a pure policy over facts the transport knows.

- Blocked users and members of blocked roles are ignored quietly (no reply: a reply is what they want).
- Blocked channels, and channels outside a non-empty allow list, are ignored quietly too: Parley does
  not chatter where it is not wanted. Threads follow their parent channel.
- DMs, when ``allow_dms`` is off, get one reply saying so.
- With allow lists of users or roles, anyone else gets one reply saying they are not on them (in DMs
  roles are unknown, so only the user list lets someone in there).
- Operators (``admin_ids``; in the console, the local user) act on every scope (``events.scopes``): what is
  shared by all servers, every server's data, ``forget`` by id. A guild's admins (its owner, members with
  Manage Server, members with ``admin_role``) act on their guild only, and only in it. ``may_act_on`` is the
  one place that says so; deciders ask it, never compare guild ids themselves.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

QUIET = "quiet"  # ignored without a reply
NOT_ALLOWED = "not_allowed"
DMS_OFF = "dms_off"
RATE_LIMITED = "rate_limited"
BUSY = "busy"

REFUSAL_TEXT = {
    NOT_ALLOWED: "Sorry, I only answer people on this bot's allow list. Ask the bot's operator if you need access.",
    DMS_OFF: "Sorry, I don't answer direct messages here. Mention me in a server channel instead.",
    "outside_data_dir": "I only read files inside my data dir: copy the file there, then name it (relative to it).",
    "no_such_file": "There is no such file in my data dir: name a file inside it (relative to it).",
    RATE_LIMITED: "You're writing faster than I answer here: please wait a minute, then I'll answer again.",
    BUSY: "Sorry, I'm busy with many questions right now and could not take yours: please ask again in a minute.",
}


@dataclass(frozen=True)
class Person:
    """What the transport knows about who wrote, and where."""

    user_id: str
    role_ids: frozenset[str] = frozenset()
    role_names: frozenset[str] = frozenset()
    is_guild_owner: bool = False
    manages_guild: bool = False  # Discord's Manage Server permission, in this guild
    channel_id: str = ""
    parent_channel_id: str | None = None  # a thread's channel
    in_dm: bool = False
    local: bool = False  # the console's user, on the machine Parley runs on


@dataclass(frozen=True)
class AccessPolicy:
    admin_ids: frozenset[str] = frozenset()
    admin_role: str | None = None
    allow_users: frozenset[str] = frozenset()
    block_users: frozenset[str] = frozenset()
    allow_roles: frozenset[str] = frozenset()
    block_roles: frozenset[str] = frozenset()
    allow_channels: frozenset[str] = frozenset()
    block_channels: frozenset[str] = frozenset()
    allow_dms: bool = True

    def is_operator(self, p: Person) -> bool:
        return p.local or p.user_id in self.admin_ids

    def is_admin(self, p: Person) -> bool:
        """An admin where ``p`` is: an operator anywhere, a guild's admin in that guild (never in DMs)."""
        if self.is_operator(p):
            return True
        if p.in_dm:
            return False
        if self.admin_role and (self.admin_role in p.role_ids or self.admin_role in p.role_names):
            return True
        return p.is_guild_owner or p.manages_guild

    def verdict(self, p: Person) -> str:
        """"" when ``p`` may talk to Parley here; else ``QUIET`` or a refusal reason for ``REFUSAL_TEXT``."""
        if p.local:
            return ""
        if p.user_id in self.block_users or self._has_role(p, self.block_roles):
            return QUIET
        if self.is_admin(p):
            return ""
        if p.in_dm:
            if not self.allow_dms:
                return DMS_OFF
        else:
            channels = {p.channel_id} | ({p.parent_channel_id} if p.parent_channel_id else set())
            if channels & self.block_channels:
                return QUIET
            if self.allow_channels and not channels & self.allow_channels:
                return QUIET
        if (self.allow_users or self.allow_roles) and p.user_id not in self.allow_users \
                and not self._has_role(p, self.allow_roles):
            return NOT_ALLOWED
        return ""

    @staticmethod
    def _has_role(p: Person, roles: frozenset[str]) -> bool:
        return bool(roles & p.role_ids or roles & p.role_names)


class RateLimit:
    """At most ``per_minute`` messages a minute from one person (``PARLEY_RATE_LIMIT``), counted by when each
    was sent (so what is read after downtime counts as written). The first message over the limit in a
    minute gets the polite ``RATE_LIMITED`` refusal; the others that minute are ``QUIET``."""

    def __init__(self, per_minute: int, window_s: float = 60.0):
        self.per_minute, self.window_s = per_minute, window_s
        self._sent: dict[str, deque[float]] = {}
        self._told: dict[str, float] = {}  # person -> when they were last told
        self._lock = threading.Lock()

    def verdict(self, person: str, at: float) -> str:
        with self._lock:
            sent = self._sent.setdefault(person, deque())
            while sent and sent[0] <= at - self.window_s:
                sent.popleft()
            if len(sent) < self.per_minute:
                sent.append(at)
                return ""
            if self._told.get(person, float("-inf")) > at - self.window_s:
                return QUIET
            self._told[person] = at
            if len(self._sent) > 10_000:  # bounded: forget who has been quiet for a minute
                self._sent = {p: d for p, d in self._sent.items() if d and d[-1] > at - self.window_s}
            return RATE_LIMITED


def may_act_on(scope: str, *, where: str, is_admin: bool, is_operator: bool) -> bool:
    """May someone who is (or is not) an admin where they are (``where``, a scope) act on what belongs to
    ``scope``? Operators on everything; a guild's admins on their guild's things, from inside it."""
    if is_operator:
        return True
    return is_admin and scope == where and scope.startswith("guild:")
