"""Discord's voice server, emulated: what discord.py's real voice client needs to speak in a channel.

- A voice websocket over TLS (discord.py always dials ``wss://``; the test trusts a self-signed
  certificate for 127.0.0.1 through ``SSL_CERT_FILE``), with the voice opcodes and the DAVE ones.
- UDP on 127.0.0.1: IP discovery, then RTP encrypted with ``aead_xchacha20_poly1305_rtpsize``.
- DAVE end-to-end encryption: this server is Discord's MLS *external sender* (a P-256 key that signs
  the Add proposals) and one listening member (a ``davey`` session). The bot creates the group, commits
  the listener's Add, and welcomes it; the listener then decrypts what the bot sends.

What arrives is kept per SSRC: transport-decrypted, DAVE-decrypted Opus packets in RTP order, which
``decode_opus`` turns back into PCM with ffmpeg (through an Ogg file written here).
"""
from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import ssl
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import davey
import nacl.bindings
from aiohttp import WSMsgType, web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SILENCE = b"\xf8\xff\xfe"


# -- TLS ------------------------------------------------------------------------------------
def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key under ``folder`` (made once: a bot process trusts the
    file it was started with)."""
    cert_path, key_path = folder / "voice-cert.pem", folder / "voice-key.pem"
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "discord-voice-emulator")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


# -- MLS, as much as an external sender needs (RFC 9420 wire format) -----------------------------
def _varint(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return struct.pack(">H", n | 0x4000)
    return struct.pack(">I", n | 0x80000000)


def _vector(data: bytes) -> bytes:
    return _varint(len(data)) + data


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    kind = data[at] >> 6
    if kind == 0:
        return data[at] & 0x3F, at + 1
    if kind == 1:
        return struct.unpack_from(">H", data, at)[0] & 0x3FFF, at + 2
    return struct.unpack_from(">I", data, at)[0] & 0x3FFFFFFF, at + 4


class ExternalSender:
    """The voice server's MLS identity: it proposes who joins the group."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                         serialization.PublicFormat.UncompressedPoint)

    def package(self) -> bytes:
        """The ExternalSender struct: signature key, then a basic credential."""
        return _vector(self.public) + struct.pack(">H", 1) + _vector(b"\x00")

    def add_proposals(self, channel_id: int, epoch: int, key_package: bytes) -> bytes:
        """The DAVE proposals payload (after its operation type): one signed Add, as a vector."""
        return self._proposal(channel_id, epoch, struct.pack(">H", 1) + key_package)

    def remove_proposals(self, channel_id: int, epoch: int, leaf: int) -> bytes:
        """The same, with one signed Remove of the member at ``leaf``."""
        return self._proposal(channel_id, epoch, struct.pack(">HI", 3, leaf))

    def _proposal(self, channel_id: int, epoch: int, proposal: bytes) -> bytes:
        content = (_vector(struct.pack(">Q", channel_id)) + struct.pack(">Q", epoch)
                   + b"\x02" + struct.pack(">I", 0)  # sender: external, index 0
                   + _vector(b"") + b"\x02" + proposal)  # content type: a proposal
        head = struct.pack(">HH", 1, 1)  # mls10, public_message
        label = _vector(b"MLS 1.0 FramedContentTBS") + _vector(head + content)
        signature = self.key.sign(label, ec.ECDSA(hashes.SHA256()))
        return _vector(head + content + _vector(signature))


def split_commit_welcome(data: bytes) -> tuple[bytes, bytes | None]:
    """The bot sends its commit (an MLSMessage) and the Welcome (cipher suite, secrets, encrypted group
    info) back to back; the Welcome starts where those parse exactly to the end."""
    at = data.find(b"\x00\x02", 4)
    while at > 0:
        try:
            i = at + 2
            for _ in range(2):
                size, i = _read_varint(data, i)
                i += size
            if i == len(data):
                return data[:at], data[at:]
        except (IndexError, struct.error):
            pass
        at = data.find(b"\x00\x02", at + 1)
    return data, None


