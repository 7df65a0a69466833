"""Synthesized speech out: WAV files, Discord's 20 ms frames, and voice-message files.

Discord plays 48 kHz stereo 16-bit PCM in 20 ms frames of exactly 3,840 bytes; the last frame is
padded with silence so playback ends cleanly. A Discord voice message is an Ogg Opus file with its
duration and a waveform of up to 256 one-byte amplitudes (base64).
"""
from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from adapters.speech import ffmpeg_binary

DISCORD_RATE = 48000
FRAME_BYTES = DISCORD_RATE // 50 * 2 * 2  # 20 ms, stereo, 16-bit: 3,840


def resample_mono(pcm: bytes, rate: int, to_rate: int) -> np.ndarray:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    if rate == to_rate or samples.size == 0:
        return samples
    count = int(round(samples.size * to_rate / rate))
    positions = np.linspace(0, samples.size - 1, count)
    return np.interp(positions, np.arange(samples.size), samples)


def discord_frames(chunks: Iterable[tuple[bytes, int]]) -> Iterator[bytes]:
    """48 kHz stereo 20 ms frames from (mono 16-bit PCM, rate) chunks, as they come."""
    pending = b""
    for pcm, rate in chunks:
        mono = np.clip(np.round(resample_mono(pcm, rate, DISCORD_RATE)), -32768, 32767).astype("<i2")
        stereo = np.repeat(mono, 2).tobytes()
        pending += stereo
        whole = len(pending) - len(pending) % FRAME_BYTES
        for start in range(0, whole, FRAME_BYTES):
            yield pending[start:start + FRAME_BYTES]
        pending = pending[whole:]
    if pending:
        yield pending + b"\0" * (FRAME_BYTES - len(pending))


def voice_message(pcm: bytes, rate: int, path: Path) -> tuple[float, str]:
    """Write ``pcm`` as a Discord voice-message file at ``path``; return (duration, waveform)."""
    ogg, seconds, shape = voice_note(pcm, rate)
    path.write_bytes(ogg)
    return seconds, shape


def waveform(pcm: bytes, points: int = 256) -> str:
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    if samples.size == 0:
        return base64.b64encode(bytes(1)).decode()
    buckets = np.array_split(samples, min(points, samples.size))
    peak = max(1, int(samples.max()))
    return base64.b64encode(bytes(min(255, int(b.max() * 255 / peak)) for b in buckets)).decode()


def voice_note(pcm: bytes, rate: int) -> tuple[bytes, float, str]:
    """(Ogg Opus bytes, seconds, waveform) of a voice-message answer, encoded through pipes (no file
    anywhere but the content-addressed one the caller keeps in the data dir)."""
    result = subprocess.run([ffmpeg_binary(), "-nostdin", "-v", "error", "-f", "s16le", "-ar", str(rate), "-ac", "1",
                             "-i", "-", "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", "-f", "ogg", "-"],
                            input=pcm, capture_output=True, timeout=120)
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError(f"ffmpeg could not encode the voice message: {result.stderr.decode()[-200:]}")
    return result.stdout, len(pcm) / 2 / rate, waveform(pcm)
