"""A voice call's DAVE group without a network, for the receive path's tests and benchmark: Parley's own
``davey`` session (as discord.py holds it), people who join and leave (each a bare ``davey`` session, re-keying
the group as Discord's voice server has them do), and the connection state a ``VoiceReceiver`` reads."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import SimpleNamespace

import davey

from adapters.discord.rtp import XCHACHA, seal_packet
from tests.fakes.discord_voice import ExternalSender

CHANNEL = 4321


@dataclass
class Person:
    user_id: int
    ssrc: int
    session: davey.DaveSession
    sequence: int = 100
    sent: int = 0


@dataclass
class Call:
    bot_id: int = 1
    mode: str = XCHACHA
    key: bytes = field(default_factory=lambda: os.urandom(32))
    people: dict[int, Person] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.external = ExternalSender()
        self.bot = davey.DaveSession(1, self.bot_id, CHANNEL)
        self.bot.set_external_sender(self.external.package())
        self.counter = 0
        self.state = SimpleNamespace(mode=self.mode, secret_key=list(self.key), dave_session=self.bot,
                                     dave_protocol_version=1, voice_client=SimpleNamespace(channel=SimpleNamespace(id=CHANNEL)))

    def join(self, user_id: int, ssrc: int, *, welcome: bool = True) -> Person:
        """``user_id`` joins: the voice server proposes the Add, Parley commits, everyone moves to the next
        epoch (the newcomer by the welcome). With ``welcome`` False the bot's commit is held back (``welcome()``
        finishes it): frames sent meanwhile arrive before Parley has the keys."""
        session = davey.DaveSession(1, user_id, CHANNEL)
        session.set_external_sender(self.external.package())
        epoch = self.bot.epoch or 0
        proposals = self.external.add_proposals(CHANNEL, epoch, session.get_serialized_key_package())
        result = self.bot.process_proposals(davey.ProposalsOperationType.append, proposals)
        for other in self.people.values():
            other.session.process_proposals(davey.ProposalsOperationType.append, proposals)
            other.session.process_commit(result.commit)
        session.process_welcome(result.welcome)
        person = self.people[user_id] = Person(user_id, ssrc, session)
        self._pending = result.commit
        if welcome:
            self.welcome()
        return person

    def welcome(self) -> None:
        self.bot.process_commit(self._pending)

    def rotate_key(self) -> bytes:
        """A reconnect: the voice server hands out a new transport key; returns the old one."""
        old, self.key = self.key, os.urandom(32)
        self.state.secret_key = list(self.key)
        return old

    def datagram(self, person: Person, opus: bytes, *, e2ee: bool = True, key: bytes | None = None,
                 extension: bytes = b"", padding: int = 0) -> bytes:
        """One 20 ms frame from ``person``, as their client sends it."""
        payload = person.session.encrypt_opus(opus) if e2ee else opus
        self.counter += 1
        person.sequence += 1
        person.sent += 1
        return seal_packet(self.mode, key or self.key, person.sequence, 960 * person.sequence, person.ssrc, payload,
                           self.counter, extension=extension, padding=padding)
