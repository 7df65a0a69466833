"""Running the Discord bot: endpoints from config, the bot, its cogs and its transport."""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from typing import Protocol

import aiohttp
import discord
import yarl
from discord.ext import commands

from actors.ports import ReplyTransport
from actors.router import Router
from adapters.config import Settings
from adapters.discord.cogs import SOURCE, CommandsCog, ConversationCog
from adapters.discord.transport import DiscordTransport
from projections.conversations import Conversations

log = logging.getLogger("parley.discord")


class System(Protocol):
    """What the bot needs of the running system that ``run.build`` returns."""

    router: Router
    conversations: Conversations

    def resume(self, source: str) -> None: ...

    def stop(self) -> None: ...


def configure_endpoints(settings: Settings) -> None:
    """Point discord.py at a Discord-compatible server (self-hosted, or a test emulator)."""
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def make_bot(settings: Settings) -> commands.Bot:
    intents = discord.Intents.default()
    intents.message_content = True  # privileged: enable it for the bot in the developer portal
    # Only the "!" prefix, not mentions: "@Parley help me with X" is a question, not the help command.
    return commands.Bot(command_prefix=settings.command_prefix, intents=intents, help_command=None)


def run_bot(settings: Settings, build: Callable[[Settings, dict[str, ReplyTransport]], System]) -> int:
    configure_endpoints(settings)
    bot = make_bot(settings)
    transport = DiscordTransport(bot, settings.stream_edit_interval)
    system = build(settings, {SOURCE: transport})

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
                                              settings.channels, lambda: system.resume(SOURCE),
                                              settings.catch_up_limit))
            await bot.add_cog(CommandsCog(bot, system.router.dispatch, transport))
            await bot.start(settings.discord_token or "")

    try:
        asyncio.run(main())
        return 0
    except discord.LoginFailure:
        print("parley: Discord refused DISCORD_TOKEN (login failed): check the bot token", file=sys.stderr)
        return 2
    except (aiohttp.ClientError, OSError) as e:
        print(f"parley: cannot reach Discord at {discord.http.Route.BASE}: {e}", file=sys.stderr)
        return 2
    except discord.PrivilegedIntentsRequired:
        print("parley: enable the Message Content intent for the bot in the Discord developer portal",
              file=sys.stderr)
        return 2
    finally:
        system.stop()
