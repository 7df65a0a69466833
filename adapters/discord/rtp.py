"""Discord's voice packets as they arrive over UDP: RTP (RFC 3550) sealed with the negotiated ``*_rtpsize``
transport mode, pure functions with no socket and no state.

In the ``rtpsize`` modes the fixed header, the CSRCs and the 4-byte preamble of a header extension are the
additional data (sent in clear); the extension's body, the payload and its RTP padding are sealed; the last
4 bytes of the datagram are the nonce's counter. What comes out of ``open_packet`` is the payload with the
extension body and the padding taken off: the DAVE frame (or a plain Opus frame) for that SSRC.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

OPUS_PAYLOAD_TYPE = 0x78  # what Discord's audio uses; video and other payloads are not for the ears
XCHACHA = "aead_xchacha20_poly1305_rtpsize"
AES_GCM = "aead_aes256_gcm_rtpsize"
MODES = (XCHACHA, AES_GCM)


class BadPacket(ValueError):
    """Not an RTP audio packet this connection can open; ``reason`` says which way."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RtpPacket:
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes  # the DAVE (or plain Opus) frame


def is_rtcp(datagram: bytes) -> bool:
    """RTCP (sender and receiver reports, payload types 200-204 with the marker bit set): not audio."""
    return len(datagram) >= 2 and 200 <= datagram[1] <= 204


def open_packet(datagram: bytes, mode: str, key: bytes) -> RtpPacket:
    """The audio frame in ``datagram``, transport-decrypted with ``key`` in ``mode``. Raises ``BadPacket``
    ("short", "not_rtp", "rtcp", "not_audio", "mode", "decrypt", "padding") for anything else."""
    if len(datagram) >= 2 and datagram[0] >> 6 == 2 and is_rtcp(datagram):
        raise BadPacket("rtcp")  # any length: a receiver report with no blocks is 8 bytes
    if len(datagram) < 12 + 4:
        raise BadPacket("short")
    first = datagram[0]
    if first >> 6 != 2:
        raise BadPacket("not_rtp")
    if datagram[1] & 0x7F != OPUS_PAYLOAD_TYPE:
        raise BadPacket("not_audio")
    padded, extended, csrcs = bool(first & 0x20), bool(first & 0x10), first & 0x0F
    sequence, timestamp, ssrc = struct.unpack_from(">HII", datagram, 2)
    header_size = 12 + 4 * csrcs + (4 if extended else 0)
    if len(datagram) < header_size + 16 + 4:
        raise BadPacket("short")
    header, sealed, counter = datagram[:header_size], datagram[header_size:-4], datagram[-4:]
    plain = _open(mode, key, header, sealed, counter)
    if extended:  # the extension's body (its length, in 32-bit words, is in the clear preamble)
        words = struct.unpack_from(">H", header, header_size - 2)[0]
        if 4 * words > len(plain):
            raise BadPacket("padding")
        plain = plain[4 * words:]
    if padded:  # RTP padding: its last byte counts the padding bytes, itself included
        if not plain or not 1 <= plain[-1] <= len(plain):
            raise BadPacket("padding")
        plain = plain[:-plain[-1]]
    return RtpPacket(sequence, timestamp, ssrc, plain)


def _open(mode: str, key: bytes, header: bytes, sealed: bytes, counter: bytes) -> bytes:
    try:
        if mode == XCHACHA:
            return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(sealed, header, counter + bytes(20), key)
        if mode == AES_GCM:
            return AESGCM(key).decrypt(counter + bytes(8), sealed, header)
    except (nacl.exceptions.CryptoError, InvalidTag, ValueError, TypeError):
        raise BadPacket("decrypt") from None
    raise BadPacket("mode")


def seal_packet(mode: str, key: bytes, sequence: int, timestamp: int, ssrc: int, payload: bytes, counter: int,
                *, extension: bytes = b"", padding: int = 0) -> bytes:
    """The datagram ``open_packet`` opens: what a Discord client sends (used by the tests' voice server and
    the benchmark; Parley itself only speaks through discord.py). ``extension``: a body of whole 32-bit words;
    ``padding``: 0, or 1-255 padding bytes."""
    assert len(extension) % 4 == 0 and 0 <= padding <= 255
    first = 0x80 | (0x20 if padding else 0) | (0x10 if extension else 0)
    header = struct.pack(">BBHII", first, OPUS_PAYLOAD_TYPE, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
    if extension:
        header += struct.pack(">HH", 0xBEDE, len(extension) // 4)
    plain = extension + payload + (bytes(padding - 1) + bytes([padding]) if padding else b"")
    nonce = struct.pack(">I", counter & 0xFFFFFFFF)
    if mode == XCHACHA:
        sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, header, nonce + bytes(20), key)
    elif mode == AES_GCM:
        sealed = AESGCM(key).encrypt(nonce + bytes(8), plain, header)
    else:
        raise ValueError(f"unknown mode {mode}")
    return header + sealed + nonce
