"""discord.py's voice UDP socket, made safe for a socket reader that never idles (issue 17: a reconnect while
Parley listened stalled for 20 s, one in five under load)."""
from __future__ import annotations

import errno
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from discord.voice_state import SocketReader


class _HandshakeSafeSocket(socket.socket):
    """discord.py's voice UDP socket, made safe for a socket reader that never idles (Parley's listener keeps it
    running). discord.py sends its IP discovery request before it registers for the answer, which is safe only
    while its reader thread is paused and parked; at a reconnect the reader was still in ``select`` on the old
    socket, and discord.py then waited out its 20 s connect timeout (one reconnect in five under load, found with
    py-spy and a log of the reader's calls). Two things went wrong:

    - closing a socket does not wake a ``select`` on it, and Linux skips a descriptor closed while ``select``
      waits: the reader slept the rest of its 30 s. Worse, the new socket usually got the same descriptor
      number. ``close`` therefore shuts the socket down at once (that wakes ``select``, and a shut-down socket
      stays readable) and closes the descriptor only after ``select``'s 30 s, so it is never reused under a
      reader that still waits on it;
    - woken, the reader goes on to ``recv`` from ``state.socket`` without looking whether it is paused; by then
      that is the new socket, holding the discovery answer that nobody listens for yet: read and dropped.
      ``recv`` refuses while the reader is paused, so the answer stays queued until discord.py listens for it."""

    reader_running: Callable[[], bool] = staticmethod(lambda: True)
    _retiring = False

    def recv(self, size: int, flags: int = 0) -> bytes:
        if not self.reader_running():
            raise BlockingIOError(errno.EAGAIN, "the socket reader is paused: left queued for when it resumes")
        return super().recv(size, flags)

    def close(self) -> None:
        if self._retiring:
            return
        self._retiring = True
        try:
            self.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        _retire(self)

    def close_now(self) -> None:
        super().close()


def voice_socket(reader: SocketReader) -> _HandshakeSafeSocket:
    """A new voice UDP socket for the connection whose socket reader is ``reader``."""
    sock = _HandshakeSafeSocket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.reader_running = reader._running.is_set  # discord.py's own pause flag
    sock.setblocking(False)
    return sock


READER_SELECT_S = 30.0  # discord.py's socket reader waits at most this long in one select
_retired: deque[tuple[float, _HandshakeSafeSocket]] = deque()
_retired_lock = threading.Lock()


def _retire(sock: _HandshakeSafeSocket) -> None:
    """Close ``sock``'s descriptor once no ``select`` that began before its shutdown can still be waiting on it
    (those past their time are closed whenever another socket retires; a few shut-down sockets at most)."""
    now = time.monotonic()
    with _retired_lock:
        _retired.append((now + READER_SELECT_S + 1.0, sock))
        while _retired and _retired[0][0] <= now:
            _retired.popleft()[1].close_now()
