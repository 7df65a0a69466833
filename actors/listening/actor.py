"""The Listener: what people say in a guild's voice channel, recognized while they speak (a thin shell around
``actors.listening.decider``).

The voice transport hands in each person's speech in ~100 ms chunks (``HearSpeech``) and says when they went
quiet (``SpeechEnded``). Each utterance has its own recognizer, fed as the chunks arrive, so the transcript is
ready when the person stops: Vosk's endpointing ends an utterance at a pause, the transport's silence timeout
at the latest. Consent is the log's (``listening:<source>:<guild>``): speech of a person who may not be heard
is dropped here too, unrecognized and unsaved. The audio of what was heard is kept as a content-addressed WAV
(like a voice message's), never in the log.
"""
from __future__ import annotations

import io
import logging
import wave
from collections.abc import Mapping
from dataclasses import dataclass, field

from actors.commands import ControlListening, HearSpeech, SpeechEnded
from actors.listening import decider as listening
from actors.ports import SpeechStream, StreamingSpeechToText, VoiceChannels
from actors.streams import DecidedStreams, Publish
from actors.supervisor import Supervised, SupervisedActor
from events import EventStore
from events.catalog.listening import CONSENT_EVENTS, listening_stream

log = logging.getLogger("parley.listening")
RATE = 16000
MAX_UTTERANCE_S = 60.0  # one person talking longer than this is cut into several utterances


@dataclass
class Utterance:
    """One person's speech being recognized."""

    command: HearSpeech
    stream: SpeechStream
    utterance_id: str
    pcm: bytearray = field(default_factory=bytearray)


def wav_of(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(RATE)
        w.writeframes(pcm)
    return out.getvalue()


class ListenerActor(SupervisedActor):
    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish,
                 speech: StreamingSpeechToText | None, audio, voices: Mapping[str, VoiceChannels]):  # noqa: ANN001
        super().__init__(supervisor)
        self.store = store
        self.speech = speech
        self.audio = audio
        self.voices = voices  # told who may be heard, as soon as the log says so
        self.guilds = DecidedStreams(store, publish, listening.Consent(), listening.evolve,
                                     lambda key: listening_stream(*key.split(":", 1)))
        self.open: dict[tuple[str, str, str], Utterance] = {}  # (source, guild, person) -> their utterance
        self.parts: dict[str, int] = {}  # utterance id -> how many parts Vosk's endpointing cut it into

    def on_start(self) -> None:
        """The transports learn every guild's consent from the log before anyone is heard."""
        for (source, guild_id), consent in listening.consents(
                r.event for r in self.store.read_all(types=list(CONSENT_EVENTS))).items():
            self._tell_transport(source, guild_id, consent)

    def _tell_transport(self, source: str, guild_id: str, consent: listening.Consent) -> None:
        if (voice := self.voices.get(source)) is not None:
            voice.listen(guild_id, consent.on, consent.opted_out)

    def handle(self, message: object) -> None:
        if isinstance(message, ControlListening):
            key = f"{message.source}:{message.guild_id}"
            self.guilds.execute(key, lambda s: listening.decide(s, message))
            self._tell_transport(message.source, message.guild_id, self.guilds.load(key))
        elif isinstance(message, HearSpeech):
            self._hear(message)
        elif isinstance(message, SpeechEnded):
            who = (message.source, message.guild_id, message.user_id)
            if (open_ := self.open.get(who)) is not None and open_.command.utterance_id == message.utterance_id:
                self._finish(self.open.pop(who))
        else:
            raise TypeError(f"Listener cannot handle {type(message).__name__}")

    def consent(self, source: str, guild_id: str) -> listening.Consent:
        return self.guilds.load(f"{source}:{guild_id}")

    def _hear(self, c: HearSpeech) -> None:
        who = (c.source, c.guild_id, c.user_id)
        if not listening.hears(self.consent(c.source, c.guild_id), c.user_id) or self.speech is None:
            self.open.pop(who, None)
            return  # never recognized, never saved
        current = self.open.get(who)
        if current is not None and current.command.utterance_id != c.utterance_id:
            self._finish(self.open.pop(who))  # the transport began a new one: the old one is over
            current = None
        if current is None:
            part = self.parts.get(c.utterance_id, 0)
            current = self.open[who] = Utterance(c, self.speech.stream(),
                                                 c.utterance_id if not part else f"{c.utterance_id}-{part}")
        current.pcm += c.pcm
        if current.stream.accept(c.pcm) or len(current.pcm) >= MAX_UTTERANCE_S * RATE * 2:
            self._finish(self.open.pop(who))  # Vosk heard the end of a sentence: answer it now
            self.parts[c.utterance_id] = self.parts.get(c.utterance_id, 0) + 1
            while len(self.parts) > 1000:
                self.parts.pop(next(iter(self.parts)))

    def _finish(self, u: Utterance) -> None:
        text = u.stream.finish()
        c = u.command
        key = f"{c.source}:{c.guild_id}"
        if not text or not listening.hears(self.consent(c.source, c.guild_id), c.user_id):
            return
        try:
            digest, _ = self.audio.save(iter([wav_of(bytes(u.pcm))]))
        except OSError as e:  # a full disk: the words are still heard and answered, the clip not kept
            log.warning("could not keep the audio of utterance %s: %s", u.utterance_id, e)
            digest = ""
        heard = listening.Heard(c.source, c.guild_id, c.voice_channel_id, u.utterance_id, c.user_id, c.user_name,
                                text, round(len(u.pcm) / 2 / RATE, 3), digest,
                                getattr(self.speech, "model_name", ""))
        self.guilds.execute(key, lambda s: listening.decide_heard(s, heard))
