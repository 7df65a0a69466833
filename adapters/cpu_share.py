"""Background work that gives the CPU back while the bot answers.

A local fine-tuning job trains at the lowest priority (``SCHED_IDLE``), and that is not enough on a small machine:
llama.cpp's threads meet at a barrier at every step of a token, so one of them preempted by the trainer for a
time slice holds all of them up (measured on 2 cores: an answer took 0.2 s idle, 0.4-8 s beside an idle-priority
trainer, 14-32 s beside a normal one). So the trainer's process is paused (SIGSTOP) while the local model
generates and resumed (SIGCONT) when no answer is being written: training goes on between answers.

Answers that never stop (a busy bot) would starve it for good, and a turn while an answer runs is no turn at all
(at idle priority the trainer gets nothing while the answer's threads take both cores). So the background is owed
``min_share`` of each ``period_s`` (5% of 10 s by default): when it ran less, it gets a turn of its own: the answers
under way finish, the next ones wait for the turn to end (half a second at most by default).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

log = logging.getLogger("parley.cpu")


class Yielding:
    """Processes (named by whoever registers them) paused while foreground work runs. Thread-safe."""

    def __init__(self, min_share: float = 0.05, period_s: float = 10.0) -> None:
        self._lock = threading.Lock()
        self._busy = 0
        self._sources: list[Callable[[], Iterable[int]]] = []
        self.min_share, self.period_s = min_share, period_s
        self._changed = threading.Condition(self._lock)  # told when foreground work begins or ends, or a turn ends
        self._stopped_at = 0.0  # when the background was last paused
        self._stopped_s = 0.0  # how long it was paused in the period under way (the last pause not counted yet)
        self._turn = False  # the background's turn: no foreground work starts until it ends
        self._sharing: threading.Thread | None = None

    def add(self, pids: Callable[[], Iterable[int]]) -> None:
        """``pids``: the background processes now (asked at each pause, so ended ones drop out)."""
        with self._lock:
            self._sources.append(pids)
            if self._busy:  # registered mid-answer: paused like the others
                self._signal(signal.SIGSTOP, pids)

    @contextmanager
    def foreground(self) -> Iterator[None]:
        with self._lock:
            while self._turn:  # the background's turn (at most ``min_share`` of a period): start after it
                self._changed.wait()
            self._busy += 1
            if self._busy == 1:
                self._all(signal.SIGSTOP)
                self._stopped_at = time.monotonic()
                self._changed.notify_all()
                if self._sharing is None and self.min_share > 0:
                    self._sharing = threading.Thread(target=self._share, name="cpu-share", daemon=True)
                    self._sharing.start()
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
                if self._busy == 0:
                    self._all(signal.SIGCONT)
                    self._stopped_s += time.monotonic() - self._stopped_at
                    self._changed.notify_all()

    def _share(self) -> None:
        """Each period, the background gets what it did not run of ``min_share`` as a turn of its own: answers
        under way finish, the next ones wait for the turn to end."""
        with self._lock:
            while True:
                began, self._stopped_s = time.monotonic(), 0.0
                while time.monotonic() - began < self.period_s:
                    self._changed.wait(self.period_s - (time.monotonic() - began))
                stopped = self._stopped_s + (time.monotonic() - self._stopped_at if self._busy else 0.0)
                owed = self.min_share * self.period_s - (self.period_s - stopped)
                if owed <= 0 or not self._background():
                    continue
                self._turn = True  # answers under way finish (its turn waits for them), the next ones wait
                while self._busy:
                    self._changed.wait()
                ends = time.monotonic() + owed  # it runs now (the last answer resumed it)
                while time.monotonic() < ends:
                    self._changed.wait(ends - time.monotonic())
                self._turn = False
                self._changed.notify_all()

    def _background(self) -> bool:
        """Whether any background process is there to take a turn (else no answer ever waits)."""
        for source in self._sources:
            try:
                if list(source()):
                    return True
            except Exception:  # noqa: BLE001  (its bookkeeping failing: no turn)
                continue
        return False

    def _all(self, sig: signal.Signals) -> None:
        for source in self._sources:
            self._signal(sig, source)

    @staticmethod
    def _signal(sig: signal.Signals, pids: Callable[[], Iterable[int]]) -> None:
        try:
            found = list(pids())
        except Exception as e:  # noqa: BLE001  (a background job's bookkeeping must never fail an answer)
            log.warning("could not list the background processes: %r", e)
            return
        for pid in found:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


YIELDING = Yielding()  # one per process: the bot's answers on one side, its background jobs on the other
