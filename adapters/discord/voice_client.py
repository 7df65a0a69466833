"""discord.py 2.7's own voice connection (no fork), tapped for listening: a hook on the voice websocket (who speaks on
which SSRC, who left, when a handshake is done) and a listener on the UDP socket (discord.py's socket-reader thread),
both handed to a ``VoiceReceiver`` (``adapters.discord.listening``)."""
from __future__ import annotations

import asyncio
import time

import discord
from discord.voice_state import VoiceConnectionState

from adapters.discord.listening import SESSION_DESCRIPTION, VoiceReceiver
from adapters.discord.voice_socket import voice_socket


class _ListeningConnectionState(VoiceConnectionState):
    # When one reconnect timed out (the voice server away for longer than the connect timeout), monotonic time;
    # 0: none. discord.py 2.7 then leaves the channel by itself, as if disconnected for good, or, if the server
    # answered only after the timeout, stays connected to it without ever counting as connected; either way
    # Parley gets back in.
    reconnect_timed_out_at = 0.0

    async def _connect(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        try:
            await super()._connect(*args, **kwargs)
        except asyncio.TimeoutError:
            if self._runner is not None and asyncio.current_task() is self._runner:  # a reconnect, not a join
                self.reconnect_timed_out_at = time.monotonic()
            raise
        self.reconnect_timed_out_at = 0.0

    def _create_socket(self) -> None:
        # A new connection: stop hearing until its handshake is done (see adapters/discord/voice_socket.py).
        client = self.voice_client
        if isinstance(client, ListeningVoiceClient):
            client.pause_receiving()
        self.socket = voice_socket(self._socket_reader)
        self._socket_reader.resume()


class ListeningVoiceClient(discord.VoiceClient):
    """discord.py's voice client, tapped for listening: ``receiver`` is set by ``DiscordVoice`` once the
    connection is up (and stays across reconnects: everything it reads is read per packet)."""

    receiver: VoiceReceiver | None = None
    _hearing = False  # the receiver's listener is on the socket reader

    def create_connection_state(self) -> VoiceConnectionState:
        return _ListeningConnectionState(self, hook=self._voice_message)

    async def _voice_message(self, ws: object, message: dict) -> None:
        if self.receiver is not None:
            self.receiver.on_voice_message(message)
            if message.get("op") == SESSION_DESCRIPTION:  # the handshake is done: hear again
                self._hear()

    def _hear(self) -> None:
        if self.receiver is not None and not self._hearing:
            self._hearing = True
            self._connection.add_socket_listener(self.receiver.on_datagram)

    def pause_receiving(self) -> None:
        if self.receiver is not None and self._hearing:
            self._hearing = False
            self._connection.remove_socket_listener(self.receiver.on_datagram)

    def start_receiving(self, receiver: VoiceReceiver) -> None:
        self.stop_receiving()
        self.receiver = receiver
        self._hear()

    def stop_receiving(self) -> None:
        if self.receiver is not None:
            self.pause_receiving()
            self.receiver.close()
            self.receiver = None

    def cleanup(self) -> None:
        self.stop_receiving()
        super().cleanup()
