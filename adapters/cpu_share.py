"""Background work that gives the CPU back while the bot answers.

A local fine-tuning job trains at the lowest priority (``SCHED_IDLE``), and that is not enough on a small machine:
llama.cpp's threads meet at a barrier at every step of a token, so one of them preempted by the trainer for a
time slice holds all of them up (measured on 2 cores: an answer took 0.2 s idle, 0.4-8 s beside an idle-priority
trainer, 14-32 s beside a normal one). So the trainer's process is paused (SIGSTOP) while the local model
generates and resumed (SIGCONT) when no answer is being written: training goes on between answers.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

log = logging.getLogger("parley.cpu")


class Yielding:
    """Processes (named by whoever registers them) paused while foreground work runs. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = 0
        self._sources: list[Callable[[], Iterable[int]]] = []

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
                for source in self._sources:
                    self._signal(signal.SIGSTOP, source)
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
                if self._busy == 0:
                    for source in self._sources:
                        self._signal(signal.SIGCONT, source)

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
