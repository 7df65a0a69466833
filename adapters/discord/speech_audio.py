"""What discord.py plays in a voice channel: Parley's speech as Discord's 48 kHz stereo 20 ms PCM frames, produced
as Piper synthesizes, through ``FFmpegOpusAudio`` reading a pipe (the Opus encoder is the one in the ffmpeg of
``imageio-ffmpeg``, so no system libopus is needed)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import discord

from adapters.speech import ffmpeg_binary


OGG_OPUS_HEADERS = (b"OpusHead", b"OpusTags")  # RFC 7845: the identification and comment header packets
FRAME_S = 0.02
# Speech is synthesized at most this far ahead of what has been played: as fast as ffmpeg's pipes take it, a long
# answer was synthesized ~8 s ahead, in a burst of every core beside the listening room's Vosk, and was thrown away
# when someone cut in. Four seconds is more than a sentence takes to synthesize on a busy machine.
LEAD_FRAMES = 200


def paced_silence(player: discord.player.AudioPlayer, count: int = 5) -> None:
    """discord.py's ``AudioPlayer.send_silence`` (the silence frames that close each answer), one every 20 ms as
    audio is sent, not back to back: a listener's jitter buffer reads a burst as late packets."""
    try:
        for _ in range(count):
            player.client.send_audio_packet(discord.player.OPUS_SILENCE, encode=False)
            time.sleep(FRAME_S)  # on the player's own thread, which has nothing else to do now
    except Exception:  # noqa: BLE001  (as discord.py: a socket error here is of no consequence)
        pass


discord.player.AudioPlayer.send_silence = paced_silence  # type: ignore[method-assign]


class FramePipe:
    """A file-like object over 20 ms frames, read by discord.py's ffmpeg pipe writer thread (which is
    where the speech is synthesized, sentence by sentence, as it is read)."""

    def __init__(self, frames: Iterator[bytes], on_error: Callable[[BaseException], None],
                 played: Callable[[bytes], None] | None = None):
        self._frames = frames
        self._played = played  # told every frame handed on (the echo reference)
        self.handed = 0  # frames handed to the encoder
        self.sent = 0  # packets the player has sent (``SpeechAudio.read``): how far ahead synthesis is
        self._pending = b""
        self._on_error = on_error
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def read(self, size: int = -1) -> bytes:
        while not self.closed and (size < 0 or len(self._pending) < size):
            while self.handed - self.sent > LEAD_FRAMES and not self.closed:
                time.sleep(FRAME_S)  # far enough ahead: synthesize the rest as it is played
            try:
                frame = next(self._frames)
                self.handed += 1
                if self._played is not None:
                    self._played(frame)
                self._pending += frame
            except StopIteration:
                break
            except Exception as e:  # noqa: BLE001 - synthesis failed mid-answer: end the audio here
                self._on_error(e)
                break
        if self.closed:
            return b""  # stopped: synthesize no further
        if size < 0:
            size = len(self._pending)
        out, self._pending = self._pending[:size], self._pending[size:]
        return out


class SpeechAudio(discord.FFmpegOpusAudio):
    """``FFmpegOpusAudio`` fed from a ``FramePipe``. Stopping it mid-answer first ends the pipe and the
    encoder, then waits for discord.py's pipe-writer thread: its own cleanup clears the process while
    that thread may still be writing, which ends the thread in an AttributeError (discord.py 2.7)."""

    def __init__(self, pipe: FramePipe, first_packet: Callable[[], None] | None = None):
        self._frame_pipe = pipe
        self._first_packet = first_packet  # told once, when the first audio goes out
        super().__init__(pipe, pipe=True, executable=ffmpeg_binary(), before_options="-f s16le -ar 48000 -ac 2",
                         options="-page_duration 20000 -flush_packets 1")  # a page per packet, written at once

    def read(self) -> bytes:
        """The next Opus packet. discord.py's Ogg reader hands on every packet of the stream, the Ogg Opus
        header's two (``OpusHead``, ``OpusTags``) too, which are not audio: a listener would decode them as
        noise at the start of every answer. They are skipped."""
        packet = super().read()
        while packet.startswith(OGG_OPUS_HEADERS):
            packet = super().read()
        self._frame_pipe.sent += 1
        if self._first_packet is not None and packet:
            self._first_packet, told = None, self._first_packet
            told()
        return packet

    def cleanup(self) -> None:
        self._frame_pipe.close()
        process, writer = getattr(self, "_process", None), getattr(self, "_pipe_writer_thread", None)
        if process:
            self._stopped = True  # an encoder killed on purpose is not an error
            try:
                process.kill()
            except OSError:
                pass
        if writer is not None and writer is not threading.current_thread():
            writer.join(5)
        super().cleanup()
