"""A small jitter buffer per SSRC: RTP packets back in sequence order before anything else reads them.

On the internet packets arrive reordered by a few, now and then twice. In order, a packet goes on at once (the
buffer adds no delay). After a gap, the packets behind it wait, at most ``window_s`` (``PARLEY_JITTER_MS``), for the
missing one; when it comes they all go on in order; when it does not, the gap is given up on (the receiver conceals
it as silence) and the rest goes on. A packet seen already is a duplicate and one behind what went on is late: both
are dropped here, before any decryption, so neither reaches DAVE (where a repeat fails as a replay) or the decoder.
Pure bookkeeping: no socket, no clock of its own (``now`` is given)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

SEQUENCES = 65536
RESTART = 1000  # a jump further than this (forward or back) is a stream that started over, not a gap
PASSED = 256  # numbers remembered as gone on, to know a repeat (5 s of audio)


class Sequenced(Protocol):
    sequence: int
    ssrc: int


P = TypeVar("P", bound=Sequenced)


@dataclass
class _Stream(Generic[P]):
    next: int  # the sequence number that goes on next
    waiting: dict[int, tuple[float, P]] = field(default_factory=dict)  # sequence -> (arrived, packet)
    passed: dict[int, None] = field(default_factory=dict)  # the last PASSED numbers that went on (repeats), in order

    def went_on(self, sequence: int) -> None:
        self.passed[sequence] = None
        if len(self.passed) > PASSED:
            del self.passed[next(iter(self.passed))]


class JitterBuffer(Generic[P]):
    def __init__(self, window_s: float = 0.06, max_waiting: int = 50, counts: Counter[str] | None = None):
        self.window_s = window_s
        self.max_waiting = max_waiting  # a second of audio at most waits behind one gap
        self.streams: dict[int, _Stream[P]] = {}
        # "reordered" (in time), "duplicate", "late" (after its gap went on): counted where the caller counts
        self.counts: Counter[str] = Counter() if counts is None else counts

    def push(self, packet: P, now: float) -> list[P]:
        """``packet`` arrived: what can go on now, in order (often just it)."""
        stream = self.streams.get(packet.ssrc)
        if stream is None:
            stream = self.streams[packet.ssrc] = _Stream(packet.sequence)
        if packet.sequence == stream.next and not stream.waiting and packet.sequence not in stream.passed:
            stream.went_on(packet.sequence)  # in order, nothing waiting: on at once
            stream.next = (packet.sequence + 1) % SEQUENCES
            return [packet]
        ahead = (packet.sequence - stream.next) % SEQUENCES
        behind = (stream.next - packet.sequence) % SEQUENCES
        # out of order: a number that went on lately is a repeat, whichever side of ``next`` it falls (after a
        # restart, a repeat of a packet from before it falls ahead)
        if packet.sequence in stream.waiting or packet.sequence in stream.passed:
            self.counts["duplicate"] += 1
            return []
        if 0 < behind <= RESTART:
            self.counts["late"] += 1  # its gap was given up on already (concealed): too late to be heard
            return []
        if ahead > RESTART and behind > RESTART:  # the stream started over: what waited goes on, then this
            out = self._drain(stream)
            stream.next = packet.sequence
            stream.waiting[packet.sequence] = (now, packet)
            return out + self._release(stream, now)
        if not ahead and stream.waiting:
            self.counts["reordered"] += 1  # the one the others waited for: late, but in time
        stream.waiting[packet.sequence] = (now, packet)
        return self._release(stream, now)

    def tick(self, now: float) -> list[P]:
        """What waited too long for a gap that was never filled: it goes on now."""
        out: list[P] = []
        for stream in self.streams.values():
            if stream.waiting:
                out += self._release(stream, now)
        return out

    def forget(self, ssrc: int) -> list[P]:
        """The SSRC is gone (its person left): what waited goes on, and its state goes."""
        stream = self.streams.pop(ssrc, None)
        return self._drain(stream) if stream is not None else []

    def _release(self, stream: _Stream[P], now: float) -> list[P]:
        out: list[P] = []
        while stream.waiting:
            if stream.next in stream.waiting:
                out.append(stream.waiting.pop(stream.next)[1])
                stream.went_on(stream.next)
                stream.next = (stream.next + 1) % SEQUENCES
                continue
            oldest = min(arrived for arrived, _ in stream.waiting.values())
            if now - oldest < self.window_s and len(stream.waiting) <= self.max_waiting:
                break  # the missing one may still come
            # given up on: on from the first packet that did come (the receiver conceals the gap)
            stream.next = min(stream.waiting, key=lambda s: (s - stream.next) % SEQUENCES)
        return out

    def _drain(self, stream: _Stream[P]) -> list[P]:
        out = [packet for _, (_, packet) in sorted(stream.waiting.items(),
                                                   key=lambda kv: (kv[0] - stream.next) % SEQUENCES)]
        for packet in out:
            stream.went_on(packet.sequence)
        stream.waiting.clear()
        return out
