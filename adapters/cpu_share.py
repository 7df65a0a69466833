"""Background work that gives the CPU back while the bot answers.

A local fine-tuning job trains at the lowest priority (``SCHED_IDLE``), and that is not enough on a small machine:
llama.cpp's threads meet at a barrier at every step of a token, so one of them preempted by the trainer for a
time slice holds all of them up (measured on 2 cores: an answer took 0.2 s idle, 0.4-8 s beside an idle-priority
trainer, 14-32 s beside a normal one). So the trainer's process is paused (SIGSTOP) while the local model
generates and resumed (SIGCONT) when no answer is being written: training goes on between answers.

Answers that never stop (a busy bot) would starve it for good: it is let run for ``min_share`` of every
``period_s`` while they go on (5% of 10 s by default: 0.5 s; answers written in that half second are slower),
so a job always ends.
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
        self._foreground = threading.Condition(self._lock)  # told when foreground work begins or ends
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
            self._busy += 1
            if self._busy == 1:
                self._all(signal.SIGSTOP)
                self._foreground.notify_all()
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
                    self._foreground.notify_all()

    def _share(self) -> None:
        """While foreground work goes on without a pause, the background runs ``min_share`` of each period."""
        with self._lock:
            while True:
                while not self._busy:
                    self._foreground.wait()
                began = time.monotonic()  # paused from here: a whole stopped stretch before its turn
                stopped_s = self.period_s * (1 - self.min_share)
                while self._busy and time.monotonic() - began < stopped_s:
                    self._foreground.wait(stopped_s - (time.monotonic() - began))
                if not self._busy:
                    continue  # the answers paused by themselves: the background ran meanwhile
                self._all(signal.SIGCONT)
                self._foreground.wait(self.period_s * self.min_share)  # its turn (cut short if answers end)
                if self._busy:
                    self._all(signal.SIGSTOP)

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
