"""Parley's own voice coming back: the speech it played in a guild, kept for a while as 8 kHz mono, and how much a
person's new speech looks like some stretch of it (the highest normalized cross-correlation of the waveforms at any
offset). Someone's microphone that picks up Parley from their speakers sends its words back a few hundred ms
later, through their own Opus encoder: the waveform survives closely enough (measured in tests/test_echo.py:
0.9 and above for a replay, under 0.3 for other speech of the same voice)."""
from __future__ import annotations

import threading
import time

import numpy as np

RATE = 8000
KEEP_S = 20.0  # what was played this long ago can still come back (it is ahead of the speaker by the encoder)
RECENT_S = 5.0  # speech that begins this long after Parley last played is checked for being its echo


def _at_8k(pcm: bytes, rate: int, channels: int) -> np.ndarray:
    samples = np.frombuffer(pcm[:len(pcm) // (2 * channels) * 2 * channels], "<i2").astype(np.float32)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    step = rate // RATE  # 48 kHz and 16 kHz both divide evenly: an average over each step is the low-pass
    return samples[:len(samples) // step * step].reshape(-1, step).mean(axis=1)


class EchoReference:
    """Thread-safe: the player's pipe thread adds what is played, the voice receiver's thread compares."""

    def __init__(self, keep_s: float = KEEP_S) -> None:
        self._most = int(keep_s * RATE)
        self._samples = np.zeros(0, np.float32)
        self._lock = threading.Lock()
        self.last_played = -1e9

    def played(self, pcm: bytes, rate: int = 48000, channels: int = 2) -> None:
        added = _at_8k(pcm, rate, channels)
        with self._lock:
            self._samples = np.concatenate([self._samples, added])[-self._most:]
            self.last_played = time.monotonic()

    def recent(self) -> bool:
        return time.monotonic() - self.last_played < RECENT_S

    def similarity(self, pcm: bytes, rate: int = 16000) -> float:
        """How closely ``pcm`` (mono) matches some stretch of what was played: 0 (nothing alike) to 1 (the same)."""
        x = _at_8k(pcm, rate, 1)
        with self._lock:
            y = self._samples
        if len(x) < RATE // 10 or len(y) < len(x):
            return 0.0
        x = x - x.mean()
        x_norm = float(np.sqrt(np.dot(x, x)))
        if x_norm < 1e-3:
            return 0.0  # digital silence matches everything and means nothing
        size = 1 << int(np.ceil(np.log2(len(y) + len(x))))
        dots = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size)), size)[:len(y) - len(x) + 1]
        sums = np.concatenate([[0.0], np.cumsum(y, dtype=np.float64)])
        squares = np.concatenate([[0.0], np.cumsum(y.astype(np.float64) ** 2)])
        n = len(x)
        window_sum, window_squares = sums[n:] - sums[:-n], squares[n:] - squares[:-n]
        energy = np.maximum(window_squares - window_sum ** 2 / n, 0.0)  # of each stretch, less its mean
        ncc = dots / (x_norm * np.sqrt(energy) + 1e-6 * x_norm * np.sqrt(n) + 1e-9)
        return float(np.clip(ncc.max(), 0.0, 1.0))
