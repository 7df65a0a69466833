"""Replies out to Discord: typing, streamed drafts (edited at most once per interval), final answers.

Called from actor threads; everything that touches discord.py runs on the bot's event loop
(``run_coroutine_threadsafe`` / ``call_soon_threadsafe``), so the loop never waits on an actor and
actors never touch the loop's objects directly.

Each message sent for a reply carries a nonce derived from the user's message id (and the part
number), with ``enforce_nonce``: a resend after a crash returns the message Discord already has
instead of posting it twice.
"""
from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import discord

from actors.ports import Delivered, DeliveryResult, Draft, NotDelivered, Reply
from adapters.discord.chunking import DISCORD_LIMIT, split_message

log = logging.getLogger("parley.discord")

SAFE_MENTIONS = discord.AllowedMentions(everyone=False, roles=False, users=False, replied_user=True)
TYPING_LIMIT = 120.0  # stop showing typing after this long even if no answer came


def nonce_for(message_id: str, part: int | str) -> str:
    return f"{message_id}:{part}"  # at most 25 characters for Discord snowflakes and < 1000 parts


class DiscordTransport:
    wants_drafts = True

    def __init__(self, bot: discord.Client, edit_interval: float = 1.0, voice_notes: object | None = None,
                 files_root: Path | None = None):
        self.bot = bot
        self.files_root = files_root  # the data dir: replies' attachments (exports, archives) are in it
        self.answer_view: Callable[[], discord.ui.View] | None = None  # buttons under each answer (👍/👎)
        self.choices_view: Callable[[tuple[str, ...]], discord.ui.View | None] | None = None  # a reply's choices
        self.voice_notes = voice_notes  # where voice-message answers are (speech/<hash>.ogg)
        self.edit_interval = edit_interval
        self.progress_interval = 5.0  # a long job's progress message is edited at most this often
        self.loop: asyncio.AbstractEventLoop | None = None
        self._draft_times: dict[str, float] = {}
        self._draft_lock = threading.Lock()
        # Only touched on the loop:
        self._drafts: dict[str, discord.Message] = {}
        self._progress: dict[str, discord.Message] = {}  # "<message id>:<part>" -> the progress message shown
        self._locks: dict[str, asyncio.Lock] = {}
        self._finished: set[str] = set()
        self._typing: dict[str, asyncio.Event] = {}
        self._interactions: dict[str, discord.Interaction] = {}
        self._answering: dict[str, str] = {}  # our message id -> the user message it answers

    def answers(self, message_id: str) -> str | None:
        """The user message that one of our recent messages answers: also for an answer still
        streaming, or one the read models have not caught up with yet."""
        return self._answering.get(message_id)

    def _remember_answer(self, sent_id: str, question_id: str) -> None:
        if len(self._answering) > 10_000:  # the read models know the older ones
            self._answering.clear()
        self._answering[sent_id] = question_id

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    # -- on the loop (called by the cogs) --------------------------------------------------
    def start_typing(self, channel_id: int, message_id: str) -> None:
        stop = self._typing.setdefault(message_id, asyncio.Event())
        asyncio.get_running_loop().create_task(self._show_typing(channel_id, stop))

    def remember_interaction(self, message_id: str, interaction: discord.Interaction) -> None:
        self._interactions[message_id] = interaction

    # -- from any thread (the ReplyTransport port) ------------------------------------------
    def draft(self, draft: Draft) -> None:
        now, key = time.monotonic(), f"{draft.message_id}:{draft.part}"
        # an answer being written is edited every second; a long job's progress every few seconds
        interval = self.progress_interval if draft.part else self.edit_interval
        with self._draft_lock:
            if len(self._draft_times) > 10_000:  # only answers streaming right now need an entry
                self._draft_times.clear()
            if now - self._draft_times.get(key, -interval) < interval and not draft.final:
                return  # Discord rate-limits edits; the next delta or the final answer shows the rest
            self._draft_times[key] = now
        if self.loop is not None and not self.loop.is_closed():
            show = self._show_progress(draft) if draft.part else self._show_draft(draft)
            asyncio.run_coroutine_threadsafe(show, self.loop)

    def deliver(self, reply: Reply, done: Callable[[DeliveryResult], None]) -> None:
        try:
            if self.loop is None or self.loop.is_closed():
                raise RuntimeError("the bot's event loop is not running")
            future = asyncio.run_coroutine_threadsafe(self._deliver(reply), self.loop)
        except RuntimeError:  # shutting down: the reply stays pending and is sent on the next start
            done(NotDelivered("not connected to Discord", permanent=False))
            return

        def settled(f: object) -> None:
            try:
                done(future.result())
            except BaseException as e:  # noqa: BLE001  (cancelled at shutdown, or a bug): retry later
                done(NotDelivered(repr(e), permanent=False))

        future.add_done_callback(settled)

    # -- coroutines --------------------------------------------------------------------------
    async def _deliver_voice(self, reply: Reply) -> DeliveryResult:
        path = self.voice_notes.path(reply.voice_hash) if self.voice_notes is not None else None
        if path is None:
            return NotDelivered(f"the voice-message file {reply.voice_hash} is not in the data dir", permanent=True)
        audio = await asyncio.to_thread(Path(path).read_bytes)
        try:
            try:
                data = await _post_voice_message(self.bot, reply, audio, reference=True)
            except discord.HTTPException as e:
                if isinstance(e, discord.Forbidden) or e.status not in (400, 404) or e.code == UNKNOWN_CHANNEL:
                    raise
                log.warning("the question %s cannot be replied to (HTTP %s, code %s); sending the voice message "
                            "without the reply reference", reply.message_id, e.status, e.code)
                data = await _post_voice_message(self.bot, reply, audio, reference=False)
        except SEND_ERRORS as e:
            return not_delivered(e)
        self._remember_answer(str(data["id"]), reply.message_id)
        return Delivered((str(data["id"]),))


    def _lock(self, message_id: str) -> asyncio.Lock:
        return self._locks.setdefault(message_id, asyncio.Lock())

    async def _show_typing(self, channel_id: int, stop: asyncio.Event) -> None:
        try:
            async with self.bot.get_partial_messageable(channel_id).typing():
                await asyncio.wait_for(stop.wait(), TYPING_LIMIT)
        except (discord.HTTPException, asyncio.TimeoutError, aiohttp.ClientError):
            pass

    def _stop_typing(self, message_id: str) -> None:
        stop = self._typing.pop(message_id, None)
        if stop is not None:
            stop.set()

    async def _show_draft(self, draft: Draft) -> None:
        async with self._lock(draft.message_id):
            if draft.message_id in self._finished:
                return
            self._stop_typing(draft.message_id)
            text = draft.text if len(draft.text) <= DISCORD_LIMIT else draft.text[: DISCORD_LIMIT - 1] + "…"
            try:
                shown = self._drafts.get(draft.message_id)
                if shown is None:
                    channel = self.bot.get_partial_messageable(int(draft.channel_id))
                    shown = self._drafts[draft.message_id] = await _send_as_reply(
                        channel, text, draft.message_id, draft.channel_id, nonce_for(draft.message_id, 0))
                    self._remember_answer(str(shown.id), draft.message_id)
                else:
                    self._drafts[draft.message_id] = await shown.edit(content=text, allowed_mentions=SAFE_MENTIONS)
            except (discord.HTTPException, aiohttp.ClientError, asyncio.TimeoutError) as e:
                log.info("draft for %s not shown: %s", draft.message_id, e)  # the final answer still goes out

    async def _show_progress(self, draft: Draft) -> None:
        """A job's progress: one message in reply to the command that started it, edited in place."""
        key = f"{draft.message_id}:{draft.part}"
        async with self._lock(key):
            try:
                shown = self._progress.get(key)
                if shown is None:
                    channel = self.bot.get_partial_messageable(int(draft.channel_id))
                    shown = await _send_as_reply(channel, draft.text, draft.message_id, draft.channel_id,
                                                 nonce_for(draft.message_id, f"{draft.part}-progress"))
                else:
                    shown = await shown.edit(content=draft.text, allowed_mentions=SAFE_MENTIONS)
                self._progress[key] = shown
            except (discord.HTTPException, aiohttp.ClientError, asyncio.TimeoutError) as e:
                log.info("progress of %s not shown: %s", key, e)  # the job's outcome is still told
            if draft.final:
                self._progress.pop(key, None)
                self._locks.pop(key, None)

    async def _deliver(self, reply: Reply) -> DeliveryResult:
        await self.bot.wait_until_ready()
        if reply.part == "voice":
            return await self._deliver_voice(reply)
        if reply.part == "cut":
            return await self._note_on_answer(reply)
        if reply.part:
            return await self._deliver_later(reply)
        async with self._lock(reply.message_id):
            if len(self._finished) > 10_000:  # only late drafts of recent replies need this guard
                self._finished.clear()
            self._finished.add(reply.message_id)
            self._stop_typing(reply.message_id)
            parts = split_message(reply.text) or ["…"]
            interaction = self._interactions.pop(reply.message_id, None)
            draft = self._drafts.pop(reply.message_id, None)
            channel = self.bot.get_partial_messageable(int(reply.channel_id))
            sent: list[str] = []
            try:
                file = self._file(reply)
                buttons = self.answer_view() if self.answer_view is not None and reply.kind == "ResponseGenerated" \
                    and interaction is None else None
                if reply.choices and self.choices_view is not None:
                    buttons = self.choices_view(reply.choices)
                for i, part in enumerate(parts):
                    extra: dict = {"file": file} if i == 0 and file is not None else {}
                    if buttons is not None and i == len(parts) - 1:
                        extra["view"] = buttons
                    if interaction is not None:
                        message = await interaction.followup.send(part, wait=True, allowed_mentions=SAFE_MENTIONS,
                                                                  **extra)
                    elif i == 0 and draft is not None:
                        message = draft if draft.content == part and not extra else await draft.edit(
                            content=part, allowed_mentions=SAFE_MENTIONS, **extra)
                    elif i == 0:
                        message = await _send_as_reply(channel, part, reply.message_id, reply.channel_id,
                                                       nonce_for(reply.message_id, i), **extra)
                    else:
                        message = await channel.send(part, nonce=nonce_for(reply.message_id, i),
                                                     allowed_mentions=SAFE_MENTIONS, **extra)
                    if message.content != part:  # the nonce found a draft sent before a crash
                        message = await message.edit(content=part, allowed_mentions=SAFE_MENTIONS,
                                                     **{k: v for k, v in extra.items() if k == "view"})
                    sent.append(str(message.id))
                    self._remember_answer(str(message.id), reply.message_id)
            except SEND_ERRORS as e:
                return not_delivered(e)
            finally:
                self._locks.pop(reply.message_id, None)
            return Delivered(tuple(sent))


    def _file(self, reply: Reply) -> discord.File | None:
        """The reply's attachment (a file the Trainer wrote in the data dir), when it can be sent."""
        if not reply.attachment or self.files_root is None:
            return None
        path = Path(self.files_root) / reply.attachment
        if not path.is_file() or path.stat().st_size > ATTACHMENT_LIMIT:
            log.warning("not attaching %s (missing, or larger than Discord accepts)", reply.attachment)
            return None
        return discord.File(path, filename=path.name)

    async def _note_on_answer(self, reply: Reply) -> DeliveryResult:
        """A note about the written answer (it was cut off aloud), added to that answer's last message; a reply of
        its own when that message is not known here (sent before a restart) or has no room left."""
        ours = [sent for sent, question in self._answering.items() if question == reply.message_id]
        if ours:
            channel = self.bot.get_partial_messageable(int(reply.channel_id))
            try:
                message = await channel.fetch_message(int(ours[-1]))
                if len(message.content) + 2 + len(reply.text) <= DISCORD_LIMIT:
                    await message.edit(content=f"{message.content}\n\n{reply.text}", allowed_mentions=SAFE_MENTIONS)
                    return Delivered((str(message.id),))
            except SEND_ERRORS as e:
                log.info("could not add the note to %s (%s): sending it as a reply", ours[-1], e)
        return await self._deliver_later(reply)

    async def _deliver_later(self, reply: Reply) -> DeliveryResult:
        """A second reply to a message, told later (a fine-tuning job's outcome): a message of its own
        in the channel, after the interaction that started it may have expired."""
        channel = self.bot.get_partial_messageable(int(reply.channel_id))
        try:
            message = await _send_as_reply(channel, split_message(reply.text)[0] if reply.text else "…",
                                           reply.message_id, reply.channel_id, nonce_for(reply.message_id, reply.part))
        except SEND_ERRORS as e:
            return not_delivered(e)
        return Delivered((str(message.id),))