# -- received audio ---------------------------------------------------------------------------
@dataclass
class Stream:
    """What one SSRC sent: Opus packets by RTP sequence, and how they were protected."""

    packets: dict[int, bytes] = field(default_factory=dict)
    e2ee: int = 0  # DAVE-decrypted
    plain: int = 0  # passed through (silence frames, or before the group was ready)
    rejected: int = 0  # failed transport or DAVE decryption

    def opus(self) -> list[bytes]:
        """Packets in order (sequence numbers wrap at 65,536), trailing silence frames dropped."""
        ordered = [self.packets[s] for s in sorted(self.packets, key=lambda s: (s - min(self.packets)) % 65536)]
        while ordered and ordered[-1] == SILENCE:
            ordered.pop()
        return ordered


def ogg_opus(packets: list[bytes]) -> bytes:
    """An Ogg Opus file of 20 ms stereo packets (RFC 7845), so that ffmpeg can decode them."""
    def crc(data: bytes) -> int:
        value = 0
        for byte in data:
            value ^= byte << 24
            for _ in range(8):
                value = ((value << 1) ^ 0x04C11DB7) if value & 0x80000000 else value << 1
                value &= 0xFFFFFFFF
        return value

    pages: list[bytes] = []

    def page(payload: bytes, granule: int, flags: int, number: int) -> bytes:
        lacing = bytes([255] * (len(payload) // 255) + [len(payload) % 255])
        head = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, 1, number, 0, len(lacing)) + lacing
        raw = head + payload
        return raw[:22] + struct.pack("<I", crc(raw)) + raw[26:]

    pages.append(page(b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 312, 48000, 0, 0), 0, 2, 0))
    pages.append(page(b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0), 0, 0, 1))
    for n, packet in enumerate(packets):
        last = n == len(packets) - 1
        pages.append(page(packet, 960 * (n + 1), 4 if last else 0, n + 2))
    return b"".join(pages)


