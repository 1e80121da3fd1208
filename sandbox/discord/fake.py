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
in :mod:`sandbox.discord.world` (post, react, click ...), the fault methods below, and the same
over HTTP under ``/_sandbox/...`` (:mod:`sandbox.discord.control`).
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
from sandbox.discord.world import World

log = logging.getLogger("sandbox.discord")

DEFAULT_TOKEN = "FAKE.DISCORD.TOKEN"


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


class FakeDiscord(World):
    """The server: one bot token, the world of :class:`~sandbox.discord.world.World`."""

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
        self.faults: list[Fault] = []
        self.session: Session | None = None
        self.connections: list[Connection] = []
        self.identifies: list[Json] = []
        self.resume_requests: list[Json] = []
        self.client_ops: list[int] = []  # every op the bot sent, over all connections
        self.rest_log: list[tuple[str, str, int]] = []  # (method, path, status)
        self.nonces: dict[tuple[str, str], tuple[float, Json]] = {}
        self._gate = asyncio.Event()
        self._gate.set()
        self._runner: web.AppRunner | None = None
        self._sock: socket.socket | None = None
        self.port = 0
        super().__init__()

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
