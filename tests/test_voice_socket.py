"""discord.py's voice socket reader across a reconnect while Parley listens (issue 17): the reader never idles,
so it is still in ``select`` on the old socket when discord.py closes it, makes a new one and sends its IP
discovery request — before it listens for the answer. The answer must reach discord.py, at once."""
from __future__ import annotations

import socket
from collections import deque
import threading

from discord.voice_state import SocketReader

from adapters.discord import voice_socket as sockets
from adapters.discord.voice_socket import _HandshakeSafeSocket, voice_socket


class ConnectionState:  # what discord.py's SocketReader reads of its connection: the current socket
    socket: socket.socket


def connected_socket(reader: SocketReader, server: socket.socket) -> _HandshakeSafeSocket:
    sock = voice_socket(reader)  # as ``_ListeningConnectionState._create_socket`` makes it
    sock.connect(server.getsockname())
    return sock


def test_the_discovery_answer_after_a_reconnect_reaches_discord_py_while_the_reader_was_busy():
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    state = ConnectionState()
    reader = SocketReader(state)  # type: ignore[arg-type]
    state.socket = connected_socket(reader, server)
    reader.start()
    while reader._idle_paused:  # (the thread pauses itself as it starts; discord.py starts it long before use)
        threading.Event().wait(0.01)
    reader.resume()
    heard: list[bytes] = []
    listener = heard.append
    reader.register(listener)  # Parley's listener: the reader runs, waiting in select on the first socket
    try:
        first = state.socket
        first.send(b"x")
        server.recvfrom(10)  # (the server learns the address)
        old_fd = first.fileno()
        server.sendto(b"frame", first.getsockname())
        threading.Event().wait(0.2)
        assert heard == [b"frame"]

        # A reconnect, as discord.py does it: pause, close, a new socket, the discovery request, then listen.
        reader.pause()
        first.close()
        reader.unregister(listener)
        state.socket = connected_socket(reader, server)
        assert state.socket.fileno() != old_fd  # never the descriptor a select may still be waiting on
        reader.resume()
        state.socket.send(b"discovery request")
        _, address = server.recvfrom(100)
        server.sendto(b"discovery answer", address)
        threading.Event().wait(0.2)  # the reader wakes from the old socket before discord.py listens
        answered = threading.Event()
        reader.register(lambda data: answered.set() if data == b"discovery answer" else None)
        assert answered.wait(5), "the discovery answer was read and dropped, or the reader still sleeps"
    finally:
        reader.stop()
        state.socket.close()
        server.close()


def test_a_closed_voice_socket_is_released_once_no_select_can_wait_on_it(monkeypatch):
    monkeypatch.setattr(sockets, "READER_SELECT_S", 0.0)
    monkeypatch.setattr(sockets, "_retired", deque())
    reader = SocketReader(ConnectionState())  # type: ignore[arg-type]  (never started: paused)
    old = voice_socket(reader)
    old.close()
    assert old.fileno() != -1  # shut down, kept
    threading.Event().wait(1.1)
    voice_socket(reader).close()  # the next one retired releases those past their time
    assert old.fileno() == -1
