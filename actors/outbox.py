"""The outbox: delivers each decided reply once, and records that it did.

A reply event (answer, failure, command answer, rejection) becomes a ``Deliver``; the transport
delivers without blocking and reports back; the outbox appends ``ReplySent`` (or
``ReplyDeliveryFailed``) to the reply's own stream with expected version 0, so a reply is recorded as
delivered at most once even if two deliveries race. Transient failures are retried with backoff.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from actors.ports import Delivered, DeliveryResult, NotDelivered, Reply, ReplyTransport
from actors.streams import Publish
from actors.supervisor import Supervised, SupervisedActor
from events import EventStore, StreamConflict
from events.catalog.delivery import ReplyDeliveryFailed, ReplySent, reply_part, reply_stream, reply_text
from events.catalog.messages import AboutMessage
from events.catalog.speaking import VoiceReplyPrepared
from events.model import Event

log = logging.getLogger("parley.outbox")

RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Deliver:
    reply: Reply
    attempt: int = 0
    recovered: bool = False  # found pending after a restart (it may have been recorded since): check the log


@dataclass(frozen=True)
class Settle:
    reply: Reply
    result: DeliveryResult
    attempt: int


def reply_from(event: AboutMessage) -> Reply:
    voice = dict(voice_hash=event.audio_hash, duration_s=event.duration_s, waveform=event.waveform) \
        if isinstance(event, VoiceReplyPrepared) else {}
    return Reply(source=event.source, conversation_id=event.conversation_id, channel_id=event.channel_id,
                 message_id=event.message_id, text=reply_text(event), kind=event.type_name,
                 part=reply_part(event), attachment=getattr(event, "attachment", ""),
                 choices=tuple(getattr(event, "choices", ())), **voice)


class OutboxActor(SupervisedActor):
    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish,
                 transports: dict[str, ReplyTransport], retry_delays: tuple[float, ...] = RETRY_DELAYS):
        super().__init__(supervisor)
        self.store = store
        self.publish = publish
        self.transports = transports
        self.retry_delays = retry_delays
        self.in_flight: set[tuple[str, str, str]] = set()

    def handle(self, message: object) -> None:
        if isinstance(message, Deliver):
            self._deliver(message)
        elif isinstance(message, Settle):
            self._settle(message)
        else:
            raise TypeError(f"Outbox cannot handle {type(message).__name__}")

    def _deliver(self, d: Deliver) -> None:
        reply = d.reply
        key = reply.key
        transport = self.transports.get(reply.source)
        if transport is None:
            return  # that transport is not running in this process; it is sent when it runs
        if key in self.in_flight and d.attempt == 0:
            return
        # A reply just decided cannot have been delivered yet; one found pending after a restart, or a
        # retry, may have been recorded meanwhile.
        if (d.recovered or d.attempt) and \
                self.store.stream_version(reply_stream(reply.source, reply.message_id, reply.part)):
            return  # recorded as delivered (or given up) already
        self.in_flight.add(key)
        tell = self.supervisor.tell
        transport.deliver(reply, lambda result: tell(Settle(reply, result, d.attempt)))

    def _settle(self, s: Settle) -> None:
        reply, result = s.reply, s.result
        if isinstance(result, NotDelivered) and not result.permanent and s.attempt < len(self.retry_delays):
            delay = self.retry_delays[s.attempt]
            log.warning("reply to %s not delivered (%s); retry %d in %.1fs", reply.message_id, result.reason,
                        s.attempt + 1, delay)
            timer = threading.Timer(delay, self.supervisor.tell, args=(Deliver(reply, s.attempt + 1),))
            timer.daemon = True
            timer.start()
            return
        self.in_flight.discard(reply.key)
        common = dict(conversation_id=reply.conversation_id, message_id=reply.message_id,
                      channel_id=reply.channel_id, source=reply.source)
        event: Event
        if isinstance(result, Delivered):
            event = ReplySent(**common, sent_message_ids=result.sent_message_ids, part=reply.part)
        else:
            log.error("reply to %s not delivered, giving up: %s", reply.message_id, result.reason)
            event = ReplyDeliveryFailed(**common, reason=result.reason, part=reply.part)
        try:
            recorded = self.store.append(reply_stream(reply.source, reply.message_id, reply.part), [event], 0)
        except StreamConflict:
            return  # another delivery recorded it first
        self.publish(recorded)
