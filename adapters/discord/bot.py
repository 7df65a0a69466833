"""Running the Discord bot: endpoints from config, the bot, its cogs and its transport."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import Protocol

import aiohttp
import discord
import yarl
from discord.ext import commands

from actors.access import AccessPolicy
from actors.router import Router
from events import RecordedEvent
from adapters.audio_files import AudioStore
from adapters.config import Settings, prepare_data_dir
from adapters.discord.audio_intake import AudioFetcher
from adapters.discord.cogs import SOURCE, CommandsCog, ConversationCog
from adapters.discord.feedback import FeedbackCog, choices_view, feedback_view
from adapters.discord.interactions import fill_interaction_channels
from adapters.discord.learning_cog import LearningCog
from adapters.discord.reconnect import EXIT_TEMPFAIL, CappedBackoff, cap_reconnect_waits
from adapters.discord.shards import Shards
from adapters.discord.transport import DiscordTransport
from adapters.discord.voice import DiscordVoice
from projections.conversations import Conversations

log = logging.getLogger("parley.discord")


class System(Protocol):
    """What the bot needs of the running system that ``run.build`` returns."""

    router: Router
    conversations: Conversations

    def resume(self, source: str, owns: Callable[[str, str], bool] | None = None) -> None: ...

    def rejoin_voice(self, source: str, owns_guild: Callable[[str], bool] | None = None) -> None: ...

    def finish(self, owns: Callable[[str, str], bool] | None = None) -> None: ...

    def stop(self) -> None: ...


def access_policy(settings: Settings) -> AccessPolicy:
    """The policy's fields are settings of the same names."""
    return AccessPolicy(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(AccessPolicy)})


def configure_endpoints(settings: Settings) -> None:
    """Point discord.py at a Discord-compatible server (self-hosted, or a test emulator), and cap its waits."""
    cap_reconnect_waits(settings.reconnect_max_s)
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def make_bot(settings: Settings) -> commands.Bot:
    intents = discord.Intents.default()
    intents.message_content = True  # privileged: enable it for the bot in the developer portal
    # Only the "!" prefix, not mentions: "@Parley help me with X" is a question, not the help command.
    options = dict(command_prefix=settings.command_prefix, intents=intents, help_command=None)
    if settings.shard_count:  # one bot split across processes: this one runs shard_ids of shard_count
        bot: commands.Bot = commands.AutoShardedBot(shard_count=settings.shard_count,
                                                    shard_ids=list(settings.shard_ids) or None, **options)
    else:
        bot = commands.Bot(**options)
    fill_interaction_channels(bot)  # before the guard: a payload without its channel is mended, then parsed
    guard_parsers(bot)
    return bot


def guard_parsers(bot: discord.Client) -> None:
    """A gateway event discord.py cannot parse (a field null where it expects a value, as servers with
    bugs send) raises out of the gateway loop and would end the process. Each parser is wrapped so a bad
    event costs only itself: one log line, and the session goes on."""
    parsers: dict[str, Callable[[object], None]] = bot._connection.parsers  # the dict the gateway reads

    def guarded(name: str, parse: Callable[[object], None]) -> Callable[[object], None]:
        def parse_or_skip(data: object) -> None:
            try:
                parse(data)
            except Exception as e:  # noqa: BLE001
                log.warning("skipped a malformed %s gateway event: %r", name, e)
        return parse_or_skip

    for name, parse in list(parsers.items()):
        parsers[name] = guarded(name, parse)


class CannotConnect(Exception):
    """The first connection failed inside discord.py (not a refused token, not the network)."""


class Unreachable(Exception):
    """Discord could not be reached for ``PARLEY_CONNECT_GIVE_UP_S``: the network (or Discord) is not there yet."""


def _network_error(e: BaseException) -> bool:
    """An error a wait can fix: no network or DNS yet, a refused port, a timeout, Discord answering 5xx."""
    if isinstance(e, discord.HTTPException):
        return e.status >= 500 or e.status == 429
    return isinstance(e, (aiohttp.ClientError, OSError, asyncio.TimeoutError, discord.GatewayNotFound))


async def first_login(bot: commands.Bot, token: str, give_up_s: float) -> None:
    """Log in, waiting for the network as long as ``give_up_s``: a line per attempt, waits capped and jittered."""
    backoff, began, attempt = CappedBackoff(), time.monotonic(), 0
    while True:
        try:
            await bot.login(token)
            return
        except discord.LoginFailure:
            raise
        except Exception as e:  # noqa: BLE001  (the network ones are waited out; any other is raised)
            if not _network_error(e):
                raise
            attempt += 1
            wait = backoff.delay()
            reason = f"{type(e).__name__}: {str(e)[:200]}"
            if time.monotonic() - began + wait > give_up_s:
                raise Unreachable(f"{reason}; gave up after {attempt} attempt(s) in {time.monotonic() - began:.0f}s "
                                  f"(PARLEY_CONNECT_GIVE_UP_S)") from e
            log.warning("cannot reach Discord at %s (%s); attempt %d, trying again in %.1fs",
                        discord.http.Route.BASE, reason, attempt, wait)
            await asyncio.sleep(wait)


