"""Opus frames to the 16 kHz mono PCM Vosk hears, with the Opus decoder and resampler of the PyAV wheel
(FFmpeg's own Opus decoder, bundled: no system libopus needed). One ``OpusDecoder`` per speaker: Opus
decoding carries state from frame to frame."""
from __future__ import annotations

import av

SILENCE_FRAME = b"\xf8\xff\xfe"  # Discord's 20 ms of Opus silence (sent after speech ends)
RATE = 16000
FRAME_SAMPLES = 320  # 20 ms at 16 kHz


class OpusDecoder:
    def __init__(self) -> None:
        self._codec = av.CodecContext.create("opus", "r")
        self._codec.sample_rate, self._codec.layout = 48000, "stereo"
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self.frames = 0
        self.errors = 0

    def decode(self, frame: bytes) -> bytes:
        """16 kHz mono 16-bit PCM of one Opus frame ("" for a frame the decoder cannot read: counted)."""
        try:
            out = [r.to_ndarray().tobytes() for f in self._codec.decode(av.Packet(frame))
                   for r in self._resampler.resample(f)]
        except (av.error.FFmpegError, ValueError):
            self.errors += 1
            return b""
        self.frames += 1
        return b"".join(out)

    @staticmethod
    def silence(frames: int = 1) -> bytes:
        """``frames`` of 20 ms silence: what a lost or undecryptable frame is concealed with."""
        return bytes(2 * FRAME_SAMPLES * frames)
