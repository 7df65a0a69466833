"""The Speaker shell for files: ``say`` (a WAV, content-addressed under the data dir, recorded as
``SpeechSynthesized``) and voice-message answers. Voice channels have a Speaker per guild
(``actors.voice.actor``), which keeps its speech with the same ``SpeechRecording``.
"""
from __future__ import annotations

import io
import logging
import wave
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from actors.speaking import decider as speaking
from actors.commands import Say, SpeakAnswer, Spoken, VoiceNote
from actors.ports import DISK_FULL, TextToSpeech, disk_full
from actors.speaking.spoken import spoken_text
from actors.streams import DecidedStreams, Publish
from actors.supervisor import Supervised, SupervisedActor
from events import EventStore
from events.catalog.hearing import AudioReceived, clip_stream
from events.catalog.speaking import speech_stream

log = logging.getLogger("parley.speaker")


class SpeechRecording:
    """Keeps synthesized chunks as they pass (to whoever plays them), for the content-addressed WAV."""

    def __init__(self) -> None:
        self._pcm = io.BytesIO()
        self.rate = 22050
        self.sentences = 0

    def keep(self, chunks: Iterable) -> Iterator:
        for chunk in chunks:
            self.rate, self.sentences = chunk.sample_rate, self.sentences + 1
            self._pcm.write(chunk.pcm)
            yield chunk

    @property
    def seconds(self) -> float:
        return self._pcm.tell() / 2 / self.rate

    def wav(self) -> bytes:
        out = io.BytesIO()
        with wave.open(out, "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(self.rate)
            w.writeframes(self._pcm.getvalue())
        return out.getvalue()


def synthesize_wav(engine: TextToSpeech, text: str) -> tuple[bytes, int, float]:
    """(WAV bytes, sentences, seconds) of ``text`` spoken by ``engine``."""
    recording = SpeechRecording()
    for _ in recording.keep(engine.synthesize(text)):
        pass
    return recording.wav(), recording.sentences, recording.seconds


class SpeakerActor(SupervisedActor):
    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish,
                 engine: Callable[[], TextToSpeech], files, max_spoken_chars: int,  # noqa: ANN001
                 voice_notes=None, make_voice_note: Callable[[bytes, int], tuple[bytes, float, str]] | None = None):  # noqa: ANN001
        super().__init__(supervisor)
        self.store = store
        self.engine = engine
        self.files = files
        self.voice_notes = voice_notes
        self.make_voice_note = make_voice_note
        self.max_spoken_chars = max_spoken_chars
        self.utterances = DecidedStreams(store, publish, speaking.Utterance(), speaking.evolve,
                                         lambda key: speech_stream(*key.split(":", 1)), capacity=1000)

    def handle(self, message: object) -> None:
        if isinstance(message, SpeakAnswer):
            self._voice_reply(message)
            return
        if not isinstance(message, Say):
            raise TypeError(f"Speaker cannot handle {type(message).__name__}")
        key = f"{message.source}:{message.message_id}"
        if self.utterances.load(key).version:
            return
        text = spoken_text(message.text, self.max_spoken_chars)
        outcome: Spoken | str | None = None
        if text and not message.refused:
            try:
                engine = self.engine()
                wav, sentences, seconds = synthesize_wav(engine, text)
                digest, _ = self.files.save(iter([wav]))
                outcome = Spoken(engine.voice_name, sentences, round(seconds, 3), digest, len(text),
                                 self.files.path(digest) or digest)
            except Exception as e:  # a missing or damaged voice, a full disk: the person is told, the actor lives on
                log.warning("could not speak %s: %s", key, e)
                outcome = DISK_FULL if disk_full(e) else str(e)
        self.utterances.execute(key, lambda s: speaking.decide(s, message, outcome))

    def _voice_reply(self, command: SpeakAnswer) -> None:
        key = f"{command.source}:{command.message_id}"
        if self.utterances.load(key).version or self.voice_notes is None or self.make_voice_note is None:
            return
        clip = self.store.read_stream(clip_stream(command.source, command.message_id))
        if not any(isinstance(r.event, AudioReceived) and r.event.voice_message for r in clip):
            return  # an audio file, not a voice message: the written answer is enough
        text = spoken_text(command.text, self.max_spoken_chars)
        note = None
        if text and not command.refused:
            try:
                engine = self.engine()
                chunks = list(engine.synthesize(text))
                pcm = b"".join(c.pcm for c in chunks)
                ogg, seconds, waveform = self.make_voice_note(pcm, chunks[0].sample_rate if chunks else 22050)
                digest, _ = self.voice_notes.save(iter([ogg]))
                note = VoiceNote(engine.voice_name, digest, round(seconds, 3), waveform)
            except Exception as e:  # no voice: the written answer has gone out; say why in the log
                log.warning("no voice-message answer for %s: %s", key, e)
        self.utterances.execute(key, lambda s: speaking.decide_voice_reply(s, command, note))


class SpeakerQueue:
    """The Speaker behind a bounded queue: with ``max_waiting`` already waiting, a voice-message answer is
    skipped (recorded as ``VoiceReplySkipped`` "busy"; the written answer has gone out) and a ``!say`` refused
    as busy, both decided at once by ``reception``, a Speaker kept for that, instead of after minutes of queue.
    The console is never refused."""

    def __init__(self, speaker: Supervised, max_waiting: int = 0, reception: Supervised | None = None):
        self.speaker = speaker
        self.max_waiting = max_waiting
        self.reception = reception

    @classmethod
    def started(cls, speaker: Callable[[str], Supervised], max_waiting: int) -> SpeakerQueue:
        """``speaker(name)`` starts a Speaker: "speaker", and "speaker-reception" when there is a bound."""
        return cls(speaker("speaker"), max_waiting, speaker("speaker-reception") if max_waiting else None)

    def tell(self, command: Say | SpeakAnswer) -> None:
        if self.max_waiting and self.reception is not None and command.source != "console" \
                and not command.refused and self.speaker.waiting >= self.max_waiting:
            log.warning("busy: %d wait for the speaker; refusing %s:%s", self.speaker.waiting, command.source,
                        command.message_id)
            self.reception.tell(replace(command, refused="busy"))
            return
        self.speaker.tell(command)
