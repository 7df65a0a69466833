"""Hearing a Discord voice channel under DAVE, on discord.py 2.7's own voice connection (no fork).

``ListeningVoiceClient`` (``adapters.discord.voice_client``) is discord.py's ``VoiceClient`` with two taps: a hook on
the voice websocket (who speaks on which SSRC: SPEAKING op 5; who left: CLIENT_DISCONNECT op 13) and a listener on
the UDP socket (discord.py's socket-reader thread, never the event loop). ``VoiceReceiver`` turns each datagram into
speech: RTP opened with the connection's transport key (``adapters.discord.rtp``), the frame DAVE-decrypted
for its sender, decoded with that person's own Opus decoder to 16 kHz mono, and handed on in 100 ms chunks
(``HearSpeech``); a person's utterance ends (``SpeechEnded``) ``AFTER_SILENCE_FRAMES_S`` after their client
sends its silence frames (Discord clients do at the end of each talk spurt), or after ``silence_s`` with no
sound at all (the silence frames lost, or a client that sends none).

Never deaf: the transport key, the mode, the DAVE session and the SSRC map are read on every packet, so a
reconnect (new key) or a re-key of the group (someone joined or left) is picked up at once. Frames that
cannot be opened yet (before the welcome, around a transition, an SSRC not mapped yet) are held for
``HOLD_S`` and retried; what still cannot be read is dropped and counted, never handed to the Opus decoder.
Nothing here decides anything: whether a person may be heard is ``ListeningPolicy``'s, told by the log.
"""
from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import davey
from discord.voice_state import VoiceConnectionState

from actors.commands import HearSpeech, SpeechEnded, SpokeOver
from adapters.discord.jitter import JitterBuffer
from adapters.discord.rtp import BadPacket, RtpPacket, open_packet
from adapters.echo import EchoReference
from adapters.opus_audio import SILENCE_FRAME, OpusDecoder

log = logging.getLogger("parley.listening")
SOURCE = "discord"
HOLD_S = 2.0  # how long a frame that cannot be read yet is kept for another try
# Whose SSRC it is comes in a SPEAKING message, which may come seconds after the audio: kept longer, within a bound.
UNKNOWN_SSRC_HOLD_S = 10.0
HELD_BYTES = 1 << 20  # at most this much audio waits to be readable (beyond it, the oldest is dropped)
JITTER_S = 0.06  # PARLEY_JITTER_MS: how long packets behind a gap wait for the missing one
CHUNK_FRAMES = 5  # 100 ms of speech per HearSpeech
CONCEAL_FRAMES = 50  # a gap of up to a second inside an utterance is kept as silence (longer: a pause)
# The client said it stopped (silence frames: its own voice detection has already waited out a pause), so the
# utterance ends this soon after them.
AFTER_SILENCE_FRAMES_S = 0.1
# Speech that begins while Parley speaks (or just after) is first compared with what it said: its own voice coming
# back through someone's microphone is dropped, never heard, never a barge-in. Checked on 300 ms, and again on
# every 300 ms of what was found to be echo (someone may start talking over it).
ECHO_CHECK_FRAMES = 15
ECHO_SIMILARITY = 0.7  # measured: a replay 0.97 and above, other speech of the same voice 0.5 at most
DAVE_MARKER = b"\xfa\xfa"  # the last two bytes of every DAVE-encrypted frame
SESSION_DESCRIPTION, SPEAKING, CLIENT_DISCONNECT = 4, 5, 13
REINIT_AFTER = 50  # one second of one person's frames that will not decrypt: the group's keys are lost to us
REINIT_EVERY_S = 10.0  # and at most one re-initialisation this often
REPORT_EVERY_S = 60.0  # frames lost since the last report are logged at most this often (and when hearing stops)
# A frame's fate that is not a loss: heard, the client's silence, Parley's own or an opted-out person's (dropped on
# purpose), RTCP and video (not audio), held (counted again when it opens or is dropped), a re-initialisation.
NOT_LOST = ("heard", "silence", "own", "not_listening", "rtcp", "not_audio", "held:", "e2ee:", "recovered", "reinit",
            "reordered", "duplicate", "concealed", "echo")
