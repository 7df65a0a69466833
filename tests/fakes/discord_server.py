"""A Discord API emulator: enough REST and gateway websocket for the real discord.py client.

Tests start it on 127.0.0.1 and point Parley at it with DISCORD_API_BASE and DISCORD_GATEWAY_URL.
It keeps guilds, channels (text, thread, DM) and messages; speaks to sharded bots as Discord does (an
``IDENTIFY`` with ``shard: [id, count]`` gets the guilds with ``(guild_id >> 22) % count == id``, and
guild events go to that shard only, DMs to shard 0); honours message ``nonce`` with
``enforce_nonce`` as Discord does (a second send returns the first message); records typing and
edits; and lets a test play users who write messages, over the gateway while the bot is connected,
or into the history while it is not.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_voice import VoiceServer
from tests.fakes.serving import ServedApp

DISCORD_EPOCH_MS = 1420070400000
BOT_TOKEN = "emulated-bot-token"


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py parses a body as JSON only for exactly "application/json" (no charset).
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"code": code, "message": message}, status)


class DiscordEmulator:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.bot = self.user("Parley", bot=True)
        self.app_id = self.bot["id"]
        self.guilds: dict[str, str] = {}  # guild id -> name
        self.guild_owners: dict[str, dict] = {}  # guild id -> its owner, when not ``owner``
        self.guild_id = self.add_guild("Emulated Guild")
        self.owner = self.user("Owner")
        self.channels: dict[str, dict] = {}
        self.messages: dict[str, list[dict]] = defaultdict(list)
        self.typing: list[str] = []
        self.edits: dict[str, int] = defaultdict(int)
        self.posts: list[dict] = []  # every message-create request body the bot sent
        self.edit_bodies: list[dict] = []  # every message-edit request body the bot sent
        self.fail_next_posts: list[int | str] = []  # scripted HTTP statuses for the bot's next sends ("429-global" too)
        self.lose_next_responses = 0  # accept the bot's next sends but drop the connection before answering
        self.hang_next_responses = 0  # accept the bot's next sends and never answer (the bot dies waiting)
        self.hang_next_voice_messages = 0  # the same, for the bot's next voice messages only
        self._unhang: asyncio.Event | None = None
        self.strict_references = False  # like Spacebar: a reply to a deleted message is refused (400)
        self.broken_command_sync = False  # answer the slash-command sync with a body discord.py cannot read
        self.malformed_hello = False  # open the gateway with a HELLO discord.py cannot read
        self.unavailable_logins = 0  # the next logins (GET /users/@me) answer 503, as a server still starting
        self.refused_gateways = 0  # the next gateway connections are refused (503 at the handshake)
        self.interactions_without_channel = False  # send interactions with ``channel_id`` only, as Discord may
        self.failing_callbacks = 0  # the next interaction acknowledgements fail (404 Unknown interaction)
        self.commands: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.downloads = 0
        self.downloaded: list[str] = []  # the attachment ids fetched, in order
        self.interaction_callbacks: list[tuple[str, dict]] = []
        self.followups: list[dict] = []
        self.general = self.text_channel("general")
        self._nonces: dict[tuple[str, str], dict] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = itertools.count(1)
        self.identified = threading.Event()
        self.identifies: list[tuple[int, int]] = []  # (shard id, shard count) of every IDENTIFY
        self.history_reads: list[str] = []  # the channel of every history request
        self.answered_at: dict[str, tuple[float, str]] = {}  # question id -> (monotonic time, text) of its reply's last write
        self._shard_of: dict[web.WebSocketResponse, tuple[int, int]] = {}
        self.voice_states: dict[str, str | None] = {}  # user id -> voice channel id
        self.voice_members: dict[str, dict] = {}
        self.voice_requests: list[dict] = []  # every voice-state update the bot asked for (gateway op 4)
        self.bot_self_deaf = False
        self.voice: VoiceServer | None = None
        self._served: ServedApp
        self.port = 0
        self.lock = threading.Lock()

    # -- ids and objects ---------------------------------------------------------------------
    def snowflake(self) -> str:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(self._ids) & 0x3FFFFF))

    def user(self, name: str, bot: bool = False) -> dict:
        return {"id": self.snowflake(), "username": name.lower(), "global_name": name, "discriminator": "0",
                "avatar": None, "bot": bot, "flags": 0, "public_flags": 0}

    def add_guild(self, name: str, shard: int | None = None, shard_count: int = 1, owner: dict | None = None) -> str:
        """A guild (the bot is a member); with ``shard``, one whose id routes to that shard of ``shard_count``;
        ``owner``: a person of ``user()`` (else the emulator's ``owner`` owns it)."""
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        if shard is not None:
            ms += (shard - ms) % shard_count
        gid = str((ms << 22) | (next(self._ids) & 0x3FFFFF))
        self.guilds[gid] = name
        if owner is not None:
            self.guild_owners[gid] = owner
        return gid

    def text_channel(self, name: str, guild_id: str | None = None) -> str:
        cid = self.snowflake()
        self.channels[cid] = {"id": cid, "type": 0, "name": name, "guild_id": guild_id or self.guild_id, "position": len(self.channels),
                              "permission_overwrites": [], "nsfw": False, "parent_id": None, "topic": None,
                              "last_message_id": None, "rate_limit_per_user": 0}
        return cid

    def thread(self, parent: str, name: str) -> str:
        tid = self.snowflake()
        self.channels[tid] = {"id": tid, "type": 11, "name": name, "guild_id": self.channels[parent].get("guild_id", self.guild_id), "parent_id": parent,
                              "owner_id": self.owner["id"], "message_count": 0, "member_count": 1,
                              "rate_limit_per_user": 0, "flags": 0, "last_message_id": None,
                              "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "locked": False,
                                                  "archive_timestamp": _now()}}
        return tid

    def voice_channel(self, name: str) -> str:
        cid = self.snowflake()
        self.channels[cid] = {"id": cid, "type": 2, "name": name, "guild_id": self.guild_id,
                              "position": len(self.channels), "permission_overwrites": [], "nsfw": False,
                              "parent_id": None, "bitrate": 64000, "user_limit": 0, "rtc_region": None}
        return cid

    def dm_channel(self, person: dict) -> str:
        cid = self.snowflake()
        self.channels[cid] = {"id": cid, "type": 1, "recipients": [person], "last_message_id": None}
        return cid

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- what a test does ------------------------------------------------------------------
    def user_says(self, channel_id: str, author: dict, content: str, *, mention_bot: bool = False,
                  reply_to: dict | None = None, deliver: bool = True, attachments: list[dict] | None = None,
                  voice: bool = False) -> dict:
        """A person posts a message; it reaches the bot over the gateway if ``deliver`` and connected.
        ``attachments`` come from ``attachment()``; ``voice`` marks a voice message (flag 1 << 13)."""
        if mention_bot:
            content = f"<@{self.bot['id']}> {content}"
        message = self._message(channel_id, author, content, reply_to=reply_to)
        if attachments:
            message["attachments"] = attachments
        if voice:
            message["flags"] = 1 << 13
        if mention_bot:
            message["mentions"] = [self.bot]
        with self.lock:
            self.messages[channel_id].append(message)
        if deliver:
            self._call(self._dispatch("MESSAGE_CREATE", message))
        return message

    def user_slash(self, channel_id: str, author: dict, name: str, options: dict[str, object] | None = None) -> str:
        """A person runs the slash command ``/name`` with ``options`` (strings, or an ``attachment()``
        for a file option); returns the interaction id."""
        command = next(c for c in self.commands if c["name"] == name)
        interaction_id = self.snowflake()
        self._interaction_channel = channel_id
        data: dict = {"id": command["id"], "name": name, "type": 1}
        if options:
            data["options"] = [{"name": k, "type": 11 if isinstance(v, dict) else 3,
                                "value": v["id"] if isinstance(v, dict) else v} for k, v in options.items()]
            files = {v["id"]: v for v in options.values() if isinstance(v, dict)}
            if files:
                data["resolved"] = {"attachments": files}
        self._call(self._dispatch("INTERACTION_CREATE", self._without_channel_maybe({
            "id": interaction_id, "application_id": self.app_id, "type": 2, "token": f"token-{interaction_id}",
            "version": 1, "guild_id": self.channels[channel_id].get("guild_id", self.guild_id), "channel_id": channel_id, "channel": self.channels[channel_id],
            "member": {"user": author, "roles": [], "joined_at": _now(), "deaf": False, "mute": False, "flags": 0,
                       "permissions": "1071698660929"},
            "data": data, "locale": "en-US", "guild_locale": "en-US",
            "app_permissions": "1071698660929", "entitlements": [], "authorizing_integration_owners": {},
            "context": 0, "attachment_size_limit": 26214400,
        })))
        return interaction_id

    def _interaction(self, channel_id: str, author: dict, kind: int, data: dict, **extra: object) -> str:
        interaction_id = self.snowflake()
        self._interaction_channel = channel_id
        self._call(self._dispatch("INTERACTION_CREATE", self._without_channel_maybe({
            "id": interaction_id, "application_id": self.app_id, "type": kind, "token": f"token-{interaction_id}",
            "version": 1, "guild_id": self.channels[channel_id].get("guild_id", self.guild_id), "channel_id": channel_id, "channel": self.channels[channel_id],
            "member": {"user": author, "roles": [], "joined_at": _now(), "deaf": False, "mute": False, "flags": 0,
                       "permissions": "1071698660929"},
            "data": data, "locale": "en-US", "guild_locale": "en-US", "app_permissions": "1071698660929",
            "entitlements": [], "authorizing_integration_owners": {}, "context": 0,
            "attachment_size_limit": 26214400, **extra})))
        return interaction_id

    def _without_channel_maybe(self, payload: dict) -> dict:
        return {k: v for k, v in payload.items() if k != "channel"} if self.interactions_without_channel else payload

    def user_clicks(self, message: dict, author: dict, custom_id: str) -> str:
        """A person presses the button ``custom_id`` under ``message``; returns the interaction id."""
        current = next(m for m in self.messages[message["channel_id"]] if m["id"] == message["id"])
        return self._interaction(message["channel_id"], author, 3, {"custom_id": custom_id, "component_type": 2},
                                 message=current)

    def user_message_command(self, message: dict, author: dict, name: str) -> str:
        """A person runs the message context-menu command ``name`` on ``message``."""
        command = next(c for c in self.commands if c["name"] == name and c.get("type") == 3)
        return self._interaction(message["channel_id"], author, 2, {
            "id": command["id"], "name": name, "type": 3, "target_id": message["id"],
            "resolved": {"messages": {message["id"]: message}}})

    def user_submits(self, opened_by: str, author: dict, values: list[str]) -> str:
        """A person fills in the form (modal) the bot opened in answer to ``opened_by``, field by field."""
        _, modal = next((i, b) for i, b in self.interaction_callbacks if i == opened_by and b.get("type") == 9)
        fields = [c for row in modal["data"]["components"] for c in row["components"]]
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": f["custom_id"], "value": v}]}
                for f, v in zip(fields, values)]
        return self._interaction(self._interaction_channel, author, 5,
                                 {"custom_id": modal["data"]["custom_id"], "components": rows})

    def bot_messages(self, channel_id: str) -> list[dict]:
        with self.lock:
            return [m for m in self.messages[channel_id] if m["author"]["id"] == self.bot["id"]]

    def replies_to(self, message: dict) -> list[dict]:
        with self.lock:
            return [m for ms in self.messages.values() for m in ms
                    if (m.get("message_reference") or {}).get("message_id") == message["id"]]

    def attachment(self, filename: str, data: bytes, content_type: str | None = None,
                   duration_secs: float | None = None, declared_size: int | None = None) -> dict:
        """An uploaded file, served by the emulator's CDN. ``declared_size`` may lie, as a crafted
        upload's metadata can."""
        aid = self.snowflake()
        self.files[aid] = data
        url = f"http://127.0.0.1:{self.port}/attachments/{aid}/{filename}"
        out = {"id": aid, "filename": filename, "size": len(data) if declared_size is None else declared_size,
               "url": url, "proxy_url": url}
        if content_type:
            out["content_type"] = content_type
        if duration_secs is not None:  # a voice message: its duration and a waveform (<= 256 bytes, base64)
            import base64
            out["duration_secs"] = duration_secs
            out["waveform"] = base64.b64encode(bytes(range(0, 256, 4))).decode()
        return out

    def delete(self, channel_id: str, message: dict) -> None:
        """A person deletes their message (it leaves the history; the bot hears MESSAGE_DELETE)."""
        with self.lock:
            self.messages[channel_id] = [m for m in self.messages[channel_id] if m["id"] != message["id"]]
        self._call(self._dispatch("MESSAGE_DELETE", {"id": message["id"], "channel_id": channel_id,
                                                     "guild_id": self.channels[channel_id].get("guild_id")}))

    def send_raw(self, event: str, data: dict) -> None:
        """Dispatch any gateway event as given: what a server with bugs sends."""
        self._call(self._dispatch(event, data))

    def store_raw(self, channel_id: str, data: dict) -> None:
        """Put a message into the history as given (it may be malformed)."""
        with self.lock:
            self.messages[channel_id].append(data)

    # -- voice --------------------------------------------------------------------------------
    def start_voice(self, folder) -> VoiceServer:  # noqa: ANN001
        """Serve voice too (TLS websocket, UDP, DAVE); the bot must trust ``voice.cert`` (SSL_CERT_FILE)."""
        self.listener = self.user("Listener")
        self.voice = VoiceServer(folder, int(self.listener["id"]))
        self._call(self.voice.start())
        return self.voice

    def user_joins_voice(self, person: dict, channel_id: str | None) -> None:
        """A person joins (or with None leaves) a voice channel."""
        self.voice_members[person["id"]] = person
        self.voice_states[person["id"]] = channel_id
        self._call(self._dispatch("VOICE_STATE_UPDATE", self._voice_state(person, channel_id)))

    def kick_bot_from_voice(self) -> None:
        """A moderator disconnects the bot: its voice state goes, and the voice server closes on it."""
        self.voice_states[self.bot["id"]] = None

        async def kick() -> None:
            await self._dispatch("VOICE_STATE_UPDATE", self._voice_state(self.bot, None))
            assert self.voice is not None
            await self.voice.close_all(4014)
        self._call(kick())

    def move_bot(self, channel_id: str) -> None:
        """A moderator drags the bot into another voice channel."""
        self.voice_states[self.bot["id"]] = channel_id

        async def move() -> None:
            await self._dispatch("VOICE_STATE_UPDATE", self._voice_state(self.bot, channel_id))
            await self._voice_server_update(channel_id)
        self._call(move())

    def _voice_state(self, person: dict, channel_id: str | None) -> dict:
        return {"guild_id": self.guild_id, "channel_id": channel_id, "user_id": person["id"],
                "member": {"user": person, "roles": [], "joined_at": _now(), "deaf": False, "mute": False, "flags": 0},
                "session_id": "emulated-voice-session", "deaf": False, "mute": False, "self_deaf": False,
                "self_mute": False, "self_video": False, "suppress": False, "request_to_speak_timestamp": None}

    async def _voice_server_update(self, channel_id: str) -> None:
        assert self.voice is not None, "the test did not start_voice()"
        token = f"voice-{self.snowflake()}"
        self.voice.calls[token] = {"user_id": self.bot["id"], "channel_id": channel_id}
        await self._dispatch("VOICE_SERVER_UPDATE", {"token": token, "guild_id": self.guild_id,
                                                     "endpoint": self.voice.endpoint})

    async def _bot_voice_request(self, data: dict) -> None:
        self.voice_requests.append(data)
        channel_id = None if data.get("channel_id") is None else str(data["channel_id"])  # discord.py sends an int
        # As Discord: no new voice server when the bot only (un)deafens itself where it is.
        deafening = self.voice_states.get(self.bot["id"]) == channel_id and \
            bool(data.get("self_deaf")) != self.bot_self_deaf
        self.voice_states[self.bot["id"]] = channel_id
        self.bot_self_deaf = bool(data.get("self_deaf"))
        await self._dispatch("VOICE_STATE_UPDATE", self._voice_state(self.bot, channel_id))
        if channel_id is not None and self.voice is not None and not deafening:
            await self._voice_server_update(channel_id)

    def disconnect_all(self, code: int = 1000, reason: str = "") -> None:
        """Close every gateway connection, with a close code as Discord does (4000: unknown error, resume;
        4009: session timed out, identify again; 4004: authentication failed; 4014: disallowed intents)."""
        async def close() -> None:
            for ws in list(self._sockets):
                await ws.close(code=code, message=reason.encode())
        self._call(close())

    # -- server ----------------------------------------------------------------------------
    def start(self) -> DiscordEmulator:
        app = web.Application()
        r = app.router
        r.add_get("/api/v10/users/@me", self._me)
        r.add_get("/api/v10/oauth2/applications/@me", self._application)
        r.add_get("/api/v10/gateway", self._gateway)
        r.add_get("/api/v10/gateway/bot", self._gateway)
        r.add_get("/gateway", self._websocket)
        r.add_get("/gateway/", self._websocket)
        r.add_post("/api/v10/channels/{cid}/messages", self._create_message)
        r.add_get("/api/v10/channels/{cid}/messages", self._history)
        r.add_patch("/api/v10/channels/{cid}/messages/{mid}", self._edit_message)
        r.add_get("/api/v10/channels/{cid}/messages/{mid}", self._get_message)
        r.add_post("/api/v10/channels/{cid}/typing", self._typing)
        r.add_get("/api/v10/channels/{cid}", self._channel)
        r.add_put("/api/v10/applications/{app}/commands", self._put_commands)
        r.add_get("/api/v10/applications/{app}/commands", self._get_commands)
        r.add_post("/api/v10/interactions/{iid}/{token}/callback", self._interaction_callback)
        r.add_post("/api/v10/webhooks/{app}/{token}", self._followup)
        r.add_get("/attachments/{aid}/{name}", self._file)
        self._served = ServedApp(app, "discord-emulator")
        self.port = self._served.port
        return self

    def stop(self) -> None:
        self.disconnect_all()

        async def unhang() -> None:
            if self._unhang is not None:
                self._unhang.set()
        self._call(unhang())
        if self.voice is not None:
            self._call(self.voice.stop())
        self._served.stop()

    def __enter__(self) -> DiscordEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Any) -> Any:
        return self._served.call(coro)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {BOT_TOKEN}"

    # -- REST ------------------------------------------------------------------------------
    async def _file(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["aid"])
        if data is None:
            return web.Response(status=404)
        self.downloads += 1
        self.downloaded.append(request.match_info["aid"])
        return web.Response(body=data, content_type="application/octet-stream")

    async def _me(self, request: web.Request) -> web.Response:
        if self.unavailable_logins > 0:
            self.unavailable_logins -= 1
            return _error(503, 0, "503: Service Unavailable")
        if not self._authorized(request):
            return _error(401, 0, "401: Unauthorized")
        return _json(self.bot)

    async def _application(self, request: web.Request) -> web.Response:
        return _json({"id": self.app_id, "name": "Parley", "icon": None, "description": "", "bot_public": True,
                      "bot_require_code_grant": False, "owner": self.owner, "team": None, "verify_key": "0" * 64,
                      "flags": 0, "interactions_endpoint_url": None})

    async def _gateway(self, request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url, "shards": 1,
                      "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}})

    async def _get_message(self, request: web.Request) -> web.Response:
        with self.lock:
            found = next((m for m in self.messages.get(request.match_info["cid"], [])
                          if m["id"] == request.match_info["mid"]), None)
        return _json(found) if found else _error(404, 10008, "Unknown Message")

    async def _channel(self, request: web.Request) -> web.Response:
        channel = self.channels.get(request.match_info["cid"])
        return _json(channel) if channel else _error(404, 10003, "Unknown Channel")

    async def _create_message(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, 0, "401: Unauthorized")
        cid = request.match_info["cid"]
        if cid not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        uploads: list[dict] = []
        if request.content_type.startswith("multipart/"):  # files: payload_json, then files[n]
            form = await request.post()
            body = json.loads(str(form["payload_json"]))
            for n, described in enumerate(body.get("attachments", [])):
                part = form.get(f"files[{n}]")
                if part is None:
                    return _error(400, 50035, "Invalid Form Body: attachment without a file")
                data = part.file.read()
                aid = self.snowflake()
                self.files[aid] = data
                url = f"http://127.0.0.1:{self.port}/attachments/{aid}/{part.filename}"
                uploads.append({"id": aid, "filename": part.filename, "size": len(data), "url": url, "proxy_url": url,
                                "content_type": part.content_type,
                                **{k: described[k] for k in ("duration_secs", "waveform") if k in described}})
        else:
            body = await request.json()
        self.posts.append(body)
        if self.fail_next_posts:
            status = self.fail_next_posts.pop(0)
            if status in (429, "429-global"):  # as Discord rate-limits: a route's bucket, or the whole bot
                scope = "global" if status == "429-global" else "user"
                headers = {"Retry-After": "1", "X-RateLimit-Scope": scope, "X-RateLimit-Limit": "5",
                           "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "0.3",
                           "X-RateLimit-Bucket": "emulated-bucket",
                           **({"X-RateLimit-Global": "true"} if scope == "global" else {})}
                return web.Response(body=json.dumps({"message": "You are being rate limited.", "retry_after": 0.3,
                                                     "global": scope == "global", "code": 0}).encode(),
                                    status=429, headers={"Content-Type": "application/json", **headers})
            return _error(int(status), 0, f"scripted {status}")
        content = body.get("content") or ""
        if len(content) > 2000:
            return _error(400, 50035, "Invalid Form Body: content must be 2000 or fewer in length.")
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce") and (cid, str(nonce)) in self._nonces:
            return _json(self._nonces[(cid, str(nonce))])
        ref = body.get("message_reference")
        reply_to = None
        if ref:
            reply_to = next((m for m in self.messages[cid] if m["id"] == str(ref["message_id"])), None)
            if reply_to is None and (self.strict_references or ref.get("fail_if_not_exists", True)):
                return _error(400, 50035, "Invalid Form Body: message_reference: Unknown message")
        message = self._message(cid, self.bot, content, reply_to=reply_to, nonce=nonce)
        if body.get("components"):
            message["components"] = body["components"]
        if uploads:
            message["attachments"] = uploads
        if body.get("flags"):
            message["flags"] = body["flags"]
        with self.lock:
            self.messages[cid].append(message)
        if nonce is not None:
            self._nonces[(cid, str(nonce))] = message
        if reply_to is not None:
            self.answered_at[reply_to["id"]] = (time.monotonic(), content)
        await self._dispatch("MESSAGE_CREATE", message)
        hang_voice = self.hang_next_voice_messages > 0 and bool((body.get("flags") or 0) & (1 << 13))
        if hang_voice:
            self.hang_next_voice_messages -= 1
        if self.hang_next_responses > 0 or hang_voice:
            self.hang_next_responses -= 0 if hang_voice else 1
            self._unhang = self._unhang or asyncio.Event()
            await self._unhang.wait()  # until the emulator stops
        if self.lose_next_responses > 0:
            # Discord posted it, but the bot never hears so (a crash or a cut connection right now).
            self.lose_next_responses -= 1
            assert request.transport is not None
            request.transport.close()
        return _json(message)

    async def _edit_message(self, request: web.Request) -> web.Response:
        cid, mid = request.match_info["cid"], request.match_info["mid"]
        body = await request.json()
        self.edit_bodies.append(body)
        for m in self.messages.get(cid, []):
            if m["id"] == mid:
                if m["author"]["id"] != self.bot["id"]:
                    return _error(403, 50005, "Cannot edit a message authored by another user")
                if "content" in body:
                    if len(body["content"] or "") > 2000:
                        return _error(400, 50035, "Invalid Form Body")
                    m["content"] = body["content"]
                    if m.get("referenced_message"):
                        self.answered_at[m["referenced_message"]["id"]] = (time.monotonic(), m["content"])
                if "components" in body:
                    m["components"] = body["components"] or []
                m["edited_timestamp"] = _now()
                self.edits[mid] += 1
                return _json(m)
        return _error(404, 10008, "Unknown Message")

    async def _history(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        self.history_reads.append(cid)
        if cid not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        limit = int(request.query.get("limit", "50"))
        with self.lock:
            ordered = sorted(self.messages[cid], key=lambda m: int(m["id"]))
        if "after" in request.query:
            after = int(request.query["after"])
            picked = [m for m in ordered if int(m["id"]) > after][:limit]
        else:
            before = int(request.query.get("before", str(2**63)))
            picked = [m for m in ordered if int(m["id"]) < before][-limit:]
        return _json(list(reversed(picked)))  # Discord returns newest first

    async def _typing(self, request: web.Request) -> web.Response:
        self.typing.append(request.match_info["cid"])
        return web.Response(status=204)

    async def _put_commands(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.broken_command_sync:
            return _json({"unexpected": "shape"})
        self.commands = [dict(c, id=self.snowflake(), application_id=self.app_id, version="1") for c in body]
        return _json(self.commands)

    async def _get_commands(self, request: web.Request) -> web.Response:
        return _json(self.commands)

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        body = await request.json()
        iid = request.match_info["iid"]
        if self.failing_callbacks > 0:
            self.failing_callbacks -= 1
            return _error(404, 10062, "Unknown interaction")
        self.interaction_callbacks.append((iid, body))
        if request.query.get("with_response") in ("true", "True", "1"):
            return _json({"interaction": {"id": iid, "type": 2, "response_message_loading": body.get("type") == 5,
                                          "response_message_ephemeral": False}, "resource": {"type": body.get("type")}})
        return web.Response(status=204)

    async def _followup(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            body = await request.json()
        else:  # multipart: the JSON is in the payload_json part
            form = await request.post()
            body = json.loads(str(form["payload_json"]))
        channel = getattr(self, "_interaction_channel", self.general)
        message = self._message(channel, self.bot, body.get("content") or "", webhook_id=self.app_id)
        message["flags"] = body.get("flags") or 0
        with self.lock:
            self.messages[channel].append(message)
        self.followups.append(body | {"interaction_token": request.match_info.get("token", "")})
        return _json(message)

    # -- gateway ---------------------------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if self.refused_gateways > 0:
            self.refused_gateways -= 1
            return _error(503, 0, "503: Service Unavailable")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        hello = None if self.malformed_hello else {"heartbeat_interval": 41250}
        await ws.send_str(json.dumps({"op": 10, "d": hello, "s": None, "t": None}))
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            payload = json.loads(frame.data)
            op = payload.get("op")
            if op == 1:
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
            elif op in (2, 6):  # IDENTIFY, or RESUME (answered as a fresh session of the same shard)
                if payload["d"].get("token") not in (BOT_TOKEN, f"Bot {BOT_TOKEN}"):
                    await ws.close(code=4004, message=b"Authentication failed")
                    break
                if op == 2:
                    shard = tuple(payload["d"].get("shard") or (0, 1))
                else:
                    shard = tuple(int(x) for x in str(payload["d"].get("session_id", "0-1")).rsplit(":", 1)[-1].split("-"))
                self._shard_of[ws] = (int(shard[0]), int(shard[1]))
                self._sockets.append(ws)
                guilds = [g for g in self.guilds if self._routes_to(g, ws)]
                await self._send(ws, "READY", {
                    "v": 10, "user": self.bot, "guilds": [{"id": g, "unavailable": True} for g in guilds],
                    "session_id": f"emulated-session:{shard[0]}-{shard[1]}", "resume_gateway_url": self.gateway_url,
                    "application": {"id": self.app_id, "flags": 0}, "private_channels": [], "relationships": [],
                    "shard": list(shard),
                })
                for g in guilds:
                    await self._send(ws, "GUILD_CREATE", self._guild(g))
                self.identifies.append(self._shard_of[ws])
                self.identified.set()
            elif op == 4:  # the bot joins, moves or leaves a voice channel
                await self._bot_voice_request(payload["d"])
        if ws in self._sockets:
            self._sockets.remove(ws)
        self._shard_of.pop(ws, None)
        return ws

    def _routes_to(self, guild_id: str | None, ws: web.WebSocketResponse) -> bool:
        """Discord's routing: a guild's events to shard ``(guild_id >> 22) % count``, DMs to shard 0."""
        shard, count = self._shard_of.get(ws, (0, 1))
        return shard == ((int(guild_id) >> 22) % count if guild_id else 0)

    def _guild(self, guild_id: str | None = None) -> dict:
        gid = guild_id or self.guild_id
        channels = [c for c in self.channels.values() if c["type"] in (0, 2) and c.get("guild_id") == gid]
        threads = [c for c in self.channels.values() if c["type"] == 11 and c.get("guild_id") == gid]
        main = gid == self.guild_id  # people in voice are in the first guild
        bot_member = {"user": self.bot, "roles": [], "joined_at": _now(), "deaf": False, "mute": False, "flags": 0}
        return {
            "id": gid, "name": self.guilds[gid], "icon": None, "owner_id": self.guild_owners.get(gid, self.owner)["id"],
            "roles": [{"id": gid, "name": "@everyone", "permissions": "1071698660929", "position": 0,
                       "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}],
            "emojis": [], "stickers": [], "features": [], "channels": channels, "threads": threads,
            "members": [bot_member] + [{"user": p, "roles": [], "joined_at": _now(), "deaf": False, "mute": False,
                                        "flags": 0} for p in self.voice_members.values() if main],
            "member_count": 3, "large": False, "presences": [],
            "voice_states": [{k: v for k, v in self._voice_state(self.voice_members[u], c).items() if k != "member"}
                             for u, c in self.voice_states.items() if main and c is not None and u in self.voice_members],
            "unavailable": False, "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "mfa_level": 0, "premium_tier": 0, "system_channel_flags": 0,
            "preferred_locale": "en-US", "nsfw_level": 0, "premium_progress_bar_enabled": False,
            "joined_at": _now(), "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
        }

    async def _dispatch(self, event: str, data: dict) -> None:
        guild_id = data.get("guild_id") if isinstance(data, dict) else None
        for ws in [w for w in self._sockets if self._routes_to(guild_id, w)]:
            try:
                await self._send(ws, event, data)
            except ConnectionError:
                pass

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict) -> None:
        await ws.send_str(json.dumps({"op": 0, "s": next(self._seq), "t": event, "d": data}))

    def _message(self, channel_id: str, author: dict, content: str, *, reply_to: dict | None = None,
                 nonce: Any = None, webhook_id: str | None = None) -> dict:
        channel = self.channels[channel_id]
        message: dict[str, Any] = {
            "id": self.snowflake(), "channel_id": channel_id, "author": author, "content": content,
            "timestamp": _now(), "edited_timestamp": None, "tts": False, "mention_everyone": False,
            "mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "pinned": False,
            "type": 19 if reply_to else 0, "flags": 0, "components": [],
        }
        if nonce is not None:
            message["nonce"] = nonce
        if webhook_id:
            message["webhook_id"] = webhook_id
        if channel.get("guild_id"):
            message["guild_id"] = channel["guild_id"]
            if not author.get("bot"):
                message["member"] = {"roles": [], "joined_at": _now(), "deaf": False, "mute": False, "flags": 0}
        if reply_to is not None:
            message["message_reference"] = {"type": 0, "message_id": reply_to["id"], "channel_id": channel_id,
                                            **({"guild_id": channel["guild_id"]} if channel.get("guild_id") else {})}
            message["referenced_message"] = {k: v for k, v in reply_to.items() if k != "referenced_message"}
        return message


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
