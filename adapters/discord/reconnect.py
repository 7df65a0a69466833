"""How the bot waits to reach Discord again: capped, jittered, one line a wait.

discord.py reconnects by itself with an exponential backoff that grows to 2^10 s (a gateway restarted nine times in
20 minutes left a bot waiting 430 s before its last reconnect), and logs each wait with a whole traceback. Here the
wait is capped at ``PARLEY_RECONNECT_MAX_S`` (60 s) with jitter (between half the cap and the cap once the backoff
passes it, so many bots do not come back in step), and each wait is one line naming what failed.

The first connection is Parley's own loop (``first_connection``): a network that is not there yet (DNS, a refused
port, a gateway that answers 5xx) is retried with the same waits, a line each, until
``PARLEY_CONNECT_GIVE_UP_S``; then the bot exits with ``EXIT_TEMPFAIL`` (75), which an init system restarts
(2 is kept for what a person must change: a refused token, a wrong setting).
"""
from __future__ import annotations

import logging
import random

import discord.backoff
import discord.client
import discord.shard

EXIT_TEMPFAIL = 75  # sysexits.h EX_TEMPFAIL: try again later (systemd's Restart=on-failure restarts it)


class CappedBackoff(discord.backoff.ExponentialBackoff):
    """discord.py's backoff (a random wait up to 2^n s), never longer than ``cap_s``."""

    cap_s = 60.0

    def __init__(self, base: int = 1, *, integral: bool = False) -> None:
        super().__init__(base, integral=integral)  # type: ignore[arg-type]
        self._jitter = random.Random()

    def delay(self) -> float:
        wait = super().delay()
        return wait if wait <= self.cap_s else self._jitter.uniform(self.cap_s / 2, self.cap_s)


class OneLineReconnects(logging.Filter):
    """discord.py's "Attempting a reconnect in N s", with its traceback, becomes one line naming the error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Attempting a reconnect") and record.exc_info:
            error = record.exc_info[1]
            record.msg = "Discord connection lost (%s: %s); reconnecting in %.1fs"
            record.args = (type(error).__name__, str(error)[:200] or "no reason given",
                           *(record.args if isinstance(record.args, tuple) else ())[-1:])
            record.exc_info, record.exc_text, record.levelno, record.levelname = None, None, logging.WARNING, "WARNING"
        return True


def cap_reconnect_waits(cap_s: float) -> None:
    """Every reconnect discord.py makes from now on waits at most ``cap_s``, and says so in one line."""
    CappedBackoff.cap_s = cap_s
    discord.client.ExponentialBackoff = CappedBackoff  # type: ignore[misc]  (its connect() makes one per call)
    discord.shard.ExponentialBackoff = CappedBackoff  # type: ignore[misc]
    for name in ("discord.client", "discord.shard"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, OneLineReconnects) for f in logger.filters):
            logger.addFilter(OneLineReconnects())


# Voice: discord.py's voice connection reconnects by itself, and logs each try with a traceback.
RECOVERED_FROM = ("Disconnected from voice...", "Failed to connect to voice...")  # discord.py's log messages


class _ReconnectsWithoutTraceback(logging.Filter):
    """discord.py logs a voice reconnect (the voice server closed the websocket) and each failed try to get back
    in with the exception's traceback; they are expected events it recovers from: one line each for the operator,
    not a stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith(RECOVERED_FROM):
            error = record.exc_info[1]
            record.msg, record.args = f"{record.getMessage()} ({error!r})", ()
            record.exc_info, record.exc_text, record.levelno, record.levelname = None, None, logging.WARNING, "WARNING"
        return True


logging.getLogger("discord.voice_state").addFilter(_ReconnectsWithoutTraceback())