def decode_opus(packets: list[bytes], ffmpeg: str) -> bytes:
    """48 kHz mono 16-bit PCM of the packets."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "received.ogg"
        path.write_bytes(ogg_opus(packets))
        return subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1",
                               "-ar", "48000", "-"], capture_output=True, check=True, timeout=60).stdout


# -- speech for the bot ----------------------------------------------------------------------
def ogg_packets(ogg: bytes) -> list[bytes]:
    """The Opus packets of an Ogg Opus file (RFC 7845), headers left out: what a Discord client would send."""
    packets, pending, at = [], b"", 0
    while at + 27 <= len(ogg) and ogg[at:at + 4] == b"OggS":
        count = ogg[at + 26]
        lacing = ogg[at + 27:at + 27 + count]
        at += 27 + count
        for size in lacing:
            pending += ogg[at:at + size]
            at += size
            if size < 255:
                packets.append(pending)
                pending = b""
    return [p for p in packets if not p.startswith((b"OpusHead", b"OpusTags"))]


# -- the server -------------------------------------------------------------------------------
class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: VoiceServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) == 74 and data[:2] == b"\x00\x01":  # IP discovery: tell the client its address
            ssrc = data[4:8]
            self.server.client_addr = addr  # where speech for the bot goes
            reply = struct.pack(">HH", 2, 70) + ssrc + addr[0].encode().ljust(64, b"\0") + struct.pack(">H", addr[1])
            assert self.transport is not None
            self.transport.sendto(reply, addr)
            return
        if len(data) > 16 and data[0] >> 6 == 2:
            self.server.rtp_received(data)


class VoiceServer:
    """One voice server for the emulator's guild; the emulator tells it which call each token is for."""

    def __init__(self, folder: Path, listener_id: int) -> None:
        self.cert, self.key = self_signed_certificate(folder)
        self.listener_id = listener_id
        self.external = ExternalSender()
        self.calls: dict[str, dict] = {}  # token -> {user_id, channel_id}
        self.secret = os.urandom(32)
        self.streams: dict[int, Stream] = {}
        self.ssrc_users: dict[int, int] = {}
        self.members: dict[int, davey.DaveSession] = {}  # the call's DAVE members besides the bot, by user id
        self.leaves: dict[int, int] = {}  # their leaf in the MLS tree (the bot, who made the group, is leaf 0)
        self._joining: tuple[int, davey.DaveSession] | None = None
        self._transition = 0
        self.hold_commit_s = 0.0  # how long the bot waits for its own commit's announcement (frames come first)
        self.down_until = 0.0  # a voice server outage: until then (time.monotonic), a new connection is closed at once
        self.slow_until = 0.0  # an overloaded one: until then, an IDENTIFY is answered only then
        self.events: list[str] = []  # what happened on the voice connection, in order
        self.sockets: list[web.WebSocketResponse] = []
        self.port = self.udp_port = 0
        self._ssrc = 1000
        self.loop: asyncio.AbstractEventLoop | None = None
        self.client_addr: tuple[str, int] | None = None  # the bot's UDP address (from its IP discovery)
        self.bot_socket: web.WebSocketResponse | None = None  # the bot's voice websocket, once identified
        self.sent_to_bot = 0  # RTP packets sent to the bot
        self.received_at: list[float] = []  # when each RTP packet of sound from the bot arrived (time.monotonic)
        self.spoke_until = 0.0  # when the last speech frame of the latest ``speak`` left (time.monotonic)
        self.spoke_from = 0.0  # when its first frame left

    @property
    def listener(self) -> davey.DaveSession | None:
        """The first member: it hears what the bot says (and speaks, by default)."""
        return self.members.get(self.listener_id)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        app = web.Application()
        app.router.add_get("/", self._websocket)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        transport, _ = await self.loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=("127.0.0.1", 0))
        self._udp = transport
        self.udp_port = transport.get_extra_info("sockname")[1]

    async def stop(self) -> None:
        await self.close_all(1000)
        self._udp.close()
        await self._runner.cleanup()

    async def close_all(self, code: int) -> None:
        for ws in list(self.sockets):
            await ws.close(code=code)

    def audio(self, user_id: int) -> Stream:
        """Everything ``user_id`` sent, over all its connections."""
        merged = Stream()
        for ssrc, stream in self.streams.items():
            if self.ssrc_users.get(ssrc) == user_id:
                merged.packets.update(stream.packets)
                merged.e2ee += stream.e2ee
                merged.plain += stream.plain
                merged.rejected += stream.rejected
        return merged

    def rtp_received(self, data: bytes) -> None:
        arrived = time.monotonic()
        header, sequence, ssrc = data[:12], struct.unpack_from(">H", data, 2)[0], struct.unpack_from(">I", data, 8)[0]
        stream = self.streams.setdefault(ssrc, Stream())
        nonce = data[-4:] + bytes(20)
        try:
            payload = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(data[12:-4], header, nonce, self.secret)
        except Exception:  # noqa: BLE001 - a packet this key did not seal
            stream.rejected += 1
            return
        if data[0] & 0x20:  # RTP padding comes off before DAVE
            payload = payload[:-payload[-1]]
        user = self.ssrc_users.get(ssrc)
        if payload != SILENCE:
            self.received_at.append(arrived)
        if payload == SILENCE or self.listener is None or not self.listener.ready or user is None:
            stream.plain += 1
            stream.packets[sequence] = payload
            return
        try:
            stream.packets[sequence] = self.listener.decrypt(user, davey.MediaType.audio, payload)
            stream.e2ee += 1
        except Exception:  # noqa: BLE001
            stream.rejected += 1

    async def speak(self, packets: list[bytes], *, user_id: int | None = None, ssrc: int = 4242,
                    announce: bool | int = True, e2ee: bool = True, extension_every: int = 3, padding_every: int = 4,
                    pace_s: float = 0.02, silence_frames: int = 5) -> None:
        """A person in the call speaks ``packets`` (Opus) to the bot as a Discord client would: SPEAKING (op 5)
        first (``announce``: an int sends it only after that many frames, False never), each frame DAVE-encrypted by the listening member (``e2ee``), then
        sealed in RTP with the transport key, with a header extension on every ``extension_every``-th packet
        and RTP padding on every ``padding_every``-th; then a few silence frames (sent in the clear)."""
        from adapters.discord.rtp import XCHACHA, seal_packet

        assert self.client_addr is not None and self.bot_socket is not None, "the bot is not connected to voice"
        user = self.listener_id if user_id is None else user_id
        speaking = json.dumps({"op": 5, "d": {"user_id": str(user), "ssrc": ssrc, "speaking": 1}})
        if announce is True:
            await self.bot_socket.send_str(speaking)
        sequences = self.__dict__.setdefault("_sequences", {})
        sequence = sequences.get(ssrc, 1000 + ssrc % 1000)  # a client's sequence goes on from one speech to the next
        sequences[ssrc] = sequence + len(packets) + silence_frames
        timestamp = 960 * sequence
        frames = [(p, True) for p in packets] + [(SILENCE, False)] * silence_frames
        started = self.loop.time() if self.loop else 0.0
        for n, (packet, encrypt) in enumerate(frames):
            member = self.members.get(user)
            payload = member.encrypt_opus(packet) if encrypt and e2ee and member is not None else packet
            self._counter = getattr(self, "_counter", 0) + 1
            datagram = seal_packet(XCHACHA, self.secret, sequence + n, timestamp + 960 * n, ssrc, payload,
                                   self._counter,
                                   extension=bytes(8) if extension_every and n % extension_every == 1 else b"",
                                   padding=7 if padding_every and n % padding_every == 2 else 0)
            self._udp.sendto(datagram, self.client_addr)
            self.sent_to_bot += 1
            if announce is not True and announce and n + 1 == announce:  # Discord names the SSRC late
                await self.bot_socket.send_str(speaking)
            if n == 0:
                self.spoke_from = time.monotonic()
            if encrypt:
                self.spoke_until = time.monotonic()
            await asyncio.sleep(max(0.0, started + pace_s * (n + 1) - (self.loop.time() if self.loop else 0.0)))

    async def add_member(self, user_id: int) -> None:
        """``user_id`` joins the call: the voice server proposes their Add (the members see the proposal too),
        the bot commits it and the group re-keys."""
        assert self.bot_socket is not None and self.listener is not None
        session = davey.DaveSession(1, user_id, self.listener.channel_id)
        session.set_external_sender(self.external.package())
        proposals = self.external.add_proposals(self.listener.channel_id, self.listener.epoch,
                                                session.get_serialized_key_package())
        for member in self.members.values():
            member.process_proposals(davey.ProposalsOperationType.append, proposals)
        self._joining = (user_id, session)
        await self._send_binary(self.bot_socket, 27, b"\x00" + proposals)

    async def remove_member(self, user_id: int) -> None:
        """``user_id`` leaves the call: CLIENT_DISCONNECT (op 13), then the voice server proposes their Remove,
        the bot commits it and the group re-keys without them."""
        assert self.bot_socket is not None and self.listener is not None
        await self.bot_socket.send_str(json.dumps({"op": 13, "d": {"user_id": str(user_id)}}))
        del self.members[user_id]
        proposals = self.external.remove_proposals(self.listener.channel_id, self.listener.epoch,
                                                   self.leaves.pop(user_id))
        for member in self.members.values():
            member.process_proposals(davey.ProposalsOperationType.append, proposals)
        await self._send_binary(self.bot_socket, 27, b"\x00" + proposals)

    async def downgrade(self) -> None:
        """DAVE off for the call (someone joined without it): a transition to protocol 0, executed once the bot says
        it is ready (op 23)."""
        assert self.bot_socket is not None
        self._transition += 1
        await self.bot_socket.send_str(json.dumps({"op": 21, "d": {"transition_id": self._transition,
                                                                   "protocol_version": 0}}))

    async def send_bad_commit(self) -> None:
        """A commit the bot cannot process (a transition it must recover from: it re-initialises its session)."""
        assert self.bot_socket is not None
        self._transition += 1
        await self._send_binary(self.bot_socket, 29, struct.pack(">H", self._transition) + os.urandom(64))

    def run_soon(self, coro):  # noqa: ANN001, ANN201
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def speak_soon(self, packets: list[bytes], **options: object):  # noqa: ANN201
        """``speak`` on the server's loop, without waiting: the returned future ends when the speech has."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(self.speak(packets, **options), self.loop)  # type: ignore[arg-type]

    async def _send_binary(self, ws: web.WebSocketResponse, op: int, payload: bytes) -> None:
        self._binary_seq = getattr(self, "_binary_seq", 0) + 1
        await ws.send_bytes(struct.pack(">HB", self._binary_seq, op) + payload)

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, compress=True)
        await ws.prepare(request)
        if time.monotonic() < self.down_until:
            self.events.append("refused")
            await ws.close(code=1001, message=b"voice server going away")  # 1001: going away
            return ws
        self.sockets.append(ws)
        await ws.send_str(json.dumps({"op": 8, "d": {"heartbeat_interval": 41250}}))
        call: dict = {}
        async for frame in ws:
            if frame.type == WSMsgType.BINARY:
                await self._dave_from_client(ws, call, frame.data)
                continue
            if frame.type != WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            op, data = message.get("op"), message.get("d")
            if op == 0:  # IDENTIFY
                if time.monotonic() < self.slow_until:
                    self.events.append("slow")
                    await asyncio.sleep(self.slow_until - time.monotonic())
                call = dict(self.calls.get(data.get("token"), {}))
                if not call or str(call["user_id"]) != str(data.get("user_id")):
                    await ws.close(code=4004, message=b"Authentication failed")
                    break
                self._ssrc += 1
                call["ssrc"] = self._ssrc
                self.ssrc_users[self._ssrc] = int(call["user_id"])
                self.events.append("identified")
                self.bot_socket = ws
                await ws.send_str(json.dumps({"op": 2, "d": {
                    "ssrc": self._ssrc, "ip": "127.0.0.1", "port": self.udp_port,
                    "modes": ["aead_xchacha20_poly1305_rtpsize"], "heartbeat_interval": 41250}}))
            elif op == 3:  # HEARTBEAT
                await ws.send_str(json.dumps({"op": 6, "d": data}))
            elif op == 1:  # SELECT_PROTOCOL: every session has a transport key of its own
                self.secret = os.urandom(32)
                await ws.send_str(json.dumps({"op": 4, "d": {
                    "mode": data["data"]["mode"], "secret_key": list(self.secret), "dave_protocol_version": 1}}))
                await self._send_binary(ws, 25, self.external.package())  # MLS_EXTERNAL_SENDER
            elif op == 5:  # SPEAKING
                self.events.append(f"speaking:{data.get('speaking')}")
            elif op == 23:  # DAVE_TRANSITION_READY
                await ws.send_str(json.dumps({"op": 22, "d": {"transition_id": data["transition_id"]}}))
                self.events.append("dave-ready")
        if ws in self.sockets:
            self.sockets.remove(ws)
        return ws

    async def _dave_from_client(self, ws: web.WebSocketResponse, call: dict, data: bytes) -> None:
        op, payload = data[0], data[1:]
        channel_id = int(call["channel_id"])
        if op == 26:  # MLS_KEY_PACKAGE: the bot is alone in a new group (its first, or after a re-init)
            listener = davey.DaveSession(1, self.listener_id, channel_id)
            listener.set_external_sender(self.external.package())
            self.members, self.leaves, self._joining = {}, {}, (self.listener_id, listener)
            proposals = self.external.add_proposals(channel_id, 0, listener.get_serialized_key_package())
            await self._send_binary(ws, 27, b"\x00" + proposals)  # MLS_PROPOSALS, append
        elif op == 28:  # MLS_COMMIT_WELCOME: the members move to the new epoch, the newcomer is welcomed
            commit, welcome = split_commit_welcome(payload)
            for member in self.members.values():
                member.process_commit(commit)
            if welcome is not None and self._joining is not None:
                user, session = self._joining
                session.process_welcome(welcome)
                self.members[user] = session
                self.leaves[user] = min(set(range(1, len(self.leaves) + 2)) - set(self.leaves.values()))
            self._joining = None
            self._transition += 1
            if self.hold_commit_s:  # the members have their keys; the bot gets its commit back only later
                await asyncio.sleep(self.hold_commit_s)
            await self._send_binary(ws, 29, struct.pack(">H", self._transition) + commit)
            self.events.append("dave-commit")
