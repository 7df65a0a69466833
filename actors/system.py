"""The running system that ``run.build`` returns: what the transports and command-line tools hold.

It dispatches commands through the Router, sends what was decided but not delivered (after a crash or
downtime), rejoins voice channels, runs timers (audio retention, a command later), reports status and
stops everything in order. It starts each actor under a supervisor. The read models are handed in by the
composition root and handed on to the transports; nothing here reads projections' tables itself.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from actors.commands import (AnswerPending, ApologizeFor, InvokeCommand, PurgeAudio, RejoinVoice, ResumeFineTunes,
                             TranscribePending)
from actors.desk.decider import StatusReport
from actors.listening.timing import TurnTimes
from actors.tuning.models import ModelChoice
from actors.outbox import Deliver, reply_from
from actors.policies import speak_answer
from actors.ports import ChatModel, Draft, ReplyTransport
from actors.router import Router
from actors.supervisor import Supervised
from events import EventStore, RecordedEvent, StreamConflict, is_outage
from events.catalog.desk import ActorRestarted
from events.catalog.conversation import ResponseGenerated
from events.catalog.messages import AboutMessage

log = logging.getLogger("parley.system")


class PendingReplies(Protocol):
    def pending(self, source: str | None = None) -> list[AboutMessage]: ...


class VoiceSessions(Protocol):
    def joined(self, source: str) -> list[str]: ...


class ReadModels(Protocol):
    """The projection runner: it follows the log until stopped, then its database is closed."""

    db: Any
    position: int  # the last log position applied

    def stop(self) -> None: ...


@dataclass
class Parley:
    settings: Any  # adapters.config.Settings: only handed on
    store: EventStore
    router: Router
    conversations: Any  # read models for the transports and tools (projections.*)
    pending_replies: PendingReplies
    model: ModelChoice
    transports: dict[str, ReplyTransport]
    read_models: ReadModels
    llm: ChatModel
    supervised: list[Supervised] = field(default_factory=list)
    audio: Any = None  # adapters.audio_files.AudioStore of received clips
    voice_notes: Any = None  # and of voice-message answers
    voice_sessions: VoiceSessions | None = None
    datasets: Any = None
    answers: Any = None
    clips: Any = None
    rate: Any = None  # actors.access.RateLimit: one per process, shared by the transports and the pools
    turn_times: TurnTimes = field(default_factory=TurnTimes)  # how long the stages of the last voice turns took
    _stopping: threading.Event = field(default_factory=threading.Event)
    _followers: list[threading.Thread] = field(default_factory=list)

    def supervise(self, name: str, actor_class: type, *args: object, **supervision: Any) -> Supervised:
        """Start ``actor_class(supervisor, store, publish, *args)`` under a supervisor that restarts it with
        backoff (and records ``ActorRestarted``)."""
        supervision.setdefault("give_up", self._apologize)
        supervised = Supervised(name, lambda sup: actor_class.start(sup, self.store, self.router.publish, *args),
                                on_restart=self._record_restart, transient=is_outage, **supervision).start()
        self.supervised.append(supervised)
        return supervised

    def _apologize(self, message: object, error: str) -> None:
        """An actor with no reply of its own for a command it gave up on: the Desk tells the author."""
        if isinstance(message, InvokeCommand):
            self.router.dispatch(ApologizeFor(message))

    def _record_restart(self, name: str, error: str, restarts: int) -> None:
        stream = f"actor:{name}"
        for _ in range(10):
            try:
                event = ActorRestarted(actor=name, error=error[:500], restarts=restarts)
                self.router.publish(self.store.append(stream, [event], self.store.stream_version(stream)))
                return
            except StreamConflict:
                continue

    def draft(self, draft: Draft) -> None:
        """Show an answer being written (streamed) on the transport it is for, if that one shows drafts."""
        transport = self.transports.get(draft.source)
        if transport is not None:
            transport.draft(draft)

    def wants_drafts(self, source: str) -> bool:
        return bool(getattr(self.transports.get(source), "wants_drafts", False))

    def status(self) -> StatusReport:
        return StatusReport(store=self.store.description, position=self.store.head(),
                            actors_alive=sum(s.alive for s in self.supervised), actors_total=len(self.supervised),
                            restarts=sum(s.restarts for s in self.supervised), model=self.model(),
                            voice_turns=self.turn_times.summary())

    def finish(self, owns: Callable[[str, str], bool] | None = None) -> None:
        """Finish what a previous run left half done: clips not transcribed, answers not generated yet, voice
        answers not spoken yet, and fine-tuning jobs that were running. ``owns(conversation_id, channel_id)``
        keeps a shard of a split bot to its own channels (the other shards finish theirs)."""
        mine = owns or (lambda conversation_id, channel_id: True)
        for clip in self.clips.untranscribed():
            if mine(clip.conversation_id, clip.channel_id):
                self.router.dispatch(TranscribePending(clip.source, clip.message_id))
        for question in self.conversations.unanswered_conversations():
            if mine(question.conversation_id, question.channel_id):
                self.router.dispatch(AnswerPending(question.conversation_id))
        if self.settings.voice_replies:
            for where, position in self.clips.unspoken():  # the process died while speaking the answer
                answer = next(iter(self.store.read_all(after=position - 1, limit=1)), None)
                if mine(where.conversation_id, where.channel_id) and answer is not None \
                        and isinstance(answer.event, ResponseGenerated) and (said := speak_answer(answer.event)):
                    self.router.dispatch(said)
        self.router.dispatch(ResumeFineTunes())

    def resume(self, source: str, owns: Callable[[str, str], bool] | None = None) -> None:
        """Send what was decided for ``source`` but not delivered (after a crash or downtime); with ``owns``,
        only what is for this shard's channels."""
        for event in self.pending_replies.pending(source):
            if owns is None or owns(event.conversation_id, event.channel_id):
                self.router.dispatch(Deliver(reply_from(event), recovered=True))

    def rejoin_voice(self, source: str, owns_guild: Callable[[str], bool] | None = None) -> None:
        """After a restart: back to the voice channels the log says Parley was in (or record why not); with
        ``owns_guild``, only in this shard's guilds."""
        assert self.voice_sessions is not None
        for guild_id in self.voice_sessions.joined(source):
            if owns_guild is None or owns_guild(guild_id):
                self.router.dispatch(RejoinVoice(source, guild_id))

    def settle(self, timeout: float = 30.0) -> bool:
        """Wait until every actor has handled what it was told (and what that led to) and the read models have
        caught up with the log: then the next command sees what the ones before it recorded. False if it
        took longer than ``timeout`` seconds."""
        deadline, quiet = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            settled = all(s.idle for s in self.supervised) and self.read_models.position >= self.store.head()
            quiet = quiet + 1 if settled else 0
            if quiet >= 2:  # twice in a row: no message was in flight between two actors
                return True
            time.sleep(0.002)
        return False

    def follow_log(self, handlers: Mapping[str, list[Callable[[RecordedEvent], None]]]) -> None:
        """Call ``handlers`` (by event type) for the events any process appends from now on: with several
        processes on one PostgreSQL store, a person forgotten or a model activated in one reaches all."""
        types, position = tuple(handlers), self.store.head()

        def run() -> None:
            nonlocal position
            while not self._stopping.is_set() and not self.store.closed:
                try:
                    batch = list(self.store.read_all(after=position, types=types, limit=500))
                except Exception as e:  # noqa: BLE001  (the store is down: try again shortly)
                    if is_outage(e):
                        log.warning("the log could not be followed (%s); retrying", e)
                    else:
                        log.exception("the log could not be followed; retrying")
                    self._stopping.wait(1.0)
                    continue
                if not batch:
                    self.store.wait_for_append(0.5)
                for recorded in batch:
                    position = recorded.position or position
                    for handler in handlers.get(recorded.type_name, []):
                        try:
                            handler(recorded)
                        except Exception:  # noqa: BLE001  (one broken handler must not stop the others)
                            log.exception("a handler of %s failed", recorded.type_name)

        follower = threading.Thread(target=run, name="log-follower", daemon=True)
        self._followers.append(follower)
        follower.start()

    def start_retention(self, days: float, every_s: float = 6 * 3600) -> None:
        """Delete clips older than ``days`` now and every few hours (``AudioPurged``; transcripts stay)."""
        def run() -> None:
            while not self._stopping.is_set():
                self.router.dispatch(PurgeAudio((datetime.now(timezone.utc) - timedelta(days=days)).isoformat()))
                self._stopping.wait(every_s)

        threading.Thread(target=run, name="audio-retention", daemon=True).start()

    def later(self, delay: float, command: object) -> None:
        """Dispatch ``command`` after ``delay`` seconds (unless Parley stops first)."""
        def fire() -> None:
            if not self._stopping.is_set():
                self.router.dispatch(command)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        timer.start()

    def stop(self) -> None:
        self._stopping.set()
        self.store.wake_followers()
        for follower in self._followers:  # before the store closes: never a read on a closed connection
            follower.join(10)
        for s in self.supervised:
            s.stop()
        self.read_models.stop()
        self.read_models.db.close()
        self.store.close()
        close = getattr(self.llm, "close", None)
        if close is not None:
            close()
