"""The Listener: what people say in a guild's voice channel, recognized while they speak (a thin shell around
``actors.listening.decider``).

The voice transport hands in each person's speech in ~100 ms chunks (``HearSpeech``) and says when they went
quiet (``SpeechEnded``). Each utterance has its own recognizer, fed as the chunks arrive, so the transcript is
ready when the person stops. A pause (Vosk's endpointing, or the transport's ``SpeechEnded``) is judged by the rules
of ``actors.listening.turns``: a finished turn is answered at once, a pause mid-sentence waits for more speech (the
end-of-turn model and the last word say which), ``max_wait_s`` at most. Speech that began over Parley's own
(``SpokeOver``: the transport paused it) is a backchannel (Parley goes on) or an interruption (it stops). Consent is the log's (``listening:<source>:<guild>``): speech of a person who may not be heard
is dropped here too, unrecognized and unsaved. The audio of what was heard is kept as a content-addressed WAV
(like a voice message's), never in the log.
"""
from __future__ import annotations

import io
import logging
import threading
import time
import wave
from collections.abc import Mapping
from dataclasses import dataclass, field

from actors.commands import ControlListening, HearSpeech, SpeechEnded, SpokeOver, TurnWaitOver
from actors.listening import decider as listening
from actors.listening.timing import TurnTimes
from actors.listening.turns import TurnRules, is_backchannel, judge_pause, language_of
from actors.ports import SpeechStream, StreamingSpeechToText, VoiceChannels
from actors.streams import DecidedStreams, Publish
from actors.supervisor import Supervised, SupervisedActor
from events import EventStore
from events.catalog.listening import CONSENT_EVENTS, listening_stream

log = logging.getLogger("parley.listening")
RATE = 16000
LISTENING_COMMANDS = (ControlListening, HearSpeech, SpeechEnded, SpokeOver)
MAX_UTTERANCE_S = 60.0  # one person talking longer than this is cut into several utterances


@dataclass
class Utterance:
    """One person's speech being recognized."""

    command: HearSpeech
    stream: SpeechStream
    utterance_id: str
    pcm: bytearray = field(default_factory=bytearray)
    words: str = ""  # recognized up to the last pause (its stream then starts over: Vosk's final words are exact)
    parts: set[str] = field(default_factory=set)  # the transport's utterance ids that make up this turn
    waiting: int = 0  # paused mid-turn: the number of this wait (a timer of an earlier one is stale); 0: talking
    over_playback: bool = False  # began over Parley's speech, which is paused: backchannel or interruption?


