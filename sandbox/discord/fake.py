"""A fake Discord (REST API v10 + gateway v10) that the real discord.py 2.7 client talks to.

Bot side, the real protocol over 127.0.0.1:

* gateway at ``ws://127.0.0.1:<port>/`` (plain JSON or ``zlib-stream``): HELLO, heartbeats and
  ACKs, IDENTIFY (token checked: close 4004; the privileged message content intent refused
  unless enabled: close 4014), READY with ``resume_gateway_url``, GUILD_CREATE with text and
  forum channels, active threads, roles and members; MESSAGE_CREATE / UPDATE / DELETE,
  MESSAGE_REACTION_ADD, THREAD_CREATE, INTERACTION_CREATE; RECONNECT, RESUME with replay of
  missed events, INVALID_SESSION (see :mod:`sandbox.discord.gateway`).
* REST under ``/api/v10`` (see :mod:`sandbox.discord.rest`): create message (reply reference,
  embeds, components, nonce + enforce_nonce, allowed mentions), start a thread from a
  message, create a forum post, get channel messages (``after`` / ``before`` / ``limit``),
  interaction callback (3 s deadline), add reaction, create DM, get channel.

Limits are enforced and counted (:mod:`sandbox.discord.limits`). Test side: the Python methods
below and the same over HTTP under ``/_sandbox/...`` (:mod:`sandbox.discord.control`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import time
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from sandbox.discord import payloads as P
from sandbox.discord.gateway import (
    INTENT_MESSAGE_CONTENT,
    MAX_KEPT_EVENTS,
    OP_DISPATCH,
    OP_HEARTBEAT,
    OP_HEARTBEAT_ACK,
    OP_HELLO,
    OP_IDENTIFY,
    OP_INVALID_SESSION,
    OP_RECONNECT,
    OP_RESUME,
    Connection,
    Session,
    visible_to,
)
from sandbox.discord.limits import Limits
from sandbox.discord.payloads import Json

log = logging.getLogger("sandbox.discord")

DEFAULT_TOKEN = "FAKE.DISCORD.TOKEN"


class FakeError(Exception):
    """A test-side operation that makes no sense (unknown channel, user ...)."""


@dataclass
class Fault:
    """Answer the next ``times`` matching REST requests with ``status``.

    With ``after_effect`` the request is carried out first and only its answer is replaced:
    a response lost on the way back (the message exists, the bot does not know).
    """

    status: int
    method: str = "POST"
    path_contains: str = "/messages"
    times: int = 1
    retry_after: float = 1.0
    is_global: bool = False
    after_effect: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and self.path_contains in path


@dataclass
class Interaction:
    id: str
    token: str
    channel_id: str
    message_id: str
    user_id: str
    custom_id: str
    created: float
    acked_at: float | None = None
    ack_type: int | None = None


class FakeDiscord:
    """One bot token, one guild ("Acme Support"), a few users; see :meth:`_build_world`."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        message_content_enabled: bool = True,
        resume_window: float = 60.0,
        limits: Limits | None = None,
        heartbeat_interval_ms: int = 41250,
        nonce_window: float = 300.0,
    ) -> None:
        self.token = token
        self.message_content_enabled = message_content_enabled  # the "Developer Portal" switch
        self.resume_window = resume_window
        self.limits = limits or Limits()
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.nonce_window = nonce_window
        self.sf = P.Snowflakes()
        self.faults: list[Fault] = []
        self.session: Session | None = None
        self.connections: list[Connection] = []
        self.identifies: list[Json] = []
        self.resume_requests: list[Json] = []
        self.client_ops: list[int] = []  # every op the bot sent, over all connections
        self.rest_log: list[tuple[str, str, int]] = []  # (method, path, status)
        self.interactions: dict[str, Interaction] = {}
        self.nonces: dict[tuple[str, str], tuple[float, Json]] = {}
        self._gate = asyncio.Event()
        self._gate.set()
        self._runner: web.AppRunner | None = None
        self._sock: socket.socket | None = None
        self.port = 0
        self._build_world()

    # ------------------------------------------------------------------ world
    def _build_world(self) -> None:
        sf = self.sf
        self.app_id = sf()
        self.bot_user = P.user(sf(), "supportbot", bot=True)
        self.guild_id = sf()
        self.helper_role_id = sf()
        self.staff_role_id = sf()
        self.roles: list[Json] = [
            P.role(self.guild_id, "@everyone", position=0),
            P.role(self.helper_role_id, "helpers", position=1, mentionable=True),
            P.role(self.staff_role_id, "staff", position=2),
        ]
        self.users: dict[str, Json] = {}
        self.user_roles: dict[str, list[str]] = {}
        self.add_user("carol")
        self.add_user("dave", roles=[self.helper_role_id])
        self.add_user("erin", roles=[self.staff_role_id])
        self.channels: dict[str, Json] = {}
        self.messages: dict[str, list[Json]] = {}
        self.by_id: dict[str, Json] = {}
        self.text_channel_id = sf()
        self.forum_channel_id = sf()
        self.other_channel_id = sf()
        self._add_channel(P.text_channel(self.text_channel_id, self.guild_id, "support", 0))
        self.forum_tags = [
            {"id": sf(), "name": "billing", "moderated": False, "emoji_id": None, "emoji_name": None},
            {"id": sf(), "name": "login", "moderated": False, "emoji_id": None, "emoji_name": None},
        ]
        self._add_channel(
            P.forum_channel(self.forum_channel_id, self.guild_id, "help-forum", 1, self.forum_tags)
        )
        self._add_channel(P.text_channel(self.other_channel_id, self.guild_id, "off-topic", 2))
        # an existing thread in #support, started from a message (thread id == message id)
        starter = self._store(
            P.message(
                sf(), self.text_channel_id, self.guild_id, self.users["carol"], "known issue: sync is slow"
            )
        )
        self.existing_thread_id = starter["id"]
        self._add_channel(
            P.thread_channel(
                starter["id"], self.guild_id, self.text_channel_id, "sync is slow", self.users["carol"]["id"]
            )
        )

    def add_user(self, name: str, *, roles: list[str] | None = None, bot: bool = False) -> Json:
        u = P.user(self.sf(), name, bot=bot)
        self.users[name] = u
        self.user_roles[u["id"]] = list(roles or [])
        return u

    def user(self, who: str | Json) -> Json:
        if isinstance(who, dict):
            return who
        if who in self.users:
            return self.users[who]
        for u in self.users.values():
            if u["id"] == who:
                return u
        if who == self.bot_user["id"]:
            return self.bot_user
        raise FakeError(f"unknown user {who!r}")

    def _add_channel(self, ch: Json) -> Json:
        self.channels[ch["id"]] = ch
        self.messages.setdefault(ch["id"], [])
        return ch

    def _store(self, msg: Json) -> Json:
        self.messages.setdefault(msg["channel_id"], []).append(msg)
        self.by_id[msg["id"]] = msg
        ch = self.channels.get(msg["channel_id"])
        if ch is not None:
            ch["last_message_id"] = msg["id"]
            if ch["type"] in P.THREAD_TYPES:
                ch["message_count"] = ch.get("message_count", 0) + 1
                ch["total_message_sent"] = ch.get("total_message_sent", 0) + 1
        return msg

    def channel(self, channel_id: str) -> Json:
        ch = self.channels.get(str(channel_id))
        if ch is None:
            raise FakeError(f"unknown channel {channel_id}")
        return ch

    def guild_of(self, channel_id: str) -> str | None:
        return self.channel(channel_id).get("guild_id")

    def threads(self) -> list[Json]:
        return [c for c in self.channels.values() if c["type"] in P.THREAD_TYPES]

    def guild_payload(self) -> Json:
        members = [P.member([], self.bot_user)] + [
            P.member(self.user_roles.get(u["id"], []), u) for u in self.users.values()
        ]
        guild_channels = [c for c in self.channels.values() if c["type"] in (P.GUILD_TEXT, P.GUILD_FORUM)]
        return {
            "id": self.guild_id,
            "name": "Acme Support",
            "icon": None,
            "owner_id": self.users["erin"]["id"],
            "unavailable": False,
            "member_count": len(members),
            "large": False,
            "joined_at": P.now_iso(),
            "features": [],
            "roles": self.roles,
            "emojis": [],
            "stickers": [],
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_flags": 0,
            "afk_timeout": 300,
            "channels": guild_channels,
            "threads": self.threads(),
            "members": members,
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # ------------------------------------------------------------------ server
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def app(self) -> web.Application:
        from sandbox.discord.control import add_control_routes
        from sandbox.discord.rest import Rest

        rest = Rest(self)
        app = web.Application(middlewares=[rest.middleware])
        app.router.add_get("/", self._gateway)
        rest.add_routes(app.router)
        add_control_routes(app.router, self)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if host != "127.0.0.1":
            raise ValueError("the fake only binds 127.0.0.1")
        self._runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = self._sock.getsockname()[1]
        await web.SockSite(self._runner, self._sock).start()

    async def stop(self) -> None:
        self._gate.set()
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ gateway
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        await self._gate.wait()  # hold_gateway(): the client waits for HELLO
        conn = Connection(ws, request, compress=request.query.get("compress") == "zlib-stream")
        self.connections.append(conn)
        try:
            await conn.send({"op": OP_HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                p = json.loads(msg.data)
                op = p.get("op")
                conn.client_ops.append(op)
                self.client_ops.append(op)
                if op == OP_HEARTBEAT:
                    await conn.send({"op": OP_HEARTBEAT_ACK})
                elif op == OP_IDENTIFY:
                    await self._identify(conn, p["d"])
                elif op == OP_RESUME:
                    await self._resume(conn, p["d"])
        finally:
            self.connections.remove(conn)
            s = self.session
            if s is not None and s.conn is conn:
                s.conn = None
                s.disconnected_at = time.monotonic()
        return ws

    async def _identify(self, conn: Connection, d: Json) -> None:
        self.identifies.append({k: v for k, v in d.items() if k != "token"})
        self.limits.counters.identifies += 1
        if d.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(d.get("intents", 0))
        if intents & INTENT_MESSAGE_CONTENT and not self.message_content_enabled:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        if self.session is not None and self.session.conn is not None and self.session.conn is not conn:
            with contextlib.suppress(Exception):
                await self.session.conn.ws.close(code=4000)
        self.session = Session(id="sess-" + secrets.token_hex(8), intents=intents, conn=conn)
        await self.dispatch(
            "READY",
            {
                "v": 10,
                "user": self.bot_user,
                "session_id": self.session.id,
                "resume_gateway_url": self.gateway_url,
                "guilds": [{"id": self.guild_id, "unavailable": True}],
                "application": {"id": self.app_id, "flags": 0},
                "private_channels": [],
                "relationships": [],
                "user_settings": {},
            },
        )
        await self.dispatch("GUILD_CREATE", self.guild_payload())

    async def _resume(self, conn: Connection, d: Json) -> None:
        self.resume_requests.append({k: v for k, v in d.items() if k != "token"})
        s = self.session
        now = time.monotonic()
        if d.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        if s is None or s.id != d.get("session_id") or not s.resumable(self.resume_window, now):
            self.limits.counters.resumes_refused += 1
            if s is not None and s.id == d.get("session_id"):
                s.expired = True
            await conn.send({"op": OP_INVALID_SESSION, "d": False})
            return
        self.limits.counters.resumes += 1
        s.conn = conn
        s.disconnected_at = None
        seq = int(d.get("seq") or 0)
        for ev in list(s.events):
            if ev["s"] > seq:
                await conn.send(ev)
        await self.dispatch("RESUMED", {})

    async def dispatch(self, event: str, data: Json) -> None:
        """Send an event to the bot's session (kept for replay while it is disconnected)."""
        s = self.session
        if s is None or s.expired:
            return
        seen = visible_to(event, data, s.intents, self.bot_user["id"])
        if seen is None:
            return
        s.seq += 1
        payload = {"op": OP_DISPATCH, "t": event, "s": s.seq, "d": seen}
        s.events.append(payload)
        if len(s.events) > MAX_KEPT_EVENTS:
            del s.events[: len(s.events) - MAX_KEPT_EVENTS]
        if s.conn is not None:
            await s.conn.send(payload)

    # ------------------------------------------------------------------ gateway faults
    async def drop_connection(self, *, abrupt: bool = True, code: int = 4000) -> None:
        """Cut the bot's gateway connection: a TCP reset (abrupt) or a resumable close code."""
        s = self.session
        if s is None or s.conn is None:
            return
        conn = s.conn
        s.conn = None
        s.disconnected_at = time.monotonic()
        if abrupt:
            conn.abort()
        else:
            await conn.ws.close(code=code)

    def hold_gateway(self) -> None:
        """New gateway connections wait (no HELLO) until :meth:`release_gateway`."""
        self._gate.clear()

    def release_gateway(self) -> None:
        self._gate.set()

    def expire_sessions(self) -> None:
        """Make the current session un-resumable: a gap longer than the resume window."""
        if self.session is not None:
            self.session.expired = True

    async def send_reconnect(self) -> None:
        """Op 7: the client should reconnect and RESUME."""
        if self.session is not None and self.session.conn is not None:
            await self.session.conn.send({"op": OP_RECONNECT, "d": None})

    async def send_invalid_session(self, resumable: bool = False) -> None:
        if self.session is not None and self.session.conn is not None:
            conn = self.session.conn
            if not resumable:
                self.session.expired = True
            await conn.send({"op": OP_INVALID_SESSION, "d": resumable})

    @property
    def connected(self) -> bool:
        return self.session is not None and self.session.conn is not None and not self.session.expired

    async def wait_connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.connected:
            if time.monotonic() > deadline:
                raise TimeoutError("the bot did not connect to the fake gateway")
            await asyncio.sleep(0.01)

    # ------------------------------------------------------------------ REST faults
    def fail_next(
        self,
        status: int,
        *,
        method: str = "POST",
        path_contains: str = "/messages",
        times: int = 1,
        retry_after: float = 1.0,
        is_global: bool = False,
        after_effect: bool = False,
    ) -> None:
        self.faults.append(Fault(status, method, path_contains, times, retry_after, is_global, after_effect))

    def take_fault(self, method: str, path: str) -> Fault | None:
        for f in self.faults:
            if f.matches(method, path):
                f.times -= 1
                if f.times <= 0:
                    self.faults.remove(f)
                return f
        return None

    # ------------------------------------------------------------------ what users do
    def _mentions_for(self, content: str, mention_bot: bool, extra: list[str]) -> list[Json]:
        ids = list(extra)
        if mention_bot:
            ids.append(self.bot_user["id"])
        for u in [self.bot_user, *self.users.values()]:
            if f"<@{u['id']}>" in content and u["id"] not in ids:
                ids.append(u["id"])
        out = []
        for uid in ids:
            u = self.user(uid)
            out.append({**u, "member": P.member(self.user_roles.get(uid, []))})
        return out

    async def post(
        self,
        channel_id: str,
        content: str,
        *,
        author: str | Json = "carol",
        reply_to: str | None = None,
        mention_bot: bool = False,
        mention_users: list[str] | None = None,
    ) -> Json:
        """A user posts in a guild channel or thread; returns the message."""
        ch = self.channel(channel_id)
        if ch["type"] == P.GUILD_FORUM:
            raise FakeError("post in a forum with forum_post(); messages go in its threads")
        u = self.user(author)
        if mention_bot and f"<@{self.bot_user['id']}>" not in content:
            content = f"<@{self.bot_user['id']}> {content}"
        ref = None
        if reply_to is not None:
            target = self.by_id.get(str(reply_to))
            if target is None:
                raise FakeError(f"unknown message {reply_to}")
            ref = {
                "message_id": target["id"],
                "channel_id": target["channel_id"],
                "guild_id": ch.get("guild_id"),
            }
        msg = P.message(
            self.sf(),
            ch["id"],
            ch.get("guild_id"),
            u,
            content,
            author_roles=self.user_roles.get(u["id"], []),
            mentions=self._mentions_for(content, mention_bot, mention_users or []),
            reference=ref,
        )
        if ref is not None:
            msg["referenced_message"] = self.by_id[ref["message_id"]]
        self._store(msg)
        await self.dispatch("MESSAGE_CREATE", msg)
        return msg

    async def forum_post(
        self,
        title: str,
        content: str,
        *,
        author: str | Json = "carol",
        tags: list[str] | None = None,
        forum_id: str | None = None,
    ) -> tuple[Json, Json]:
        """A user opens a forum post (a thread plus its starter message; same id)."""
        forum = self.channel(forum_id or self.forum_channel_id)
        u = self.user(author)
        tag_ids = [t["id"] for t in forum["available_tags"] if t["name"] in (tags or [])]
        tid = self.sf()
        thread = self._add_channel(
            P.thread_channel(tid, forum["guild_id"], forum["id"], title, u["id"], applied_tags=tag_ids)
        )
        msg = P.message(
            tid, tid, forum["guild_id"], u, content, author_roles=self.user_roles.get(u["id"], [])
        )
        self._store(msg)
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        await self.dispatch("MESSAGE_CREATE", msg)
        return thread, msg

    async def start_thread(self, message_id: str, name: str, *, author: str | Json = "carol") -> Json:
        """A user starts a public thread from a message (thread id == message id)."""
        starter = self.by_id[str(message_id)]
        u = self.user(author)
        thread = self._add_channel(
            P.thread_channel(starter["id"], self.guild_id, starter["channel_id"], name, u["id"])
        )
        starter["thread"] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return thread

    async def edit(self, message_id: str, content: str) -> Json:
        msg = self.by_id[str(message_id)]
        msg["content"] = content
        msg["edited_timestamp"] = P.now_iso()
        await self.dispatch("MESSAGE_UPDATE", dict(msg))
        return msg

    async def delete(self, message_id: str) -> None:
        msg = self.by_id.pop(str(message_id))
        self.messages[msg["channel_id"]].remove(msg)
        data: Json = {"id": msg["id"], "channel_id": msg["channel_id"]}
        if "guild_id" in msg:
            data["guild_id"] = msg["guild_id"]
        await self.dispatch("MESSAGE_DELETE", data)

    async def react(self, message_id: str, emoji: str, *, user: str | Json = "carol") -> None:
        msg = self.by_id[str(message_id)]
        u = self.user(user)
        await self._reaction(msg, emoji, u)

    async def _reaction(self, msg: Json, emoji: str, u: Json) -> None:
        reactions: list[Json] = msg.setdefault("reactions", [])
        for r in reactions:
            if r["emoji"]["name"] == emoji:
                if u["id"] in r["users"]:
                    return  # Discord ignores a repeated reaction
                r["users"].append(u["id"])
                r["count"] += 1
                break
        else:
            reactions.append({"emoji": {"id": None, "name": emoji}, "count": 1, "users": [u["id"]]})
        data: Json = {
            "user_id": u["id"],
            "channel_id": msg["channel_id"],
            "message_id": msg["id"],
            "emoji": {"id": None, "name": emoji},
            "message_author_id": msg["author"]["id"],
            "burst": False,
            "type": 0,
        }
        if "guild_id" in msg:
            data["guild_id"] = msg["guild_id"]
            data["member"] = P.member(self.user_roles.get(u["id"], []), u)
        await self.dispatch("MESSAGE_REACTION_ADD", data)

    async def click(self, message_id: str, custom_id: str, *, user: str | Json = "carol") -> Interaction:
        """A user presses a button on one of the bot's messages."""
        msg = self.by_id[str(message_id)]
        ids = [c.get("custom_id") for row in msg.get("components", []) for c in row.get("components", [])]
        if custom_id not in ids:
            raise FakeError(f"message {message_id} has no button {custom_id!r} (has {ids})")
        u = self.user(user)
        ch = self.channel(msg["channel_id"])
        it = Interaction(
            id=self.sf(),
            token="itk-" + secrets.token_hex(12),
            channel_id=ch["id"],
            message_id=msg["id"],
            user_id=u["id"],
            custom_id=custom_id,
            created=time.monotonic(),
        )
        self.interactions[it.id] = it
        await self.dispatch(
            "INTERACTION_CREATE",
            P.interaction(
                it.id,
                self.app_id,
                it.token,
                channel=ch,
                msg=msg,
                clicker=u,
                custom_id=custom_id,
                guild_id=ch.get("guild_id"),
                roles=self.user_roles.get(u["id"], []),
            ),
        )
        return it

    def dm_channel_for(self, user_id: str) -> Json:
        for ch in self.channels.values():
            if ch["type"] == P.DM and ch["recipients"][0]["id"] == user_id:
                return ch
        return self._add_channel(P.dm_channel(self.sf(), self.user(user_id)))

    async def dm(self, content: str, *, author: str | Json = "carol") -> Json:
        """A user writes to the bot in a direct message."""
        u = self.user(author)
        ch = self.dm_channel_for(u["id"])
        msg = P.message(self.sf(), ch["id"], None, u, content)
        self._store(msg)
        await self.dispatch("MESSAGE_CREATE", msg)
        return msg

    # ------------------------------------------------------------------ what the bot did
    def bot_messages(self, channel_id: str | None = None) -> list[Json]:
        out = [
            m
            for cid, msgs in self.messages.items()
            if channel_id is None or cid == str(channel_id)
            for m in msgs
            if m["author"]["id"] == self.bot_user["id"]
        ]
        return sorted(out, key=lambda m: int(m["id"]))

    def sent_texts(self, channel_id: str | None = None) -> list[str]:
        return [m["content"] for m in self.bot_messages(channel_id)]

    def history(self, channel_id: str) -> list[Json]:
        return list(self.messages.get(str(channel_id), []))

    def state(self) -> Json:
        return {
            "url": self.url,
            "api_base": self.api_base,
            "gateway_url": self.gateway_url,
            "token": self.token,
            "guild_id": self.guild_id,
            "text_channel_id": self.text_channel_id,
            "forum_channel_id": self.forum_channel_id,
            "other_channel_id": self.other_channel_id,
            "existing_thread_id": self.existing_thread_id,
            "helper_role_id": self.helper_role_id,
            "bot_user_id": self.bot_user["id"],
            "users": {name: u["id"] for name, u in self.users.items()},
            "connected": self.connected,
            "counters": self.limits.counters.snapshot(),
            "invalid_last_10min": self.limits.invalid.count(),
        }