UNKNOWN_CHANNEL = 10003  # Discord's error code when the channel itself is gone
SEND_ERRORS = (discord.HTTPException, aiohttp.ClientError, asyncio.TimeoutError, OSError)


def not_delivered(e: BaseException) -> NotDelivered:
    """Whether retrying can help: not when the channel refuses (403, gone) or the request is wrong (4xx
    but 429); yes after 429, 5xx and network failures."""
    if isinstance(e, (discord.Forbidden, discord.NotFound)):
        return NotDelivered(f"{type(e).__name__}: {e}", permanent=True)
    if isinstance(e, discord.HTTPException):
        return NotDelivered(f"HTTP {e.status}: {e}", permanent=400 <= e.status < 500 and e.status != 429)
    return NotDelivered(repr(e), permanent=False)
ATTACHMENT_LIMIT = 10 * 1024 * 1024  # what Discord accepts from a bot on any server


async def _send_as_reply(channel: discord.PartialMessageable, text: str, question_id: str, channel_id: str,
                         nonce: str, **extra: object) -> discord.Message:
    """Send ``text`` as a reply to the question; if the question is gone (deleted meanwhile, and the
    server does not honour ``fail_if_not_exists=False``), send it without the reference. Only the
    channel refusing (403, or the channel unknown) is final."""
    try:
        return await channel.send(text, reference=_reference(question_id, channel_id), nonce=nonce,
                                  allowed_mentions=SAFE_MENTIONS, **extra)  # type: ignore[arg-type]
    except discord.HTTPException as e:
        if isinstance(e, discord.Forbidden) or e.status not in (400, 404) or e.code == UNKNOWN_CHANNEL:
            raise
        log.warning("the question %s cannot be replied to (HTTP %s, code %s: %s); sending the answer "
                    "without the reply reference", question_id, e.status, e.code, e.text)
        file = extra.get("file")
        if isinstance(file, discord.File):
            file.reset()  # the failed send read it
        return await channel.send(text, nonce=nonce, allowed_mentions=SAFE_MENTIONS, **extra)  # type: ignore[arg-type]


