"""Audio on Discord messages: which attachments are audio, and fetching one into the audio store.

Voice messages (flag ``1 << 13``) are an ``.ogg`` Opus attachment with ``duration_secs`` and a
``waveform``. Other audio files count by extension or by an ``audio/*`` content type. The size is
checked against the cap before downloading (as Discord declares it) and again while downloading (a
server may lie); the file is stored under its sha256 without blocking the event loop on the disk.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import PurePosixPath

import aiohttp
import discord

from actors.ports import DISK_FULL, disk_full
from adapters.audio_files import AudioStore, TooLarge

log = logging.getLogger("parley.discord")
AUDIO_EXTENSIONS = {".ogg", ".oga", ".opus", ".mp3", ".wav", ".m4a", ".webm", ".flac"}
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=300, sock_connect=15, sock_read=60)


def audio_attachment(message: discord.Message) -> discord.Attachment | None:
    for attachment in message.attachments:
        extension = PurePosixPath(attachment.filename.lower()).suffix
        content_type = (attachment.content_type or "").lower()
        if extension in AUDIO_EXTENSIONS or content_type.startswith("audio/"):
            return attachment
    return None


class AudioFetcher:
    def __init__(self, store: AudioStore, max_seconds: float = 0):
        self.store = store
        self.max_seconds = max_seconds  # 0: no cap on the duration a voice message declares
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, attachment: discord.Attachment) -> tuple[str, int, str]:
        """(sha256, size, refusal): refusal is "too_large" when the declared or downloaded size is over the cap,
        "too_long" when the duration a voice message declares is (neither is downloaded), "no_space" when the
        data dir's disk is full (nothing is kept either way: the half-written file is removed)."""
        if attachment.size > self.store.max_bytes:
            return "", attachment.size, "too_large"
        declared = getattr(attachment, "duration", None)
        if self.max_seconds and declared is not None and float(declared) > self.max_seconds:
            return "", attachment.size, "too_long"
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=DOWNLOAD_TIMEOUT)
        try:
            digest, size = await self.store.save_async(self._chunks(attachment.url))
            return digest, size, ""
        except TooLarge:
            return "", attachment.size, "too_large"
        except OSError as e:
            if not disk_full(e):
                raise
            log.error("no room to store %s in %s: %s", attachment.filename, self.store.folder, e)
            return "", attachment.size, DISK_FULL

    async def _chunks(self, url: str) -> AsyncIterator[bytes]:
        assert self._session is not None
        async with self._session.get(url) as response:
            response.raise_for_status()
            async for chunk in response.content.iter_chunked(64 * 1024):
                yield chunk

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

