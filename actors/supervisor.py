"""Supervision for pykka actors, which have none of their own.

pykka stops an actor when a ``tell``-ed message raises, and drops what was left in its inbox. A
``Supervised`` handle keeps every message until the actor acknowledges it, so a failure loses nothing:
after a backoff it starts a fresh actor (which rebuilds its state from the log) and re-delivers the
unacknowledged messages in order. The message the actor failed on is retried a few times, then handed
to ``give_up``, which may turn it into a command that records the failure for the user. Failures that
``transient`` says will pass (the event store being down) are retried without limit, with backoff.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import pykka

log = logging.getLogger("parley.supervisor")


def _never(error: BaseException) -> bool:
    return False


class _NoTracebackForOutages(logging.Filter):
    """pykka logs a traceback for every failed message; while the store is down that is one per attempt, for
    every actor. The supervisor's own line says what failed and when it retries: pykka's is dropped then."""

    def __init__(self) -> None:
        super().__init__()
        self.transient: set[Callable[[BaseException], bool]] = set()  # each supervisor's ``transient``

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or not any(transient(error) for transient in list(self.transient))


_pykka_filter = _NoTracebackForOutages()
logging.getLogger("pykka").addFilter(_pykka_filter)


@dataclass
class Envelope:
    message: object
    attempts: int = 0  # actor instances that failed while handling it
    on_done: Callable[[], None] | None = None  # told once the message is handled (or given up on)

    def done(self) -> None:
        if self.on_done is not None:
            try:
                self.on_done()
            except Exception:  # whoever waits on it must not break the actor
                log.exception("a completion callback failed")


class SupervisedActor(pykka.ThreadingActor):
    """Base for Parley's actors: ``handle`` one message; the supervisor hears of success and failure."""

    # Shutdown is explicit (Supervised.stop drains the inbox); a stuck actor must not keep a dead
    # process alive.
    use_daemon_thread = True

    def __init__(self, supervisor: Supervised):
        super().__init__()
        self.supervisor = supervisor

    def on_receive(self, message: object) -> object:
        if not isinstance(message, Envelope):
            return self.handle(message)  # an ``ask`` from a test or the status probe
        result = self.handle(message.message)
        self.supervisor.acknowledge(message)
        return result

    def on_failure(self, exception_type, exception_value, traceback) -> None:  # noqa: ANN001
        self.supervisor.failed(exception_value)

    def handle(self, message: object) -> object:
        raise NotImplementedError


class Supervised:
    def __init__(
        self,
        name: str,
        start: Callable[[Supervised], pykka.ActorRef],
        *,
        on_restart: Callable[[str, str, int], None] = lambda name, error, restarts: None,
        give_up: Callable[[object, str], object | None] = lambda message, error: None,
        transient: Callable[[BaseException], bool] = _never,
        max_attempts: int = 3,
        backoff: tuple[float, float] = (0.05, 5.0),
    ):
        self.name = name
        self._start = start
        self._on_restart = on_restart
        self._give_up = give_up
        self._transient = transient
        _pykka_filter.transient.add(transient)
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._lock = threading.RLock()
        self._unacked: deque[Envelope] = deque()
        self._ref: pykka.ActorRef | None = None
        self._restarting = False
        self._stopped = False
        self._consecutive_failures = 0
        self.restarts = 0

    def start(self) -> Supervised:
        with self._lock:
            self._ref = self._start(self)
        return self

    @property
    def alive(self) -> bool:
        ref = self._ref
        return ref is not None and ref.is_alive() and not self._restarting

    @property
    def stopped(self) -> bool:
        """Stopped for good (the system is shutting down): nothing told to it is handled any more."""
        return self._stopped

    @property
    def idle(self) -> bool:
        """Everything told to it so far has been handled (or given up on)."""
        with self._lock:
            return not self._unacked and not self._restarting

    @property
    def waiting(self) -> int:
        """Messages told to it and not yet handled (the one in hand included)."""
        with self._lock:
            return len(self._unacked)

    def tell(self, message: object, on_done: Callable[[], None] | None = None) -> None:
        """Never blocks on the actor: safe to call from the asyncio loop. ``on_done`` runs once the message is
        handled or given up on (on the actor's thread)."""
        envelope = Envelope(message, on_done=on_done)
        with self._lock:
            if self._stopped:
                log.warning("%s is stopped; dropping %s", self.name, type(message).__name__)
                envelope.done()
                return
            self._unacked.append(envelope)
            self._send(envelope)

    def acknowledge(self, envelope: Envelope) -> None:
        with self._lock:
            self._consecutive_failures = 0
            try:
                self._unacked.remove(envelope)
            except ValueError:
                return
        envelope.done()

    def failed(self, error: BaseException | None) -> None:
        with self._lock:
            if self._stopped or self._restarting:
                return
            self._restarting = True
            self.restarts += 1
            self._consecutive_failures += 1
            base, most = self._backoff
            delay = min(most, base * 2 ** (self._consecutive_failures - 1))
        counts = error is None or not self._transient(error)
        if counts:
            log.error("%s failed (%r); restarting in %.2fs", self.name, error, delay)
        else:  # not the message's fault: it is retried until the store is back
            log.warning("%s waits for the store (%s); retrying in %.2fs", self.name,
                        str(error).splitlines()[0][:200], delay)
        timer = threading.Timer(delay, self._restart, args=(repr(error), counts))
        timer.daemon = True
        timer.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop after the actor has handled everything already told to it."""
        with self._lock:
            self._stopped = True
            ref = self._ref
        if ref is not None:
            try:
                ref.stop(block=True, timeout=timeout)
            except (pykka.ActorDeadError, pykka.Timeout):
                pass

    def _send(self, envelope: Envelope) -> None:
        if self._ref is None or self._restarting:
            return  # kept in _unacked; sent by _restart
        try:
            self._ref.tell(envelope)
        except pykka.ActorDeadError:
            pass  # the actor just died; failed() will restart it and re-deliver this

    def _restart(self, error: str, counts: bool = True) -> None:
        abandoned: list[object] = []
        finished: list[Envelope] = []
        with self._lock:
            if self._stopped:
                return
            if self._unacked and counts:
                self._unacked[0].attempts += 1  # messages are handled in order: the first one failed
            redeliver = list(self._unacked)
            self._unacked.clear()
            self._ref = self._start(self)
            self._restarting = False
            for envelope in redeliver:
                if envelope.attempts >= self._max_attempts:
                    log.error("%s gave up on %r after %d failures", self.name, envelope.message, envelope.attempts)
                    finished.append(envelope)
                    replacement = self._give_up(envelope.message, error)
                    if replacement is not None:
                        abandoned.append(replacement)
                    continue
                self._unacked.append(envelope)
                self._send(envelope)
        for envelope in finished:
            envelope.done()
        for replacement in abandoned:
            self.tell(replacement)
        try:
            self._on_restart(self.name, error, self.restarts)
        except Exception:  # the restart itself must not fail because recording it did
            log.exception("could not record the restart of %s", self.name)
