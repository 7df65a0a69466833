"""The Speaker of one guild's voice channel (a thin shell around ``actors.voice.decider``).

It joins and leaves through the ``VoiceChannels`` port, hands answers to the port's playback queue as
lazily synthesized speech (playback starts after the first sentence), and records what the port
reports back. Synthesis runs on the port's playback thread as it is played; when it ends, the WAV is
stored content-addressed and ``RecordSynthesis`` comes back here through ``dispatch``.
"""
from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator

from actors.voice.live import LiveAnswer
from actors.voice import decider as voice_session
from actors.commands import (ControlVoice, RecordCutOff, RecordSynthesis, RejoinVoice, ReportPlayback,
                             ReportVoiceBack, ReportVoiceLost, SpeakInVoice, Spoken)
from actors.ports import TextToSpeech, VoiceChannels, VoiceUnavailable
from actors.speaking.actor import SpeechRecording
from actors.speaking.spoken import first_part, sentence_count, sentences, spoken_text
from actors.streams import DecidedStreams, Publish
from actors.supervisor import Supervised, SupervisedActor
from events import EventStore, RecordedEvent
from events.catalog.voice import PlaybackFinished, PlaybackInterrupted, voice_stream

log = logging.getLogger("parley.voice")


class GuildSpeakerActor(SupervisedActor):
    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish, voice: VoiceChannels,
                 engine: Callable[[], TextToSpeech], files, max_spoken_chars: int,  # noqa: ANN001
                 dispatch: Callable[[object], None]):
        super().__init__(supervisor)
        self.voice = voice
        self.engine = engine
        self.files = files
        self.max_spoken_chars = max_spoken_chars
        self.dispatch = dispatch
        self.pending: dict[str, SpeakInVoice] = {}  # utterances queued or playing, by id
        self.said: dict[str, list[str]] = {}  # by utterance: the sentences begun aloud (the playback thread adds)
        self.joined_here = False  # this process joined a channel on someone's word: a rejoin from the log is moot
        self.sessions = DecidedStreams(store, publish, voice_session.VoiceSession(), voice_session.evolve,
                                       lambda key: voice_stream(*key.split(":", 1)), capacity=100)

    def handle(self, message: object) -> None:
        if isinstance(message, ControlVoice):
            self._control(message)
        elif isinstance(message, SpeakInVoice):
            self._speak(message)
        elif isinstance(message, ReportPlayback):
            about = self.pending.get(message.utterance_id)
            recorded = self._record(message.source, message.guild_id,
                                    lambda s: voice_session.decide_report(s, message, about))
            ended = message.what not in ("started", "paused", "resumed")
            said = self.said.pop(message.utterance_id, None) if ended else None
            if about is not None and said is not None and any(
                    isinstance(r.event, PlaybackInterrupted) and r.event.reason == "barge_in" for r in recorded):
                # the conversation remembers what was said of it, not what was written
                self.dispatch(RecordCutOff(about.conversation_id, about.message_id, " ".join(said)))
        elif isinstance(message, RecordSynthesis):
            about = self.pending.get(message.utterance_id)
            self._record(message.source, message.guild_id, lambda s: voice_session.decide_synthesis(s, message, about))
        elif isinstance(message, ReportVoiceLost):
            self._lost(message)
        elif isinstance(message, ReportVoiceBack):
            self._record(message.source, message.guild_id, lambda s: voice_session.decide_back(s, message))
        elif isinstance(message, RejoinVoice):
            self._rejoin(message)
        else:
            raise TypeError(f"the voice Speaker cannot handle {type(message).__name__}")

    def _record(self, source: str, guild_id: str, decide) -> list[RecordedEvent]:  # noqa: ANN001
        recorded = self.sessions.execute(f"{source}:{guild_id}", decide)
        for r in recorded:
            if isinstance(r.event, (PlaybackFinished, PlaybackInterrupted)):
                self.pending.pop(r.event.utterance_id, None)
        return recorded

    def _control(self, command: ControlVoice) -> None:
        key = f"{command.source}:{command.guild_id}"
        busy = self.voice.busy(command.guild_id)
        if voice_session.refuse(self.sessions.load(key), command, busy) is not None:
            # decided again on fresh state if another writer got there first
            self._record(command.source, command.guild_id, lambda s: voice_session.refuse(s, command, busy) or [])
            return
        error = None
        if command.action == "join":
            assert command.voice_channel_id is not None
            error = self._connect(command.guild_id, command.voice_channel_id)
            self.joined_here = self.joined_here or error is None
        elif command.action == "leave":
            self._forget_queue()
            self.voice.disconnect(command.guild_id)
        elif command.action == "stop":
            self.voice.stop(command.guild_id)
        elif command.action == "skip":
            self.voice.skip(command.guild_id)
        self._record(command.source, command.guild_id, lambda s: voice_session.decide_control(s, command, error))

    def _connect(self, guild_id: str, channel_id: str) -> str | None:
        try:
            self.voice.connect(guild_id, channel_id)
            threading.Thread(target=self._warm_voice, name="parley-voice-warm", daemon=True).start()
            return None
        except VoiceUnavailable as e:
            return str(e)
        except Exception as e:  # noqa: BLE001 - whatever Discord's voice stack raised, the person is told
            log.warning("could not join voice channel %s: %r", channel_id, e)
            return f"the voice connection failed ({type(e).__name__})"

    def _warm_voice(self) -> None:
        """Ready the synthesizer (off this actor's thread) once a voice channel is joined: the first answer said
        there does not wait for the voice to load."""
        try:
            warm = getattr(self.engine(), "warm", None)
            if warm is not None:
                warm()
        except Exception as e:  # noqa: BLE001 - the first answer meets the same failure and reports it
            log.info("the voice could not be readied ahead: %s", e)

    def _forget_queue(self) -> None:
        # What was queued is recorded as interrupted by the decision that leaves; the port's own
        # reports about it afterwards find nothing left to record.
        self.pending.clear()

    def _speak(self, command: SpeakInVoice) -> None:
        state = self.sessions.load(f"{command.source}:{command.guild_id}")
        live = command.live if isinstance(command.live, LiveAnswer) else None
        text = "(being written)" if live is not None else spoken_text(command.text, self.max_spoken_chars)
        if not voice_session.speaks(state, command, text):
            return
        utterance_id = f"{command.message_id}"
        speech = self._synthesized(command, utterance_id, [command.text] if live is None else live.sentences())
        try:  # the first sentence here: a missing or damaged voice shows now, not on the playback thread
            first = next(speech)
        except StopIteration:
            return
        except Exception as e:  # noqa: BLE001 - the written answer has gone out; the log says why no voice
            log.warning("cannot speak the answer to %s in voice: %s", command.message_id, e)
            return
        self.pending[utterance_id] = command
        self.voice.enqueue(command.guild_id, utterance_id, itertools.chain([first], speech))

    def _synthesized(self, command: SpeakInVoice, utterance_id: str, pieces: Iterable[str]
                     ) -> Iterator[tuple[bytes, int]]:
        """Speech as it is synthesized, kept for the content-addressed WAV; runs on the playback thread. ``pieces``:
        the answer whole, or its sentences as the model finishes them (an answer said while it is written)."""
        def chunks() -> Iterator[tuple[bytes, int]]:
            engine = self.engine()
            recording = SpeechRecording()
            said, texts = 0, []  # sentences are counted in the whole text said: a live piece may end mid-sentence
            begun = self.said.setdefault(utterance_id, [])  # what the player has begun to say, piece by piece
            for piece in pieces:
                text = spoken_text(piece, self.max_spoken_chars - said)
                if not text:
                    continue
                # the first audio leaves after a clause, not a whole sentence
                first, rest = first_part(text) if not said else ("", text)
                said += len(text) + 1
                texts.append(text)
                # sentence by sentence, so that what was begun aloud is known by the sentence (an answer cut off)
                units = ([first] if first else []) + sentences(rest)
                begins: list[str | None] = list(units)
                if first and len(units) > 1:  # a first clause and the rest of its sentence: one sentence begun
                    begins[:2] = [f"{first} {units[1]}", None]
                for unit, begins_sentence in zip(units, begins):
                    for n, chunk in enumerate(recording.keep(engine.synthesize(unit))):
                        if not n and begins_sentence:  # (the actor reads it once playback ended: appends are atomic)
                            begun.append(begins_sentence)
                        yield chunk.pcm, chunk.sample_rate
                if said >= self.max_spoken_chars:
                    break
            digest, _ = self.files.save(iter([recording.wav()]))
            self.dispatch(RecordSynthesis(command.source, command.guild_id, utterance_id, Spoken(
                engine.voice_name, sentence_count(*texts), round(recording.seconds, 3), digest, max(0, said - 1), digest)))
        return chunks()

    def _lost(self, report: ReportVoiceLost) -> None:
        if report.reason == "idle":
            self.voice.disconnect(report.guild_id)
        if report.reason != "moved":
            self._forget_queue()
        self._record(report.source, report.guild_id, lambda s: voice_session.decide_lost(s, report))

    def _rejoin(self, command: RejoinVoice) -> None:
        state = self.sessions.load(f"{command.source}:{command.guild_id}")
        if state.channel_id is None or self.joined_here:  # a `join` before Discord said it was ready came first
            return
        error = self._connect(command.guild_id, state.channel_id)
        if error is not None:
            log.warning("could not rejoin voice channel %s after a restart: %s", state.channel_id, error)
        self._record(command.source, command.guild_id,
                     lambda s: voice_session.decide_rejoin(s, command.source, command.guild_id, error))


class GuildSpeakers:
    """One supervised Speaker per guild (its own queue and its own connection), started on first use."""

    def __init__(self, start: Callable[[str], Supervised]):
        self._start = start
        self._speakers: dict[str, Supervised] = {}
        self._lock = threading.Lock()

    def tell(self, command: object) -> None:
        key = f"{command.source}:{command.guild_id}"  # type: ignore[attr-defined]
        with self._lock:
            speaker = self._speakers.get(key)
            if speaker is None:
                speaker = self._speakers[key] = self._start(key)
        speaker.tell(command)