def wav_of(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(RATE)
        w.writeframes(pcm)
    return out.getvalue()


class ListenerActor(SupervisedActor):
    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish,
                 speech: StreamingSpeechToText | None, audio, voices: Mapping[str, VoiceChannels],  # noqa: ANN001
                 rules: TurnRules = TurnRules(), turn_model=None, times: TurnTimes | None = None):  # noqa: ANN001
        super().__init__(supervisor)
        self.times = times or TurnTimes()  # for status: how long each stage of a turn took
        self.rules = rules
        self.turn_model = turn_model  # adapters.turn_model.SmartTurn, or None: the words alone judge a pause
        self.language = language_of(getattr(speech, "model_name", ""))
        self.spoken_over: dict[tuple[str, str, str], str] = {}  # SpokeOver before the speech it names
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
        if self.turn_model is not None:  # loaded aside: the first pause need not wait for it
            threading.Thread(target=self.turn_model.load, daemon=True, name="turn-model-load").start()

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
            if (open_ := self.open.get(who)) is not None and message.utterance_id in open_.parts:
                self.times.speech_ended(open_.utterance_id)
                self._paused(who, open_)
        elif isinstance(message, SpokeOver):
            who = (message.source, message.guild_id, message.user_id)
            if (open_ := self.open.get(who)) is not None and message.utterance_id in open_.parts:
                open_.over_playback = True
            else:
                self.spoken_over[who] = message.utterance_id
        elif isinstance(message, TurnWaitOver):
            if (open_ := self.open.get(message.who)) is not None and open_.waiting == message.wait and \
                    open_.utterance_id == message.utterance_id:
                log.info("utterance %s: no more speech after a pause mid-turn, answered", open_.utterance_id)
                self._finish(self.open.pop(message.who))
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
        if current is not None and c.utterance_id not in current.parts:
            if current.waiting and not self.spoken_over.get(who) == c.utterance_id:
                current.parts.add(c.utterance_id)  # they go on after a pause mid-turn: the same turn
            else:
                self._finish(self.open.pop(who))  # the transport began a new one: the old one is over
                current = None
        if current is None:
            part = self.parts.get(c.utterance_id, 0)
            current = self.open[who] = Utterance(c, self.speech.stream(),
                                                 c.utterance_id if not part else f"{c.utterance_id}-{part}",
                                                 parts={c.utterance_id})
        if self.spoken_over.get(who) in current.parts:
            current.over_playback = bool(self.spoken_over.pop(who))
        current.pcm += c.pcm
        current.waiting = 0
        if current.over_playback and len(current.pcm) > self.rules.backchannel_s * RATE * 2:
            self._interrupt(current)  # longer than any backchannel: they are taking the turn
        if len(current.pcm) >= MAX_UTTERANCE_S * RATE * 2:
            current.stream.accept(c.pcm)
            self._finish(self.open.pop(who))
        elif current.stream.accept(c.pcm):
            self._paused(who, current)  # Vosk heard a pause: is the turn over?
        self.parts[c.utterance_id] = self.parts.get(c.utterance_id, 0) + (who not in self.open)
        while len(self.parts) > 1000:
            self.parts.pop(next(iter(self.parts)))

    def _paused(self, who: tuple[str, str, str], u: Utterance) -> None:
        """They paused: answer now if their turn is over, else wait for more (``rules.max_wait_s`` at most)."""
        u.words = f"{u.words} {u.stream.finish()}".strip()
        words = u.words
        if u.over_playback:
            spoken_s = len(u.pcm) / 2 / RATE
            if is_backchannel(self.rules, words, spoken_s, self.language):
                log.info("%r over Parley's speech (%.1f s): a backchannel, Parley goes on", words, spoken_s)
                self._voice(u, "resume")
                self.open.pop(who)  # not a turn: never answered
                return
            self._interrupt(u)
        judged = judge_pause(self.rules, words, None, self.language)
        if judged.over and judged.why == "complete" and self.turn_model is not None:
            started = time.monotonic()
            probability = self.turn_model.complete(bytes(u.pcm))
            judged = judge_pause(self.rules, words, probability, self.language)
            log.debug("end of turn %.2f in %.0f ms: %s", probability, 1000 * (time.monotonic() - started), judged)
        if judged.over:
            self._finish(self.open.pop(who))
            return
        u.waiting += 1
        log.info("utterance %s: a pause mid-turn (%s), waiting %.1f s for more", u.utterance_id, judged.why,
                 judged.wait_s)
        timer = threading.Timer(judged.wait_s, self._wait_over, args=(TurnWaitOver(who, u.utterance_id, u.waiting),))
        timer.daemon = True
        timer.start()

    def _wait_over(self, message: TurnWaitOver) -> None:  # on the timer's thread
        if not self.supervisor.stopped:
            self.supervisor.tell(message)

    def _interrupt(self, u: Utterance) -> None:
        if u.over_playback:
            u.over_playback = False
            log.info("utterance %s over Parley's speech (%.1f s): an interruption", u.utterance_id,
                     len(u.pcm) / 2 / RATE)
            self._voice(u, "interrupt")

    def _voice(self, u: Utterance, what: str) -> None:
        if (voice := self.voices.get(u.command.source)) is not None and hasattr(voice, what):
            getattr(voice, what)(u.command.guild_id)

    def _finish(self, u: Utterance) -> None:
        self._interrupt(u)  # a turn taken over Parley's speech: what was paused is not resumed
        text = f"{u.words} {u.stream.finish()}".strip()
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
        self.times.mark(u.utterance_id, "transcript")
