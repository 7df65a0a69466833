"""Which audio container a file is, read from its first bytes: the allow-list of what Parley decodes.

Uploads are hostile until decoded from our own bytes. ffmpeg left to guess would open a DASH manifest, an
HLS playlist or an ffconcat list and follow what they name (files of the host, URLs); with the demuxer
named here (``-f``) and no protocol but the file descriptor we hand it, it can read nothing but the bytes we
hold. Anything not on the list (playlists, manifests, images, text) is refused before any decoder runs.
"""
from __future__ import annotations

HEAD_BYTES = 64  # enough to tell every container below

# demuxer name (ffmpeg's and PyAV's) -> what people call it, for messages
CONTAINERS = {
    "ogg": "Ogg (Opus, Vorbis)", "matroska": "WebM/Matroska", "mp3": "MP3", "wav": "WAV", "flac": "FLAC",
    "mov": "MP4/M4A", "aac": "AAC (ADTS)", "aiff": "AIFF",
}


def sniff(head: bytes) -> str | None:
    """ffmpeg's demuxer for an audio file starting with ``head``; None when it is none we allow."""
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1aE\xdf\xa3":  # EBML: WebM and Matroska
        return "matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[4:8] == b"ftyp":  # ISO base media: MP4, M4A (external data references stay off: -enable_drefs 0)
        return "mov"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:3] == b"ID3":  # an ID3v2 tag, then MPEG audio
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # an MPEG audio frame sync
        layer = (head[1] >> 1) & 0x3
        if layer == 0 and head[1] & 0xF6 == 0xF0:
            return "aac"  # ADTS
        if layer != 0 and (head[1] >> 3) & 0x3 != 1:  # a layer and an MPEG version that exist
            return "mp3"
    return None


def allowed_names() -> str:
    return ", ".join(CONTAINERS.values())
