"""The supervisor on real pykka actors: restarts, redelivery in order, giving up, transient failures."""
from __future__ import annotations

import threading

from actors.supervisor import Supervised, SupervisedActor
from tests.helpers import wait_for


class Outage(Exception):
    pass


lock = threading.Lock()


class Recorder(SupervisedActor):
    """Records the ints it handles; fails ``faults[n]`` times on ``n`` (an ``Outage`` for negative n)."""

    def __init__(self, supervisor, handled, faults):
        super().__init__(supervisor)
        self.handled, self.faults = handled, faults

    def handle(self, message):
        with lock:
            remaining = self.faults.get(message, 0)
            if remaining:
                self.faults[message] = remaining - 1
        if remaining:
            raise Outage(message) if message < 0 else RuntimeError(message)
        self.handled.append(message)


def supervised(handled, faults, **kw):
    restarts = []
    s = Supervised("recorder", lambda sup: Recorder.start(sup, handled, faults),
                   on_restart=lambda name, error, n: restarts.append(error), backoff=(0.01, 0.05), **kw)
    return s.start(), restarts


def test_messages_behind_a_failure_are_redelivered_in_order():
    handled = []
    s, restarts = supervised(handled, {2: 1})
    for n in range(1, 6):
        s.tell(n)
    wait_for(lambda: handled == [1, 2, 3, 4, 5], what="all five, in order")
    assert len(restarts) == 1 and s.alive
    s.stop()


def test_a_message_that_always_fails_is_given_up_and_replaced():
    handled, given_up = [], []

    def give_up(message, error):
        given_up.append(message)
        return 100 + message  # e.g. a command that tells the user

    s, restarts = supervised(handled, {7: 99}, give_up=give_up, max_attempts=3)
    s.tell(7)
    s.tell(8)
    wait_for(lambda: handled == [8, 107], what="the next message and the replacement")
    assert given_up == [7] and len(restarts) == 3
    s.stop()


def test_transient_failures_are_retried_past_the_give_up_limit():
    handled, given_up = [], []
    s, restarts = supervised(handled, {-1: 6}, give_up=lambda m, e: given_up.append(m),
                             transient=lambda e: isinstance(e, Outage), max_attempts=3)
    s.tell(-1)
    wait_for(lambda: handled == [-1], what="the message after the outage passed")
    assert given_up == [] and len(restarts) == 6
    s.stop()