HELD_WHY = ("held:unknown_ssrc", "e2ee:")  # why frames could not be read at once (then recovered, or dropped)
_ids = itertools.count()


def e2ee_reason(error: Exception) -> str:
    """davey's decryption error by its innermost name: "Failed to decrypt: DecryptionFailed(NoValidCryptorFound
    { media_type: AUDIO, ... })" is NoValidCryptorFound."""
    words = re.findall(r"[A-Za-z]\w*", re.sub(r"\{[^{}]*\}", "", str(error).split(": ", 1)[-1]))
    return words[-1][:60] if words else type(error).__name__


def utterance_id(now: float) -> str:
    """A new utterance's id, unique across processes in practice: milliseconds, then a counter."""
    return f"u{int(now * 1000)}{next(_ids) % 1000:03d}"


class ListeningPolicy:
    """Who may be heard, per guild, as the log says (``ListeningTurnedOn`` / ``Off``, opt-outs): read on every
    packet by the receivers, set from any thread by the listening room's reactions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._on: set[str] = set()
        self._opted_out: dict[str, frozenset[str]] = {}

    def set(self, guild_id: str, on: bool, opted_out: frozenset[str]) -> None:
        with self._lock:
            (self._on.add if on else self._on.discard)(guild_id)
            self._opted_out[guild_id] = opted_out

    def listening(self, guild_id: str) -> bool:
        return guild_id in self._on

    def hears(self, guild_id: str, user_id: str) -> bool:
        return guild_id in self._on and user_id not in self._opted_out.get(guild_id, frozenset())


@dataclass
class Speaker:
    """One person's audio in one voice connection."""

    user_id: int
    decoder: OpusDecoder = field(default_factory=OpusDecoder)
    utterance: str = ""
    pcm: bytearray = field(default_factory=bytearray)
    frames: int = 0
    last_sound: float = 0.0
    last_sequence: int | None = None
    quiet_since: float = 0.0  # when the client's silence frames came (0: still talking)
    checked: bool = True  # this utterance is known not to be Parley's own voice coming back (or need not be)
    echo: bool = False  # it is: dropped


@dataclass
class Held:
    at: float
    packet: RtpPacket
    why: str = "e2ee"  # "unknown_ssrc": kept UNKNOWN_SSRC_HOLD_S, else HOLD_S


