"""The Transcriber shell: records each clip, runs the speech-to-text engine on it, records the outcome.

A pool of them (``PARLEY_TRANSCRIBERS``) transcribes clips in parallel: the engine's C code releases the
GIL. A clip is on disk before its ``AudioReceived`` is recorded, so a restart mid-transcription finishes
it (``TranscribePending``).
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import replace
from datetime import datetime

from actors.fair_share import FairShare
from actors.hearing import decider as transcription
from actors.commands import (CompleteTranscription, FailTranscription, PurgeAudio, ReceiveAudio,
                             TranscribePending)
from actors.ports import AudioFiles, SpeechToText, TranscriptionError
from actors.streams import DecidedStreams, Publish
from actors.supervisor import Supervised, SupervisedActor
from events import EventStore
from events.catalog.hearing import clip_stream

log = logging.getLogger("parley.transcriber")


def _key(source: str, message_id: str) -> str:
    return f"{source}:{message_id}"


class TranscriberActor(SupervisedActor):
    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish, engine: SpeechToText | None,
                 files: AudioFiles, limits: transcription.AudioLimits):
        super().__init__(supervisor)
        self.engine = engine
        self.files = files
        self.limits = limits
        self.store = store
        self.clips = DecidedStreams(store, publish, transcription.Clip(), transcription.evolve,
                                    lambda key: clip_stream(*key.split(":", 1)), capacity=1000)

    def handle(self, message: object) -> None:
        if isinstance(message, ReceiveAudio):
            key = _key(message.source, message.message_id)
            self.clips.execute(key, lambda s: transcription.decide(s, message, self.limits))
            self._transcribe(key)
        elif isinstance(message, TranscribePending):
            self._transcribe(_key(message.source, message.message_id))
        elif isinstance(message, PurgeAudio):
            self._purge(message)
        else:
            raise TypeError(f"Transcriber cannot handle {type(message).__name__}")

    def _transcribe(self, key: str) -> None:
        state = self.clips.load(key)
        if state.received is None or state.finished:
            return
        r = state.received
        outcome: object
        path = self.files.path(r.audio_hash) if r.audio_hash else None
        if self.engine is None:
            outcome = FailTranscription(r.source, r.message_id, "no_model")
        elif path is None:
            outcome = FailTranscription(r.source, r.message_id, "internal", "the clip is not on disk")
        else:
            try:
                t = self.engine.transcribe(path)
                outcome = CompleteTranscription(r.source, r.message_id, t.text, t.words, t.duration_s, t.model,
                                                t.decode_s, t.recognize_s)
            except TranscriptionError as e:
                log.info("clip %s not transcribed: %s", key, e)
                outcome = FailTranscription(r.source, r.message_id, e.reason, e.detail)
        self.clips.execute(key, lambda s: transcription.decide(s, outcome, self.limits))

    def _purge(self, command: PurgeAudio) -> None:
        before = datetime.fromisoformat(command.before)
        old, recent = [], set()
        for recorded in self.store.read_all(types=("AudioReceived",)):
            if recorded.recorded_at < before:
                old.append(recorded.event)
            else:
                recent.add(recorded.event.audio_hash)  # type: ignore[attr-defined]
        said = [(r.recorded_at < before, r.event) for r in self.store.read_all(types=("UtteranceHeard",))]
        recent |= {u.audio_hash for is_old, u in said if not is_old}  # type: ignore[attr-defined]
        for r in old:
            # Files are content-addressed: the same bytes sent again recently keep their file.
            if r.audio_hash and r.audio_hash not in recent:  # type: ignore[attr-defined]
                self.files.delete(r.audio_hash)  # type: ignore[attr-defined]
            self.clips.execute(_key(r.source, r.message_id), transcription.purge)  # type: ignore[attr-defined]
        for is_old, u in said:  # what was heard in voice channels: the same retention (the words stay)
            digest = u.audio_hash  # type: ignore[attr-defined]
            if is_old and digest and digest not in recent:
                self.files.delete(digest)
                self.clips.execute(_key(u.source, u.message_id),  # type: ignore[attr-defined]
                                   lambda s, digest=digest: transcription.purge_heard(s, digest))


class TranscriberPool:
    """The Transcribers, a clip always to the same one. A clip for a Transcriber that already has
    ``max_waiting`` clips waiting is refused as busy: recorded (``TranscriptionFailed`` "busy") and the person
    told at once by ``reception``, a Transcriber kept for that, instead of after minutes of queue. The console
    is never refused, nor a clip that is already in the log (a restart's ``TranscribePending``)."""

    def __init__(self, members: list[Supervised], max_waiting: int = 0, reception: Supervised | None = None,
                 share: FairShare | None = None):
        self.members = members
        self.max_waiting = max_waiting
        self.reception = reception
        self.share = share or FairShare()  # one person's clips never queue ahead of everyone else's

    def tell(self, command: object) -> None:
        if isinstance(command, PurgeAudio):
            self.members[0].tell(command)
            return
        key = f"{getattr(command, 'source')}:{getattr(command, 'message_id')}"
        member = self.members[zlib.crc32(key.encode()) % len(self.members)]
        if self.max_waiting and self.reception is not None and isinstance(command, ReceiveAudio) \
                and command.source != "console" and not command.refused \
                and member.waiting + self.share.waiting(command.author_id) >= self.max_waiting:
            log.warning("busy: %d clips wait for %s; refusing %s", member.waiting, member.name, key)
            self.reception.tell(replace(command, refused="busy"))
            return
        if isinstance(command, ReceiveAudio) and command.source != "console" and not command.refused:
            self.share.submit(command.author_id, lambda done: member.tell(command, on_done=done))
            return
        member.tell(command)
