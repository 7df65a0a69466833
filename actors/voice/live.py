"""Answers spoken while they are written: the first sentence is said while the model writes the next.

The Responder streams an answer as drafts (each the whole text so far). For a question asked in a voice channel,
``LiveAnswers`` turns those drafts into sentences for the voice Speaker: once the first sentence is complete
the Speaker starts saying it, and each later sentence is said as soon as it is complete; the final answer (or its
failure) ends the stream. A sentence inside an unfinished code block waits for the block to close (it is said as
"code block omitted"). Nothing here does I/O; the Speaker's playback thread waits on ``sentences()``.
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping

from actors.commands import SpeakInVoice
from actors.listening.timing import TurnTimes
from actors.policies import say_in_voice_channel
from actors.ports import Draft, VoiceChannels
from events.catalog.conversation import ResponseFailed, ResponseGenerated

_SENTENCE_END = re.compile(r"[.!?。…](?=\s)|\n")
_CLAUSE_END = re.compile(r"[,;:、，](?=\s)")
LONG_RUN = 60  # characters without a sentence end after which a clause or a phrase is said anyway
FIRST_RUN = 24  # the same for the first words of an answer: the first audio leaves after a phrase...
FIRST_CHUNKS = 6  # ...or after this many streamed pieces, at a word break: a piece is a token, or a character the
# model spent several tokens on (a Hangul syllable is ~3 for SmolLM2); such a script must not wait for 24 characters.
# Six, not twelve: bench/listen.py --llm local went from p50 1.17 s to 0.94 s (on English text, 6 tokens are about
# the 24 characters anyway)
FENCE = "```"
log = logging.getLogger("parley.voice")
KEEP = 1000  # live answers remembered at once (a question per voice asker at a time; bounded all the same)


def complete_part(text: str, first: bool = False, any_break: bool = False) -> int:
    """How much of ``text`` (a draft) is ready to be said: up to the last sentence end followed by more text, or,
    after ``LONG_RUN`` characters with none (``FIRST_RUN`` for the ``first`` words of an answer), up to the last
    clause or word break (with ``any_break``, at once); never inside an unclosed code block."""
    end = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
    if len(text) - end > (0 if any_break and not end else FIRST_RUN if first and not end else LONG_RUN):
        clauses = [m.end() for m in _CLAUSE_END.finditer(text, end)]
        words = text.rfind(" ", end)
        end = clauses[-1] if clauses else words if words > end else end
    opened = text.count(FENCE, 0, end) % 2 == 1
    return text.rfind(FENCE, 0, end) if opened else end


class LiveAnswer:
    """One answer's text as it grows (``grow``) until it is final (``end``); ``sentences()`` yields the text in
    complete pieces, each once, waiting for the next until the end (or ``patience`` seconds without growth)."""

    def __init__(self, patience: float = 60.0):
        self._text, self._final, self._ended, self._chunks = "", False, False, 0
        self._changed = threading.Condition()
        self.patience = patience
        self.started = False  # the Speaker was asked to say it
        self.guild_id = ""  # where it is said

    def grow(self, text: str) -> None:
        with self._changed:
            if not self._ended and len(text) >= len(self._text):
                self._text, self._chunks = text, self._chunks + 1
                self._changed.notify_all()

    def _ready_upto(self, said: int) -> int:
        """How far the text may be said now (called holding the lock)."""
        if self._final:
            return len(self._text)
        return complete_part(self._text, first=not said, any_break=not said and self._chunks >= FIRST_CHUNKS)

    def end(self, text: str | None) -> None:
        """The answer is final (``text``), or failed (None: what was said stays said, nothing more comes)."""
        with self._changed:
            if text is not None:
                self._text, self._final = text, True
            self._ended = True
            self._changed.notify_all()

    def ready(self) -> bool:
        """The first sentence is complete (or the answer ended): time to start speaking."""
        with self._changed:
            return self._ended or self._ready_upto(0) > 0

    def sentences(self) -> Iterator[str]:
        said = 0
        while True:
            with self._changed:
                while True:
                    upto = self._ready_upto(said)
                    if upto > said or self._ended:
                        break
                    if not self._changed.wait(self.patience):
                        return  # the model stopped writing: the Responder's own deadlines record why
                piece, said = self._text[said:upto], max(said, upto)
                done = self._ended and said >= self._ready_upto(said)
            if piece.strip():
                yield piece
            if done:
                return


class LiveAnswers:
    """The answers being spoken while written, by the message they answer."""

    def __init__(self) -> None:
        self._answers: dict[str, LiveAnswer] = {}
        self._not_spoken: dict[str, None] = {}  # drafts of these are not for a voice channel: never asked again
        self._lock = threading.Lock()

    def decided(self, message_id: str) -> bool:
        with self._lock:
            return message_id in self._answers or message_id in self._not_spoken

    def follow(self, message_id: str, spoken: bool) -> LiveAnswer | None:
        with self._lock:
            if not spoken:
                self._not_spoken[message_id] = None
                while len(self._not_spoken) > KEEP:
                    self._not_spoken.pop(next(iter(self._not_spoken)))
                return None
            answer = self._answers.setdefault(message_id, LiveAnswer())
            while len(self._answers) > KEEP:  # the oldest, long finished or abandoned
                self._answers.pop(next(iter(self._answers))).end(None)
            return answer

    def get(self, message_id: str) -> LiveAnswer | None:
        with self._lock:
            return self._answers.get(message_id)

    def finish(self, message_id: str, text: str | None) -> LiveAnswer | None:
        """The answer is final (or failed): end its stream and stop following it; the one it was, if any."""
        with self._lock:
            answer = self._answers.pop(message_id, None)
            self._not_spoken.pop(message_id, None)
        if answer is not None:
            answer.end(text)
        return answer


class LiveSpeech:
    """Where drafts meet the voice channel: the first complete sentence of an answer to someone listening in a
    voice channel asks the guild's Speaker to start (``SpeakInVoice`` with the live answer); the final answer ends
    it, and then needs no second ``SpeakInVoice``."""

    def __init__(self, answers: LiveAnswers, voices: Mapping[str, VoiceChannels],
                 dispatch: Callable[[object], None], times: TurnTimes | None = None) -> None:
        self.answers = answers
        self.times = times or TurnTimes()  # a spoken question's first token is marked here
        self.voices = voices  # the transports' voice channels, by source
        self.dispatch = dispatch

    def listening_guild(self, source: str, channel_id: str, message_id: str) -> str | None:
        """The guild whose voice channel has both Parley and the person who asked (None: not said aloud)."""
        channels = self.voices.get(source)
        return channels.listening_guild(channel_id, message_id) if channels is not None else None

    def draft(self, draft: Draft) -> None:
        self.times.mark(draft.message_id, "first_token")
        if not self.answers.decided(draft.message_id):
            guild = self.listening_guild(draft.source, draft.channel_id, draft.message_id)
            if guild:
                log.info("the answer to %s is said in guild %s while it is written", draft.message_id, guild)
            followed = self.answers.follow(draft.message_id, guild is not None)
            if followed is not None:
                followed.guild_id = guild or ""
        answer = self.answers.get(draft.message_id)
        if answer is None:
            return
        answer.grow(draft.text)
        if not answer.started and answer.ready():
            answer.started = True
            self.dispatch(SpeakInVoice(draft.source, answer.guild_id, draft.conversation_id,
                                       draft.channel_id, draft.message_id, "", live=answer))

    def finished(self, message_id: str, text: str | None) -> bool:
        """The answer is final (``text``) or failed (None). True when it is being said already."""
        answer = self.answers.finish(message_id, text)
        return answer is not None and answer.started

    def answered(self, answer: ResponseGenerated) -> SpeakInVoice | None:
        """An answer is said in the voice channel when its asker is in Parley's: whole, unless it is being said
        already, sentence by sentence as it was written."""
        if self.finished(answer.message_id, answer.text):
            return None
        return say_in_voice_channel(answer, self.listening_guild(answer.source, answer.channel_id, answer.message_id))

    def failed(self, failure: ResponseFailed) -> None:
        self.finished(failure.message_id, None)
