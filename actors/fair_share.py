"""Fair share of the heavy work (generation, transcription) between people: nobody's queue holds up another's.

A pool (Responders, Transcribers) hands its members at most ``per_person`` jobs of one person at a time (one by
default: then whoever asks waits behind at most one job of anyone else, at the LLM server too); that
person's further jobs wait here, in their own queue, in order, and go to the pool one by one as theirs finish.
Someone who floods therefore has at most ``per_person`` jobs ahead of anyone else's in any member's inbox,
however many they send (how many they may send is ``actors.access.RateLimit``'s). Jobs nobody in particular
caused (a restart's pending work) pass straight through.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

Start = Callable[[Callable[[], None]], None]  # starts a job; calls the given function once the job is done


class FairShare:
    def __init__(self, per_person: int = 1):
        self.per_person = max(1, per_person)
        self._running: dict[str, int] = {}
        self._waiting: dict[str, deque[Start]] = {}
        self._lock = threading.Lock()

    def submit(self, person: str, start: Start) -> None:
        """Start the job now if ``person`` has fewer than ``per_person`` running, else after theirs finish."""
        with self._lock:
            if self._running.get(person, 0) >= self.per_person:
                self._waiting.setdefault(person, deque()).append(start)
                return
            self._running[person] = self._running.get(person, 0) + 1
        start(lambda: self._finished(person))

    def waiting(self, person: str) -> int:
        with self._lock:
            return len(self._waiting.get(person, ()))

    def _finished(self, person: str) -> None:
        with self._lock:
            queue = self._waiting.get(person)
            if not queue:
                self._waiting.pop(person, None)
                left = self._running.get(person, 1) - 1
                if left > 0:
                    self._running[person] = left
                else:
                    self._running.pop(person, None)
                return
            start = queue.popleft()  # their slot passes to their next job
        start(lambda: self._finished(person))
