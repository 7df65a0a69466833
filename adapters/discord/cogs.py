"""discord.py cogs: conversation messages and the hybrid commands, turned into Router commands.

Nothing here calls the LLM or waits on an actor: ``dispatch`` only enqueues.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable

import discord
from discord.ext import commands

from actors.access import QUIET, AccessPolicy, Person, RateLimit
from actors.commands import (ControlListening, ControlVoice, InvokeCommand, ReceiveAudio, ReceiveMessage, RecordCatchUp,
                             RecordConnection)
from adapters.discord.audio_intake import AudioFetcher, audio_attachment
from adapters.discord.addressing import MessageFacts, addressed, is_command
from adapters.discord.catch_up import Anchors, catch_up
from adapters.discord.shards import Shards
from adapters.discord.transport import DiscordTransport
from events.scopes import guild_scope, person_scope
from projections.conversations import Conversations

log = logging.getLogger("parley.discord")
SOURCE = "discord"


def channel_kind(channel: object) -> str:
    if isinstance(channel, (discord.DMChannel, discord.GroupChannel)):
        return "dm"
    if isinstance(channel, discord.Thread):
        return "thread"
    return "guild"


# What Parley does on a server: read and answer messages (also in threads), read what it missed,
# attach files (voice answers, exports), and speak in voice channels.
PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, send_messages_in_threads=True,
                                  read_message_history=True, attach_files=True, connect=True, speak=True)


def invite_url(application_id: int) -> str:
    return discord.utils.oauth_url(application_id, permissions=PERMISSIONS, scopes=("bot", "applications.commands"))


def person_of(author: discord.abc.User, channel: object) -> Person:
    """The facts the access policy needs about who wrote, and where."""
    roles = [r for r in getattr(author, "roles", []) if not r.is_default()]
    guild = getattr(author, "guild", None)
    return Person(
        user_id=str(author.id), role_ids=frozenset(str(r.id) for r in roles),
        role_names=frozenset(r.name for r in roles),
        is_guild_owner=guild is not None and guild.owner_id == author.id,
        manages_guild=guild is not None and bool(getattr(getattr(author, "guild_permissions", None), "manage_guild",
                                                         False)),
        channel_id=str(channel.id),  # type: ignore[attr-defined]
        parent_channel_id=str(channel.parent_id) if isinstance(channel, discord.Thread) else None,
        in_dm=channel_kind(channel) == "dm")


def scope_of(channel: object, author: discord.abc.User) -> str:
    """Whose place this is (``events.scopes``): the channel's guild, else the person's DMs."""
    guild = getattr(channel, "guild", None)
    return guild_scope(guild.id) if guild is not None else person_scope(author.id)


def command_conversation(channel: object) -> str:
    kind = channel_kind(channel)
    return f"discord:{'channel' if kind == 'guild' else kind}:{channel.id}"  # type: ignore[attr-defined]


class ConversationCog(commands.Cog, name="Conversation"):
    def __init__(self, bot: commands.Bot, dispatch: Callable[[object], None], conversations: Conversations,
                 transport: DiscordTransport, listen: frozenset[str], on_ready: Callable[[], None],
                 catch_up_limit: int = 500, access: AccessPolicy = AccessPolicy(),
                 audio: AudioFetcher | None = None, shards: Shards = Shards(), rate: RateLimit | None = None):
        self.bot = bot
        self.access = access
        self.audio = audio
        self.shards = shards
        self.rate = rate
        self.dispatch = dispatch
        self.conversations = conversations
        self.transport = transport
        self.listen = listen
        self._on_ready = on_ready
        self.catch_up_limit = catch_up_limit
        self._anchors: Anchors | None = None

    @commands.Cog.listener()
    async def on_connect(self) -> None:
        """READY arrived (a first IDENTIFY, or a new one without a restart): before any message of this
        session is handled, note what was recorded before it."""
        self._anchors = Anchors(self.conversations.newest_by_channel(SOURCE), self._mark())
        if not self.shards.split:
            self.dispatch(RecordConnection(SOURCE, str(discord.utils.time_snowflake(discord.utils.utcnow()))))

    @commands.Cog.listener()
    async def on_shard_connect(self, shard_id: int) -> None:
        if self.shards.split:  # each shard its own mark (see adapters.discord.shards)
            now = discord.utils.time_snowflake(discord.utils.utcnow())
            self.dispatch(RecordConnection(self.shards.mark_source(SOURCE, shard_id), str(now)))

    def _mark(self) -> str | None:
        if not self.shards.split:
            return self.conversations.mark(SOURCE)
        marks = [m for i in self.shards.ids if (m := self.conversations.mark(self.shards.mark_source(SOURCE, i)))]
        return max(marks, key=int) if marks else None

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        print(f"parley: connected to Discord as {self.bot.user}", file=sys.stderr, flush=True)
        if self.bot.application_id and not getattr(self, "_invited", False):
            self._invited = True
            print(f"parley: invite it to a server with {invite_url(self.bot.application_id)}", file=sys.stderr,
                  flush=True)
        self._on_ready()
        anchors, self._anchors = self._anchors, None
        if anchors is not None:
            await self.catch_up(anchors)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        self.accept(message, show_typing=True)

    def accept(self, message: discord.Message, show_typing: bool) -> bool:
        bot_user = self.bot.user
        if bot_user is None or message.author.bot or is_command(message.content, str(self.bot.command_prefix)):
            return False
        ref_id = str(message.reference.message_id) if message.reference and message.reference.message_id else None
        resolved = message.reference.resolved if message.reference else None
        reply_to_bot = ref_id is not None and (
            (isinstance(resolved, discord.Message) and resolved.author.id == bot_user.id)
            or self._conversation_of(ref_id) is not None)
        facts = MessageFacts(
            message_id=str(message.id), channel_id=str(message.channel.id), channel_kind=channel_kind(message.channel),
            parent_id=str(message.channel.parent_id) if isinstance(message.channel, discord.Thread) else None,
            author_is_bot=message.author.bot, content=message.content,
            mentions_bot=any(u.id == bot_user.id for u in message.mentions), reply_to_id=ref_id,
            reply_to_bot=reply_to_bot)
        target = addressed(facts, str(bot_user.id), self.listen, self._conversation_of)
        if target is None:
            return False
        verdict = self.access.verdict(person_of(message.author, message.channel))
        if verdict == QUIET:
            log.info("ignored message %s from %s (access lists)", message.id, message.author.id)
            return False
        attachment = audio_attachment(message) if self.audio is not None and not verdict else None
        if attachment is not None:
            if self.conversations.conversation_of(SOURCE, str(message.id)) is None:  # not recorded yet
                # Counted here, before anything is downloaded or decoded (its transcript is not counted again).
                verdict = self.rate.verdict(str(message.author.id), message.created_at.timestamp()) if self.rate \
                    else ""
                if verdict == QUIET:
                    log.info("not hearing %s from %s: over the rate limit", message.id, message.author.id)
                    return True
                asyncio.get_running_loop().create_task(
                    self._take_audio(message, attachment, target.conversation_id, target.text, ref_id, verdict))
                if show_typing and not verdict:
                    self.transport.start_typing(message.channel.id, str(message.id))
            return True
        self.dispatch(ReceiveMessage(
            source=SOURCE, conversation_id=target.conversation_id, channel_id=str(message.channel.id),
            message_id=str(message.id), author_id=str(message.author.id), author_name=message.author.display_name,
            scope=scope_of(message.channel, message.author),
            text="" if verdict else target.text, reply_to_message_id=ref_id, refusal=verdict,
            sent_at=message.created_at.timestamp()))
        if show_typing and not verdict:
            self.transport.start_typing(message.channel.id, str(message.id))
        return True

    async def _take_audio(self, message: discord.Message, attachment: discord.Attachment, conversation_id: str,
                          text: str, ref_id: str | None, verdict: str = "") -> None:
        assert self.audio is not None
        try:
            digest, size, refused = ("", attachment.size, "rate_limited") if verdict else \
                await self.audio.fetch(attachment)
        except Exception as e:  # noqa: BLE001  (the CDN failed, the disk is full...): the person is told
            log.warning("could not fetch the audio of message %s: %r", message.id, e)
            digest, size, refused = "", attachment.size, "internal"
        duration = getattr(attachment, "duration", None)
        self.dispatch(ReceiveAudio(
            source=SOURCE, conversation_id=conversation_id, channel_id=str(message.channel.id),
            message_id=str(message.id), author_id=str(message.author.id), author_name=message.author.display_name,
            scope=scope_of(message.channel, message.author),
            audio_hash=digest, content_type=attachment.content_type or "", size_bytes=size,
            declared_duration_s=float(duration) if duration is not None else None, filename=attachment.filename,
            text=text, voice_message=message.flags.voice, reply_to_message_id=ref_id, refused=refused))

    def _conversation_of(self, message_id: str) -> str | None:
        known = self.conversations.conversation_of(SOURCE, message_id)
        if known is None and (question := self.transport.answers(message_id)) is not None:
            known = self.conversations.conversation_of(SOURCE, question)  # a reply to an answer still streaming
        return known

    async def catch_up(self, anchors: Anchors) -> None:
        """Answer what was written while Parley was away (see ``adapters.discord.catch_up``)."""
        async def offer(message: discord.Message) -> bool:
            if is_command(message.content, str(self.bot.command_prefix)):
                await self.bot.process_commands(message)
                return not message.author.bot
            return self.accept(message, show_typing=False)

        report = await catch_up(self.bot, anchors, self.catch_up_limit, offer, self.shards)
        if report.channels_read or report.failures:
            print(f"parley: caught up: read {report.channels_read} channel(s), offered "
                  f"{report.messages_offered} message(s) written while disconnected"
                  + (f", {report.failures} failure(s)" if report.failures else ""), file=sys.stderr, flush=True)
        self.dispatch(RecordCatchUp(SOURCE, report.channels_read, report.messages_offered, report.failures,
                                    tuple(report.channels_at_limit)))


LLM_COMMANDS = frozenset({"test"})  # commands whose work is asking the LLM: counted against the rate limit


class CommandsCog(commands.Cog, name="Commands"):
    def __init__(self, bot: commands.Bot, dispatch: Callable[[object], None], transport: DiscordTransport,
                 access: AccessPolicy = AccessPolicy(), imports: AudioFetcher | None = None,
                 listening: Callable[[str], bool] = lambda guild_id: False, rate: RateLimit | None = None):
        self.bot = bot
        self.rate = rate  # counts the commands that make the LLM work (``LLM_COMMANDS``) like messages
        self.listening = listening  # whether the log says Parley listens in a guild (a join then says so)
        self.imports = imports  # fetches files attached to commands (training examples) into imports/
        self.access = access
        self.dispatch = dispatch
        self.transport = transport
        self._synced = False

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        if self._synced:
            return
        self._synced = True
        try:
            await self.bot.tree.sync()  # registers /hi, /help, /status
        except Exception as e:  # the bot works without slash commands; prefix commands still answer
            log.warning("could not register slash commands (prefix commands still work): %r", e)

    @commands.hybrid_command(name="hi", description="Say hello to Parley")
    async def hi(self, ctx: commands.Context) -> None:
        await self._invoke(ctx, "hi")

    @commands.hybrid_command(name="help", description="What Parley can do")
    async def help(self, ctx: commands.Context) -> None:
        await self._invoke(ctx, "help")

    @commands.hybrid_command(name="status", description="Event store position, actors alive, model in use")
    async def status(self, ctx: commands.Context) -> None:
        await self._invoke(ctx, "status")

    @commands.hybrid_command(name="join", description="Join your voice channel and speak answers there")
    async def join(self, ctx: commands.Context) -> None:
        await self._voice(ctx, "join")

    @commands.hybrid_command(name="leave", description="Leave the voice channel")
    async def leave(self, ctx: commands.Context) -> None:
        await self._voice(ctx, "leave")

    @commands.hybrid_command(name="stop", description="Stop speaking and clear what waits to be said")
    async def stop(self, ctx: commands.Context) -> None:
        await self._voice(ctx, "stop")

    @commands.hybrid_command(name="skip", description="Skip what Parley is saying now")
    async def skip(self, ctx: commands.Context) -> None:
        await self._voice(ctx, "skip")

    @commands.hybrid_command(name="voice", description="Whether answers are spoken in voice here (on or off)")
    async def voice(self, ctx: commands.Context, state: str = "") -> None:
        await self._voice(ctx, state.strip().lower() or "status")

    @commands.hybrid_command(name="listen", description="Listen in voice channels: on, off (admins), me off, me on")
    async def listen(self, ctx: commands.Context, *, state: str = "") -> None:
        guild = ctx.guild
        person = person_of(ctx.author, ctx.channel)
        if guild is None or ctx.author.bot or self.access.verdict(person):
            await self._invoke(ctx, "listen")  # refused, or no voice channels here (a DM)
            return
        message_id = await self._acknowledge(ctx)
        self.dispatch(ControlListening(
            source=SOURCE, conversation_id=command_conversation(ctx.channel), channel_id=str(ctx.channel.id),
            scope=scope_of(ctx.channel, ctx.author),
            message_id=message_id, author_id=str(ctx.author.id), author_name=ctx.author.display_name,
            action=state.strip().lower() or "status", guild_id=str(guild.id), is_admin=self.access.is_admin(person)))

    @commands.Cog.listener()
    async def on_command_error(self, ctx: commands.Context, error: commands.CommandError) -> None:
        if isinstance(error, commands.CommandNotFound) and ctx.invoked_with:
            await self._invoke(ctx, ctx.invoked_with)  # recorded and answered: "I don't know that command"
        else:
            log.warning("command %s failed: %s", ctx.invoked_with, error, exc_info=error)

    async def _voice(self, ctx: commands.Context, action: str) -> None:
        """Voice commands go to the guild's Speaker, with the voice channel the caller is in."""
        guild = ctx.guild
        if guild is None or ctx.author.bot or self.access.verdict(person_of(ctx.author, ctx.channel)):
            await self._invoke(ctx, ctx.command.name if ctx.command else action)  # refused, or no voice here
            return
        message_id = await self._acknowledge(ctx)
        where = getattr(ctx.author, "voice", None)
        channel = where.channel if where is not None else None
        self.dispatch(ControlVoice(
            source=SOURCE, conversation_id=command_conversation(ctx.channel), channel_id=str(ctx.channel.id),
            scope=scope_of(ctx.channel, ctx.author),
            message_id=message_id, author_id=str(ctx.author.id), author_name=ctx.author.display_name,
            action=action, guild_id=str(guild.id), voice_channel_id=str(channel.id) if channel else None,
            voice_channel_name=channel.name if channel else "", listening=self.listening(str(guild.id))))

    async def _acknowledge(self, ctx: commands.Context) -> str:
        """The id a reply answers: the message, or the slash command's interaction (deferred at once)."""
        if ctx.interaction is not None:
            await ctx.defer()  # answer within Discord's 3 seconds; the reply follows up
            self.transport.remember_interaction(str(ctx.interaction.id), ctx.interaction)
            return str(ctx.interaction.id)
        return str(ctx.message.id)

    async def _invoke(self, ctx: commands.Context, name: str, args: str | None = None,
                      attachment: discord.Attachment | None = None, **extra: str) -> None:
        """Record and answer a command. ``args``: the text after the name (None: taken from a prefix
        command's message); ``attachment``: a file for the command, fetched into imports/ (admins only:
        a refused person's file is never downloaded)."""
        if ctx.author.bot:
            return
        person = person_of(ctx.author, ctx.channel)
        verdict = self.access.verdict(person)
        if not verdict and name in LLM_COMMANDS and self.rate is not None:
            verdict = self.rate.verdict(str(ctx.author.id), time.time())
        if verdict == QUIET:
            if ctx.interaction is not None:  # a slash command must be answered; only its user sees this
                await ctx.send("I can't help you here.", ephemeral=True)
            return
        message_id = await self._acknowledge(ctx)
        if args is None:
            args = ctx.message.content.split(maxsplit=1)[1] if ctx.interaction is None and " " in ctx.message.content \
                else ""
        is_admin = self.access.is_admin(person)
        stored: dict[str, str] = {}
        if attachment is not None and is_admin and not verdict:
            stored = await self._fetch(attachment)
        self.dispatch(InvokeCommand(
            source=SOURCE, conversation_id=command_conversation(ctx.channel), channel_id=str(ctx.channel.id),
            scope=scope_of(ctx.channel, ctx.author),
            message_id=message_id, author_id=str(ctx.author.id), author_name=ctx.author.display_name,
            name=name, args=args, refusal=verdict, is_admin=is_admin, is_operator=self.access.is_operator(person),
            **stored, **extra))

    async def _fetch(self, attachment: discord.Attachment) -> dict[str, str]:
        """The attachment in imports/ (by its sha256), or why it is not there."""
        stored = {"attachment_name": attachment.filename[:200]}
        if self.imports is None:
            return stored | {"attachment_refused": "unreadable"}
        try:
            digest, _, refused = await self.imports.fetch(attachment)
        except Exception as e:  # noqa: BLE001  (the CDN failed, the disk is full...): the person is told
            log.warning("could not fetch the attachment %s: %r", attachment.filename, e)
            digest, refused = "", "unreadable"
        return stored | ({"attachment_refused": refused} if refused else {"attachment_hash": digest})