class VoiceReceiver:
    """What arrives on one guild's voice connection, as speech commands for the listening room."""

    def __init__(self, guild_id: int, state: Callable[[], VoiceConnectionState], policy: ListeningPolicy,
                 report: Callable[[object], None], names: Callable[[int], str], silence_s: float,
                 self_id: int, on_speech_started: Callable[[], bool] | None = None,
                 on_stuck: Callable[[], None] | None = None, jitter_s: float = JITTER_S,
                 unknown_ssrc_hold_s: float = UNKNOWN_SSRC_HOLD_S, echo: EchoReference | None = None):
        self.guild_id = guild_id
        self.state = state
        self.policy = policy
        self.report = report
        self.names = names
        self.silence_s = silence_s
        self.self_id = self_id
        self.on_speech_started = on_speech_started  # a real utterance began: True if over Parley's speech
        self.echo = echo  # what Parley played here lately
        self.on_stuck = on_stuck  # a run of frames that will not decrypt: the DAVE session is re-initialised
        self.failures: Counter[int] = Counter()  # DAVE frames in a row that would not decrypt, per person
        self._last_reinit = -REINIT_EVERY_S
        self._named = 0  # SSRCs named so far: held frames are retried when one more is
        self._seen: tuple = ()
        self.ssrc_users: dict[int, int] = {}
        self.speakers: dict[int, Speaker] = {}
        self.held: deque[Held] = deque()
        self.held_bytes = 0
        self.unknown_ssrc_hold_s = unknown_ssrc_hold_s
        self.counts: Counter[str] = Counter()  # every frame's fate: heard, silence, and each reason dropped
        self.jitter: JitterBuffer[RtpPacket] = JitterBuffer(jitter_s, counts=self.counts)  # in order, no repeats
        self._reported: Counter[str] = Counter()  # the counts as of the last report of losses
        self._report_at = time.monotonic() + REPORT_EVERY_S
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._ticker = threading.Thread(target=self._tick_until_closed, daemon=True,
                                        name=f"voice-receive-{guild_id}")
        self._ticker.start()

    def close(self) -> None:
        self._closed.set()
        with self._lock:  # what still waits behind a gap is heard first
            waiting = self.jitter.tick(float("inf"))
            if waiting:
                state = self.state()
                for ready in waiting:
                    self._take(state, ready, time.monotonic(), hold=False)
        self.report_losses()
        log.info("stopped hearing guild %s; frames: %s", self.guild_id, dict(self.counts))
        with self._lock:
            for speaker in list(self.speakers.values()):
                self._end(speaker)

    # -- the voice websocket (on the event loop) ------------------------------------------------------
    def on_voice_message(self, message: dict) -> None:
        op, data = message.get("op"), message.get("d") or {}
        if op == SPEAKING and "ssrc" in data and "user_id" in data:
            with self._lock:
                self.ssrc_users[int(data["ssrc"])] = int(data["user_id"])
                self._named += 1
        elif op == CLIENT_DISCONNECT and "user_id" in data:
            user = int(data["user_id"])
            with self._lock:
                for ssrc in [s for s, u in self.ssrc_users.items() if u == user]:
                    del self.ssrc_users[ssrc]
                    self.jitter.forget(ssrc)
                if (speaker := self.speakers.pop(user, None)) is not None:
                    self._end(speaker)

    # -- the UDP socket (on discord.py's socket-reader thread) -------------------------------------------
    def on_datagram(self, datagram: bytes) -> None:
        state = self.state()
        now = time.monotonic()
        try:
            packet = open_packet(datagram, state.mode, bytes(state.secret_key))
        except (BadPacket, TypeError) as e:  # TypeError: no key yet (MISSING)
            self.counts[getattr(e, "reason", "no_key")] += 1
            return
        with self._lock:
            if self.held and self._changed(state):  # new keys or a newly named SSRC: what waits may open now
                self._retry_held(state, now)
            for ready in self.jitter.push(packet, now):  # back in order; repeats and late ones gone
                self._take(state, ready, now, hold=True)

    def _changed(self, state: VoiceConnectionState) -> bool:
        session = state.dave_session
        seen = (id(session), getattr(session, "epoch", None), getattr(session, "ready", None),
                state.dave_protocol_version, self._named)
        changed, self._seen = seen != self._seen, seen
        return changed

    def _take(self, state: VoiceConnectionState, packet: RtpPacket, now: float, hold: bool) -> bool:
        """Hear ``packet``; False when it could not be read yet (then held, if ``hold``)."""
        user = self.ssrc_users.get(packet.ssrc)
        if user is None:
            return self._hold(packet, now, hold, "unknown_ssrc")
        if user == self.self_id:
            self.counts["own"] += 1  # Parley never hears itself
            return True
        if not self.policy.hears(str(self.guild_id), str(user)):
            self.counts["not_listening"] += 1  # dropped before any decryption or decoding
            return True
        if packet.payload == SILENCE_FRAME:  # the client's own "I stopped talking" (sent after each talk spurt)
            self.counts["silence"] += 1
            if (speaker := self.speakers.get(user)) is not None and speaker.utterance and not speaker.quiet_since:
                speaker.quiet_since = now
            return True
        frame = self._dave_open(state, user, packet.payload, first_try=hold)
        if frame is None:
            return self._hold(packet, now, hold, "e2ee")
        speaker = self.speakers.get(user)
        if speaker is None:
            speaker = self.speakers[user] = Speaker(user)
        behind = (speaker.last_sequence - packet.sequence) % 65536 if speaker.last_sequence is not None else None
        if behind is not None and behind < 1000:
            self.counts["late"] += 1  # a repeat, or behind what was already decoded: 20 ms that already passed
            return True  # (a jump forward, or far back, is a lost stretch or a restarted stream: heard)
        lost = (packet.sequence - speaker.last_sequence) % 65536 - 1 if speaker.last_sequence is not None else 0
        speaker.last_sequence = packet.sequence
        if 0 < lost <= 1000:
            self.counts["lost"] += lost  # never came (or never readable): a gap in the sequence
        if not speaker.utterance and speaker.decoder.frames:
            speaker.decoder = OpusDecoder()  # each utterance decoded from a clean state, as its own recording
        elif speaker.utterance and 0 < lost <= CONCEAL_FRAMES:
            speaker.pcm += OpusDecoder.silence(lost)  # frames lost or never readable: their time, as silence
            self.counts["concealed"] += lost
        pcm = speaker.decoder.decode(frame)
        if not pcm:
            self.counts["undecodable"] += 1
            return True
        self.counts["heard"] += 1
        if not speaker.utterance:
            speaker.utterance = utterance_id(time.time())
            speaker.checked = self.echo is None or not self.echo.recent()
            if speaker.checked:
                self._started(speaker)
        speaker.pcm += pcm
        speaker.frames += 1
        speaker.last_sound, speaker.quiet_since = now, 0.0
        if not speaker.checked and speaker.frames % ECHO_CHECK_FRAMES == 0:
            self._check_echo(speaker)
        if speaker.checked and speaker.frames % CHUNK_FRAMES == 0:
            self._flush(speaker)
        return True

    def _started(self, speaker: Speaker) -> None:
        """A person began to speak: if that was over Parley (which pauses), the listening room is told first."""
        if self.on_speech_started is not None and self.on_speech_started():
            self.report(SpokeOver(SOURCE, str(self.guild_id), str(speaker.user_id), speaker.utterance))

    def _check_echo(self, speaker: Speaker) -> None:
        """Parley's own voice coming back, or a person? Echo is dropped (and checked again on its next 300 ms)."""
        assert self.echo is not None
        similarity = self.echo.similarity(bytes(speaker.pcm[-ECHO_CHECK_FRAMES * 640:]))
        if similarity >= ECHO_SIMILARITY:
            if not speaker.echo:
                log.info("speech of %s in guild %s is Parley's own voice coming back (similarity %.2f): not heard",
                         speaker.user_id, self.guild_id, similarity)
            speaker.echo = True
            self.counts["echo"] += ECHO_CHECK_FRAMES
            self.counts["heard"] -= ECHO_CHECK_FRAMES
            speaker.pcm.clear()
            return
        if speaker.echo:  # a person speaks now, where the echo was: an utterance of its own
            speaker.echo, speaker.utterance = False, utterance_id(time.time())
            speaker.pcm[:] = speaker.pcm[-ECHO_CHECK_FRAMES * 640:]
        speaker.checked = True
        self._started(speaker)

    def _dave_open(self, state: VoiceConnectionState, user: int, payload: bytes,
                   first_try: bool = True) -> bytes | None:
        """The Opus frame inside ``payload``, or None when it cannot be read yet. Plain frames pass only while
        the session allows it (no DAVE, downgraded, or passthrough around a transition). A failure is counted on a
        frame's first try only: a held frame is retried on every tick, and its retries are not more frames."""
        session = state.dave_session
        if session is None or state.dave_protocol_version == 0:
            return None if payload.endswith(DAVE_MARKER) and len(payload) > 12 else payload
        if not payload.endswith(DAVE_MARKER):
            return payload if session.can_passthrough(user) else None
        if not session.ready:
            return None
        try:
            frame = session.decrypt(user, davey.MediaType.audio, payload)
        except Exception as e:  # noqa: BLE001  (davey: NoValidCryptorFound, NoDecryptorForUser, ...): retried
            if not first_try:
                return None
            self.counts[f"e2ee:{e2ee_reason(e)}"] += 1
            self.failures[user] += 1
            now = time.monotonic()
            if self.failures[user] >= REINIT_AFTER and now - self._last_reinit >= REINIT_EVERY_S \
                    and self.on_stuck is not None:
                log.warning("%d frames in a row from %s would not decrypt: re-initialising the DAVE session",
                            self.failures[user], user)
                self.counts["reinit"] += 1
                self._last_reinit, self.failures[user] = now, 0
                self.on_stuck()
            return None
        self.failures.pop(user, None)
        return frame

    def _hold(self, packet: RtpPacket, now: float, hold: bool, why: str) -> bool:
        if hold:
            self.held.append(Held(now, packet, why))
            self.held_bytes += len(packet.payload)
            self.counts[f"held:{why}"] += 1
            while self.held_bytes > HELD_BYTES:  # bounded: the oldest goes first
                self.held_bytes -= len(self.held.popleft().packet.payload)
                self.counts["dropped"] += 1
        return False

    def _retry_held(self, state: VoiceConnectionState, now: float) -> None:
        for _ in range(len(self.held)):
            held = self.held.popleft()
            self.held_bytes -= len(held.packet.payload)
            if self._take(state, held.packet, now, hold=False):
                self.counts["recovered"] += 1
            elif now - held.at < (self.unknown_ssrc_hold_s if held.why == "unknown_ssrc" else HOLD_S):
                self.held.append(held)
                self.held_bytes += len(held.packet.payload)
            else:
                self.counts["dropped"] += 1  # held too long: concealed as silence by the gap

    # -- utterances ----------------------------------------------------------------------------------------
    def _flush(self, speaker: Speaker) -> None:
        if speaker.pcm:
            client = self.state().voice_client
            channel = getattr(client, "channel", None)
            self.report(HearSpeech(SOURCE, str(self.guild_id), str(channel.id) if channel else "",
                                   str(speaker.user_id), self.names(speaker.user_id), speaker.utterance,
                                   bytes(speaker.pcm)))
            speaker.pcm.clear()

    def _end(self, speaker: Speaker) -> None:
        if speaker.utterance and not speaker.checked and not speaker.echo and self.echo is not None:
            self._check_echo(speaker)  # shorter than a check: checked on what there is
        if speaker.utterance and speaker.checked:
            self._flush(speaker)
            self.report(SpeechEnded(SOURCE, str(self.guild_id), str(speaker.user_id), speaker.utterance))
        speaker.utterance, speaker.frames, speaker.quiet_since, speaker.echo = "", 0, 0.0, False
        speaker.pcm.clear()

    def report_losses(self) -> None:
        """One warning line for the frames lost since the last one (none: no line), so a connection that loses
        audio shows while it does, not only in the summary when hearing stops."""
        counts = self.counts.copy()  # one C-level copy: the socket reader may add a reason meanwhile
        grown = +Counter({k: n - self._reported[k] for k, n in counts.items()})
        self._reported = counts
        lost = Counter({k: n for k, n in grown.items() if not k.startswith(NOT_LOST)})
        held = Counter({k: n for k, n in grown.items() if k.startswith(HELD_WHY)})
        if lost:
            def listed(c: Counter[str]) -> str:
                return ", ".join(f"{k} {n}" for k, n in c.most_common())
            log.warning("voice in guild %s: %d frames heard, %d lost since the last report (%s)%s", self.guild_id,
                        grown["heard"], sum(lost.values()), listed(lost),
                        f"; not readable at once: {listed(held)}" if held else "")

    def _tick_until_closed(self) -> None:
        while not self._closed.wait(0.05):
            now = time.monotonic()
            if now >= self._report_at:
                self._report_at = now + REPORT_EVERY_S
                self.report_losses()
            with self._lock:
                late = self.jitter.tick(now)  # gaps waited out: what waited behind them goes on
                if late:
                    state = self.state()
                    for ready in late:
                        self._take(state, ready, now, hold=True)
                for speaker in self.speakers.values():
                    quiet = speaker.quiet_since and \
                        now - speaker.quiet_since >= min(self.silence_s, AFTER_SILENCE_FRAMES_S)
                    if speaker.utterance and (quiet or now - speaker.last_sound >= self.silence_s):
                        self._end(speaker)
                if self.held:
                    self._retry_held(self.state(), now)
