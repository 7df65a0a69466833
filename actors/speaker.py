"""The Speaker shell (first part: speaking into files). It synthesizes with the text-to-speech port,
stores the WAV content-addressed under the data dir, and records ``SpeechSynthesized``.

Voice channels and voice-message answers come later (issue 7); they reuse ``synthesize_wav``.
"""
from __future__ import annotations

import io
import logging
import wave
from collections.abc import Callable

from actors import speaking
from actors.commands import Say, Spoken
from actors.ports import TextToSpeech
from actors.spoken import spoken_text
from actors.streams import DecidedStreams, Publish
from actors.supervisor import Supervised, SupervisedActor
from events import EventStore
from events.catalog import speech_stream

log = logging.getLogger("parley.speaker")


def synthesize_wav(engine: TextToSpeech, text: str) -> tuple[bytes, int, float]:
    """(WAV bytes, sentences, seconds) of ``text`` spoken by ``engine``."""
    out = io.BytesIO()
    sentences = frames = 0
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(22050)
        rate = None
        for chunk in engine.synthesize(text):
            if rate is None:
                rate = chunk.sample_rate
                w.setframerate(rate)
            w.writeframes(chunk.pcm)
            sentences += 1
            frames += len(chunk.pcm) // 2
    return out.getvalue(), sentences, frames / (rate or 22050)


class SpeakerActor(SupervisedActor):
    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish,
                 engine: Callable[[], TextToSpeech], files, max_spoken_chars: int):  # noqa: ANN001
        super().__init__(supervisor)
        self.engine = engine
        self.files = files
        self.max_spoken_chars = max_spoken_chars
        self.utterances = DecidedStreams(store, publish, speaking.Utterance(), speaking.evolve,
                                         lambda key: speech_stream(*key.split(":", 1)), capacity=1000)

    def handle(self, message: object) -> None:
        if not isinstance(message, Say):
            raise TypeError(f"Speaker cannot handle {type(message).__name__}")
        key = f"{message.source}:{message.message_id}"
        if self.utterances.load(key).version:
            return
        text = spoken_text(message.text, self.max_spoken_chars)
        outcome: Spoken | str | None = None
        if text:
            try:
                engine = self.engine()
                wav, sentences, seconds = synthesize_wav(engine, text)
                digest, _ = self.files.save(iter([wav]))
                outcome = Spoken(engine.voice_name, sentences, round(seconds, 3), digest, len(text),
                                 self.files.path(digest) or digest)
            except Exception as e:  # a missing or damaged voice: the person is told, the actor lives on
                log.warning("could not speak %s: %s", key, e)
                outcome = str(e)
        self.utterances.execute(key, lambda s: speaking.decide(s, message, outcome))