async def connect_with_backoff(bot: commands.Bot, token: str, give_up_s: float = 300.0) -> None:
    """Log in (waiting for the network), then stay connected. discord.py reconnects by itself after the errors it
    expects (waits capped: ``adapters.discord.reconnect``); any other error is logged in one line and the bot
    reconnects with the same waits. Only a refused token (or a missing privileged intent) ends it, and a first
    connection that never succeeded."""
    await first_login(bot, token, give_up_s)
    backoff = CappedBackoff()
    while not bot.is_closed():
        try:
            await bot.connect(reconnect=True)
            return  # closed on purpose
        except (discord.LoginFailure, discord.PrivilegedIntentsRequired):
            raise
        except Exception as e:  # noqa: BLE001
            if bot.user is None or not getattr(bot, "_parley_connected", False):
                raise CannotConnect(repr(e)) from e
            delay = backoff.delay()
            log.warning("Discord connection failed (%s: %s); reconnecting in %.1fs", type(e).__name__,
                        str(e)[:200], delay)
            await asyncio.sleep(delay)


def run_bot(settings: Settings, build: Callable[..., System]) -> int:
    configure_endpoints(settings)
    bot = make_bot(settings)
    transport = DiscordTransport(bot, settings.stream_edit_interval, files_root=prepare_data_dir(settings.data_dir))
    voice = DiscordVoice(bot, lambda command: system.router.dispatch(command), settings.voice_idle_s,
                         settings.listen_silence_ms / 1000, settings.barge_in, settings.voice_reconnect_s,
                         settings.listen_jitter_ms / 1000,
                         lambda turn: system.turn_times.mark(turn, "first_audio") if hasattr(system, "turn_times") else None)
    system = build(settings, {SOURCE: transport}, voices={SOURCE: voice})
    transport.voice_notes = getattr(system, "voice_notes", None)
    access = access_policy(settings)
    audio = AudioFetcher(system.audio, settings.max_audio_seconds) if getattr(system, "audio", None) is not None \
        else None
    shards = Shards.of(settings)
    owns = shards.owner(bot) if shards.split else None

    def ready() -> None:
        if owns is not None and not getattr(bot, "_parley_finished", False):
            bot._parley_finished = True  # type: ignore[attr-defined]
            system.finish(owns)  # once this shard knows its guilds: its channels' unfinished work
        system.resume(SOURCE, owns)

    def thinking(heard: RecordedEvent) -> None:  # an utterance heard: typing where its answer will be written
        try:
            bot.loop.call_soon_threadsafe(transport.start_typing, int(heard.event.channel_id), heard.event.message_id)
        except (AttributeError, RuntimeError, ValueError):  # not connected yet, or stopping: nobody to show it to
            pass

    system.router.subscribe(thinking, "UtteranceHeard")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        transport.attach(loop)
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, lambda: loop.create_task(bot.close()))
            except (NotImplementedError, RuntimeError):
                pass
        async with bot:
            await bot.add_cog(ConversationCog(bot, system.router.dispatch, system.conversations, transport,
                                              settings.channels, ready, settings.catch_up_limit, access, audio,
                                              shards, getattr(system, "rate", None)))
            commands_cog = CommandsCog(bot, system.router.dispatch, transport, access, AudioFetcher(AudioStore(
                prepare_data_dir(settings.data_dir), settings.max_import_mb * 1024 * 1024, folder="imports")),
                voice.policy.listening, getattr(system, "rate", None))
            await bot.add_cog(commands_cog)
            await bot.add_cog(LearningCog(commands_cog))
            await bot.add_cog(FeedbackCog(bot, system.router.dispatch, transport, commands_cog, access))
            transport.answer_view, transport.choices_view = feedback_view, choices_view
            await bot.add_cog(voice)

            @bot.listen("on_connect")
            async def connected() -> None:
                bot._parley_connected = True  # type: ignore[attr-defined]

            @bot.listen("on_ready")
            async def rejoin() -> None:
                if not getattr(bot, "_parley_rejoined", False):  # once: later READYs keep their connections
                    bot._parley_rejoined = True  # type: ignore[attr-defined]
                    system.rejoin_voice(SOURCE, shards.owns_guild if shards.split else None)

            await connect_with_backoff(bot, settings.discord_token or "", settings.connect_give_up_s)

    try:
        asyncio.run(main())
        return 0
    except discord.LoginFailure:
        print("parley: Discord refused DISCORD_TOKEN (login failed): check the bot token", file=sys.stderr)
        return 2
    except Unreachable as e:  # the network is not there yet: exit with a code an init system restarts
        print(f"parley: cannot reach Discord at {discord.http.Route.BASE}: {e}", file=sys.stderr)
        return EXIT_TEMPFAIL
    except (aiohttp.ClientError, OSError, CannotConnect, discord.GatewayNotFound, discord.ConnectionClosed,
            discord.HTTPException) as e:  # Discord answered, wrongly: DISCORD_API_BASE / _GATEWAY_URL, or a 4xx
        print(f"parley: cannot reach Discord at {discord.http.Route.BASE}: it answered what a bot cannot use "
              f"({e}): check DISCORD_API_BASE and DISCORD_GATEWAY_URL", file=sys.stderr)
        return 2
    except discord.PrivilegedIntentsRequired:
        print("parley: enable the Message Content intent for the bot in the Discord developer portal",
              file=sys.stderr)
        return 2
    finally:
        system.stop()