VOICE_MESSAGE_FLAG = 1 << 13


async def _post_voice_message(bot: discord.Client, reply: Reply, audio: bytes, reference: bool) -> dict:
    """A voice message: discord.py has no call for one, so its own HTTP client posts the multipart form
    (payload_json with the flag and the attachment's duration and waveform, then the Ogg file)."""
    payload: dict = {"flags": VOICE_MESSAGE_FLAG, "nonce": nonce_for(reply.message_id, "v"), "enforce_nonce": True,
                     "allowed_mentions": SAFE_MENTIONS.to_dict(),
                     "attachments": [{"id": 0, "filename": "voice-message.ogg", "duration_secs": reply.duration_s,
                                      "waveform": reply.waveform}]}
    if reference:
        payload["message_reference"] = {"message_id": reply.message_id, "channel_id": reply.channel_id,
                                        "fail_if_not_exists": False}
    file = discord.File(io.BytesIO(audio), filename="voice-message.ogg")
    form = [{"name": "payload_json", "value": discord.utils._to_json(payload)},
            {"name": "files[0]", "value": file.fp, "filename": file.filename, "content_type": "audio/ogg"}]
    route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=int(reply.channel_id))
    return await bot.http.request(route, form=form, files=[file])


def _reference(message_id: str, channel_id: str) -> discord.MessageReference | None:
    """The question to reply to; None for what was said aloud in a voice channel (an utterance, no message)."""
    if not message_id.isdigit():
        return None
    return discord.MessageReference(message_id=int(message_id), channel_id=int(channel_id), fail_if_not_exists=False)
