"""Discord voice channels for the Speaker: connect, leave, and one playback queue per guild.

Speech reaches discord.py as it is synthesized (``speech_audio``). DAVE (end-to-end encryption) is discord.py's,
with ``davey``. Every call from an actor blocks on the bot's event loop with a deadline; playback and
lost connections come back to the actors as commands through ``report``.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import discord
from discord.ext import commands

from actors.commands import ReportPlayback, ReportVoiceBack, ReportVoiceLost
from actors.ports import VoiceUnavailable
from adapters.audio_out import discord_frames
from adapters.discord.listening import ListeningPolicy, VoiceReceiver
from adapters.discord.voice_client import ListeningVoiceClient
from adapters.discord.speech_audio import FramePipe, SpeechAudio
from adapters.echo import EchoReference
from adapters.opus_audio import SILENCE_FRAME

log = logging.getLogger("parley.voice")


SOURCE = "discord"
CONNECT_TIMEOUT_S = 20.0
KEEPALIVE_S = 5.0  # how often a silence frame goes out while Parley listens and says nothing
E2EE_WAIT_S = 5.0  # how long a new connection may take to agree DAVE keys before speech goes out
STUCK_AFTER_TIMEOUT_S = 5.0  # discord.py gives up within a second of a reconnect's timeout, or is stuck
UNDECIDED_S = 4.0  # speech paused for someone talking over it resumes by itself if nobody said what it was


def _reconnect_timed_out_at(client: object) -> float:
    return getattr(getattr(client, "_connection", None), "reconnect_timed_out_at", 0.0)


@dataclass
class Queued:
    utterance_id: str
    chunks: Iterator[tuple[bytes, int]]


class DiscordVoice(commands.Cog, name="Voice"):
    """The ``VoiceChannels`` port on discord.py, and the listener for what happens to Parley in voice."""

    def __init__(self, bot: commands.Bot, report: Callable[[object], None], idle_s: float,
                 silence_s: float = 0.8, barge_in: bool = True, reconnect_s: float = CONNECT_TIMEOUT_S + 5,
                 jitter_s: float = 0.06, first_audio: Callable[[str], None] | None = None):
        self.bot = bot
        self.first_audio = first_audio  # told (utterance id) when an answer's first audio goes out
        self.jitter_s = jitter_s  # how long packets behind a gap wait for the missing one
        self.report = report
        self.idle_s = idle_s
        self.silence_s = silence_s
        self.barge_in = barge_in
        self.reconnect_s = reconnect_s
        self.policy = ListeningPolicy()
        self.queues: dict[int, deque[Queued]] = {}
        self.current: dict[int, Queued] = {}
        self.ending: dict[int, str] = {}  # why the current utterance is being stopped
        self.leaving: set[int] = set()  # guilds Parley leaves on purpose (not a kick)
        self.watching: set[int] = set()  # guilds whose dropped voice connection is being waited for
        self.decisions: dict[int, int] = {}  # joins and leaves decided per guild (a rejoin stops at a new one)
        self.last_sound: dict[int, float] = {}
        self.idle_reported: set[int] = set()
        self.askers: OrderedDict[str, str] = OrderedDict()  # message id -> author id, recent ones
        self.echo: dict[int, EchoReference] = {}  # what Parley played in each guild lately
        self.paused: dict[int, tuple[Queued, int]] = {}  # what was paused because someone spoke over it, which pause
        self.pauses = 0
        self._idle_task: asyncio.Task | None = None

    # -- the port, called from actor threads --------------------------------------------------
    def _run(self, coro, timeout: float = CONNECT_TIMEOUT_S + E2EE_WAIT_S + 5):  # noqa: ANN001, ANN202
        if self.bot.loop is None or self.bot.loop.is_closed():
            coro.close()
            raise VoiceUnavailable("Parley is not connected to Discord")
        return asyncio.run_coroutine_threadsafe(coro, self.bot.loop).result(timeout)

    def connect(self, guild_id: str, channel_id: str) -> None:
        self._decided(int(guild_id))
        self._run(self._connect(int(guild_id), int(channel_id)))

    def disconnect(self, guild_id: str) -> None:
        self._decided(int(guild_id))
        self._run(self._disconnect(int(guild_id)))

    def _decided(self, guild_id: int) -> None:
        self.decisions[guild_id] = self.decisions.get(guild_id, 0) + 1

    def busy(self, guild_id: str) -> bool:
        gid = int(guild_id)
        return gid in self.current or bool(self.queues.get(gid))

    def _soon(self, callback: Callable[..., None], *args: object) -> None:
        loop = self.bot.loop
        try:
            loop.call_soon_threadsafe(callback, *args)
        except (AttributeError, RuntimeError):  # shutting down: the loop is gone (discord.py's MISSING) or closed
            log.info("voice in guild %s: not done, Parley is stopping", args[0] if args else "?")

    def enqueue(self, guild_id: str, utterance_id: str, chunks: Iterator) -> None:
        self._soon(self._enqueue, int(guild_id), Queued(utterance_id, chunks))

    def stop(self, guild_id: str) -> None:
        self._soon(self._stop, int(guild_id), "stop", True)

    def skip(self, guild_id: str) -> None:
        self._soon(self._stop, int(guild_id), "skip", False)

    def resume(self, guild_id: str) -> None:
        """Who spoke over Parley did not take the turn (a backchannel): what was paused goes on."""
        self._soon(self._resume, int(guild_id), "backchannel")

    def interrupt(self, guild_id: str) -> None:
        """Who spoke over Parley took the turn: what was paused stops (what waits is still said)."""
        self._soon(self._interrupt, int(guild_id))

    def listening_guild(self, channel_id: str, message_id: str) -> str | None:
        """The guild whose voice channel has both Parley and the person who wrote ``message_id`` in it (an
        utterance's author was heard there)."""
        author = self.askers.get(message_id)
        channel = self.bot.get_channel(int(channel_id))
        guild = getattr(channel, "guild", None)
        client = guild.voice_client if guild is not None else None
        if client is None or not client.is_connected():
            return None
        if author is None:
            return str(guild.id) if message_id.startswith("u") else None  # type: ignore[union-attr]
        return str(guild.id) if int(author) in client.channel.voice_states else None  # type: ignore[union-attr]

    def listen(self, guild_id: str, on: bool, opted_out: frozenset[str]) -> None:
        was = self.policy.listening(guild_id)
        self.policy.set(guild_id, on, opted_out)
        if was != on and self.bot.loop is not None and not self.bot.loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._undeafen(int(guild_id), on), self.bot.loop)

    async def _undeafen(self, guild_id: int, listening: bool) -> None:
        """Deafened while not listening, so that everyone in the channel can see Parley does not hear them."""
        guild = self.bot.get_guild(guild_id)
        client = guild.voice_client if guild is not None else None
        if isinstance(client, discord.VoiceClient) and client.is_connected():
            await guild.change_voice_state(channel=client.channel, self_deaf=not listening)  # type: ignore[union-attr]

    # -- on the event loop ---------------------------------------------------------------------
    async def _connect(self, guild_id: int, channel_id: int) -> None:
        guild = self.bot.get_guild(guild_id)
        channel = guild.get_channel(channel_id) if guild is not None else None
        if not isinstance(channel, (discord.VoiceChannel, discord.StageChannel)):
            raise VoiceUnavailable("that voice channel is gone")
        client = guild.voice_client  # type: ignore[union-attr]
        try:
            if isinstance(client, discord.VoiceClient) and client.is_connected():
                if client.channel.id != channel_id:
                    await client.move_to(channel, timeout=CONNECT_TIMEOUT_S)
            else:
                if client is not None:
                    await client.disconnect(force=True)
                client = await channel.connect(timeout=CONNECT_TIMEOUT_S, reconnect=True, cls=ListeningVoiceClient,
                                               self_deaf=not self.policy.listening(str(guild_id)))
        except RuntimeError as e:  # discord.py: "davey library needed", "PyNaCl library needed"
            raise VoiceUnavailable(f"{e} (install Parley with its voice extra: pip install 'discord.py[voice]')") from e
        except asyncio.TimeoutError as e:
            raise VoiceUnavailable("Discord's voice server did not answer in time (does Parley have the Connect "
                                   "and Speak permissions there?)") from e
        except discord.ClientException as e:
            raise VoiceUnavailable(str(e)) from e
        # Speech goes out only once DAVE has agreed keys: discord.py would send it unencrypted before.
        deadline = time.monotonic() + E2EE_WAIT_S
        while client.voice_privacy_code is None and time.monotonic() < deadline:  # type: ignore[union-attr]
            await asyncio.sleep(0.05)
        if isinstance(client, ListeningVoiceClient) and client.receiver is None:
            self._start_receiving(client, guild)
        self.last_sound[guild_id] = time.monotonic()
        self.idle_reported.discard(guild_id)
        if self._idle_task is None or self._idle_task.done():
            self._idle_task = asyncio.get_running_loop().create_task(self._watch_idle())

    def _start_receiving(self, client: ListeningVoiceClient, guild: discord.Guild) -> None:
        loop = self.bot.loop

        def name(user_id: int) -> str:
            member = guild.get_member(user_id)
            return member.display_name if member is not None else str(user_id)

        def spoken_over() -> bool:  # on the socket reader's thread: whether Parley speaks there now
            if self.barge_in and guild.id in self.current:
                loop.call_soon_threadsafe(self._spoken_over, guild.id)
                return True
            return False

        def stuck() -> None:  # on the socket reader's thread: the session is the loop's
            asyncio.run_coroutine_threadsafe(client._connection.reinit_dave_session(), loop)
        assert self.bot.user is not None
        receiver = VoiceReceiver(guild.id, lambda: client._connection, self.policy, self.report, name,
                                 self.silence_s, self.bot.user.id, spoken_over, stuck, self.jitter_s,
                                 echo=self._echo(guild.id))
        client.start_receiving(receiver)
        loop.create_task(self._keep_route(guild.id, client, receiver))

    async def _keep_route(self, guild_id: int, client: ListeningVoiceClient, receiver: VoiceReceiver) -> None:
        """While listening and silent, a silence frame now and then: Discord's voice server (and any NAT on the
        way) keeps sending to an address that sends something."""
        while client.receiver is receiver:
            if client.is_connected() and self.policy.listening(str(guild_id)) and not client.is_playing():
                try:
                    client.send_audio_packet(SILENCE_FRAME, encode=False)
                except Exception as e:  # noqa: BLE001 - not connected this instant: the next one goes
                    log.debug("keepalive not sent: %r", e)
            await asyncio.sleep(KEEPALIVE_S)

    async def _lost_unless_back(self, guild: discord.Guild, channel_id: int) -> None:
        """A dropped connection is Parley leaving the channel when discord.py gives up on it (kicked: at once), or
        when it is not back within ``reconnect_s``; discord.py goes on reconnecting after that, and a connection
        that comes back later is Parley in the channel again."""
        if guild.id in self.watching:
            return  # each of discord.py's attempts leaves the channel again: one watch is enough
        self.watching.add(guild.id)
        dropped, decisions = guild.voice_client, self.decisions.get(guild.id, 0)
        try:
            deadline, lost = time.monotonic() + self.reconnect_s, False
            while True:
                await asyncio.sleep(0.25)
                client = guild.voice_client
                if client is None:  # discord.py gave up, or Parley was kicked or told to leave
                    break
                if client.is_connected():  # type: ignore[attr-defined]
                    log.info("the voice connection in guild %s was re-established", guild.id)
                    if lost:
                        self._back(guild)
                    return
                if not lost and time.monotonic() >= deadline:
                    lost = True
                    self._report_lost(guild.id, channel_id)
                timed_out_at = _reconnect_timed_out_at(client)
                if timed_out_at and time.monotonic() - timed_out_at >= STUCK_AFTER_TIMEOUT_S:
                    # discord.py neither got in nor gave up: a server that answered after the timeout left it
                    # on a connection its state machine never counts as connected (2.7). Start afresh.
                    log.warning("the voice connection in guild %s is stuck half-made: leaving it", guild.id)
                    await client.disconnect(force=True)
                    break
            if not lost:
                self._report_lost(guild.id, channel_id)
            if _reconnect_timed_out_at(dropped):
                await self._come_back(guild, channel_id, decisions)
        finally:
            self.watching.discard(guild.id)

    async def _come_back(self, guild: discord.Guild, channel_id: int, decisions: int) -> None:
        """discord.py 2.7 leaves the channel by itself when one of its reconnects times out (a voice server away
        for over 20 s), not kicked: Parley joins again, with backoff, for as long as it would have stayed there
        silent (``PARLEY_VOICE_IDLE_S``), unless someone makes it join or leave meanwhile."""
        log.warning("discord.py gave up reconnecting to voice channel %s: Parley joins it again", channel_id)
        deadline, wait = time.monotonic() + self.idle_s, 1.0
        while time.monotonic() < deadline:
            await asyncio.sleep(wait)
            if self.decisions.get(guild.id, 0) != decisions or guild.voice_client is not None:
                return  # someone decided meanwhile (a join, a leave): theirs stands
            try:
                await self._connect(guild.id, channel_id)
            except Exception as e:  # noqa: BLE001 - VoiceUnavailable, or whatever discord.py raised: try again
                log.info("voice channel %s: not back yet (%r)", channel_id, e)
                wait = min(2 * wait, 30.0)
                continue
            self._back(guild)
            return
        log.warning("voice channel %s: could not get back in; stays left", channel_id)

    def _back(self, guild: discord.Guild) -> None:
        channel = getattr(guild.voice_client, "channel", None)
        if channel is not None:
            self.report(ReportVoiceBack(SOURCE, str(guild.id), str(channel.id), channel.name))

    def _report_lost(self, guild_id: int, channel_id: int) -> None:
        log.info("Parley was disconnected from voice channel %s", channel_id)
        self._ending(guild_id, "disconnect")
        self.report(ReportVoiceLost(SOURCE, str(guild_id), "disconnected"))

    def _echo(self, guild_id: int) -> EchoReference:
        """What Parley played in the guild lately: fed by the player, read by the receiver."""
        return self.echo.setdefault(guild_id, EchoReference())

    def _spoken_over(self, guild_id: int) -> None:
        """Someone began to speak while Parley talks (not its own voice coming back): it pauses at once, and the
        listening room (told by the receiver, in order with the speech) says whether they took the turn
        (``interrupt``) or not (``resume``)."""
        guild = self.bot.get_guild(guild_id)
        client = guild.voice_client if guild is not None else None
        item = self.current.get(guild_id)
        if item is None or not isinstance(client, discord.VoiceClient) or not client.is_playing():
            return
        client.pause()
        self.pauses += 1
        self.paused[guild_id] = (item, self.pauses)
        self.report(ReportPlayback(SOURCE, str(guild_id), item.utterance_id, "paused"))
        self.bot.loop.call_later(UNDECIDED_S, self._resume, guild_id, "undecided", self.pauses)

    def _resume(self, guild_id: int, why: str, pause: int | None = None) -> None:
        paused, number = self.paused.get(guild_id, (None, 0))
        if paused is None or (pause is not None and number != pause) or self.current.get(guild_id) is not paused:
            return
        del self.paused[guild_id]
        guild = self.bot.get_guild(guild_id)
        client = guild.voice_client if guild is not None else None
        if isinstance(client, discord.VoiceClient) and client.is_paused():
            client.resume()
            self.report(ReportPlayback(SOURCE, str(guild_id), paused.utterance_id, "resumed", why))

    def _interrupt(self, guild_id: int) -> None:
        if self.paused.pop(guild_id, None) is not None and guild_id in self.current:
            self._stop(guild_id, "barge_in", False)

    async def _disconnect(self, guild_id: int) -> None:
        guild = self.bot.get_guild(guild_id)
        client = guild.voice_client if guild is not None else None
        self._clear(guild_id, "disconnect")
        if client is not None:
            self.leaving.add(guild_id)
            self._ending(guild_id, "disconnect")
            await client.disconnect(force=True)

    def _ending(self, guild_id: int, why: str) -> None:
        """Why what plays now will end, unless a reason is known already. Only while something plays: a reason
        left behind would be the next answer's, one that plays to its end after Parley joins again."""
        if guild_id in self.current:
            self.ending.setdefault(guild_id, why)

    def _enqueue(self, guild_id: int, item: Queued) -> None:
        self.queues.setdefault(guild_id, deque()).append(item)
        if guild_id not in self.current:
            self._play_next(guild_id)

    def _play_next(self, guild_id: int) -> None:
        queue = self.queues.get(guild_id)
        guild = self.bot.get_guild(guild_id)
        client = guild.voice_client if guild is not None else None
        if not queue:
            return
        if not isinstance(client, discord.VoiceClient) or not client.is_connected():
            self._clear(guild_id, "disconnect")
            return
        item = queue.popleft()
        self.current[guild_id] = item
        # Reported before ffmpeg starts reading (and synthesizing): the start is recorded before the synthesis.
        self.report(ReportPlayback(SOURCE, str(guild_id), item.utterance_id, "started"))
        source = SpeechAudio(FramePipe(discord_frames(item.chunks),
                                       lambda e: log.warning("speech stopped early: %s", e),
                                       self._echo(guild_id).played),
                             lambda: self.first_audio(item.utterance_id) if self.first_audio else None)
        loop = self.bot.loop

        def after(error: Exception | None) -> None:
            if error is not None:
                log.warning("playback of %s failed: %r", item.utterance_id, error)
            try:
                loop.call_soon_threadsafe(self._finished, guild_id, item)
            except RuntimeError:  # shutting down: the loop closed first (the log says it was playing)
                log.info("playback of %s ended as Parley stopped", item.utterance_id)

        if client.is_playing():
            # Nothing of Parley's plays here now (its last playback ended, `after` said so), yet discord.py thinks
            # so: its player gave up waiting for a reconnect without ending itself, and would refuse every play.
            log.info("voice in guild %s: clearing a player discord.py left behind", guild_id)
            client.stop()
        try:
            client.play(source, after=after)
        except discord.ClientException as e:  # the connection dropped this instant ("Not connected to voice.")
            log.info("voice in guild %s: %s", guild_id, e)
            source.cleanup()
            del self.current[guild_id]
            self.report(ReportPlayback(SOURCE, str(guild_id), item.utterance_id, "disconnect"))
            self._clear(guild_id, "disconnect")
            return
        self.last_sound[guild_id] = time.monotonic()

    def _finished(self, guild_id: int, item: Queued) -> None:
        if self.current.get(guild_id) is item:
            del self.current[guild_id]
        if self.paused.get(guild_id, (None,))[0] is item:
            del self.paused[guild_id]
        guild = self.bot.get_guild(guild_id)
        client = guild.voice_client if guild is not None else None
        connected = client is not None and client.is_connected()
        outcome = self.ending.pop(guild_id, None) or ("finished" if connected else "disconnect")
        self.last_sound[guild_id] = time.monotonic()
        self.report(ReportPlayback(SOURCE, str(guild_id), item.utterance_id, outcome))
        if connected:
            self._play_next(guild_id)
        else:
            self._clear(guild_id, "disconnect")

    def _stop(self, guild_id: int, why: str, clear: bool) -> None:
        if clear:
            self._clear(guild_id, why)
        guild = self.bot.get_guild(guild_id)
        client = guild.voice_client if guild is not None else None
        if guild_id in self.current and client is not None:
            self.ending[guild_id] = why
            client.stop()  # type: ignore[attr-defined]

    def _clear(self, guild_id: int, why: str) -> None:
        for item in self.queues.pop(guild_id, deque()):
            self.report(ReportPlayback(SOURCE, str(guild_id), item.utterance_id, why))

    async def _watch_idle(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, max(0.2, self.idle_s / 4)))
            now = time.monotonic()
            for client in list(self.bot.voice_clients):
                guild_id = client.guild.id  # type: ignore[attr-defined]
                if (guild_id in self.current or self.queues.get(guild_id) or guild_id in self.idle_reported
                        or now - self.last_sound.get(guild_id, now) < self.idle_s):
                    continue
                self.idle_reported.add(guild_id)
                self.report(ReportVoiceLost(SOURCE, str(guild_id), "idle"))

    # -- what Discord tells -----------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.guild is not None and not message.author.bot:
            self.askers[str(message.id)] = str(message.author.id)
            while len(self.askers) > 10_000:
                self.askers.popitem(last=False)

    @commands.Cog.listener()
    async def on_voice_state_update(self, member: discord.Member, before: discord.VoiceState,
                                    after: discord.VoiceState) -> None:
        if self.bot.user is None or member.id != self.bot.user.id:
            return
        guild_id = member.guild.id
        if after.channel is None and before.channel is not None:
            if guild_id in self.leaving:
                self.leaving.discard(guild_id)
                return
            # discord.py leaves the channel this way when it reconnects a dropped voice connection, too: Parley
            # has left only if the connection is gone for good (kicked: at once) or does not come back in time.
            asyncio.get_running_loop().create_task(self._lost_unless_back(member.guild, before.channel.id))
        elif after.channel is not None and before.channel is not None and after.channel.id != before.channel.id:
            self.report(ReportVoiceLost(SOURCE, str(guild_id), "moved", str(after.channel.id), after.channel.name))
