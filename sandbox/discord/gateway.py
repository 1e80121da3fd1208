"""The fake's gateway side: connections, sessions, sequence numbers, RESUME replay.

One session at a time (one bot, one shard). Events dispatched while the bot is disconnected
are kept in the session and replayed on RESUME, as Discord does, as long as the session is
still resumable: not expired by a test (``expire``) and not disconnected for longer than
``resume_window`` seconds. Otherwise RESUME gets ``INVALID_SESSION`` (``d: false``) and the
bot must IDENTIFY again and backfill what it missed over REST.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.discord.payloads import Json

OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_RESUME, OP_RECONNECT = 0, 1, 2, 6, 7
OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 9, 10, 11

INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_DIRECT_MESSAGE_REACTIONS = 1 << 13
INTENT_MESSAGE_CONTENT = 1 << 15

MAX_KEPT_EVENTS = 5000


class Connection:
    """One websocket, with its zlib-stream compressor (stateful: sends are serialized)."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, compress: bool) -> None:
        self.ws = ws
        self.request = request
        self._zlib: Any = zlib.compressobj() if compress else None
        self._lock = asyncio.Lock()
        self.client_ops: list[int] = []

    async def send(self, payload: Json) -> None:
        raw = json.dumps(payload)
        async with self._lock:
            if self.ws.closed:
                return
            try:
                if self._zlib is not None:
                    data = self._zlib.compress(raw.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(raw)
            except (ConnectionError, RuntimeError):
                pass  # the socket went away under us: the session keeps the event for replay

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (a network failure)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()


@dataclass
class Session:
    id: str
    intents: int
    seq: int = 0
    events: list[Json] = field(default_factory=list)
    conn: Connection | None = None
    disconnected_at: float | None = None
    expired: bool = False

    def resumable(self, window: float, now: float) -> bool:
        if self.expired:
            return False
        return self.disconnected_at is None or now - self.disconnected_at <= window


def visible_to(event: str, data: Json, intents: int, bot_id: str) -> Json | None:
    """What a session with ``intents`` receives of ``event`` (None: not at all)."""
    is_dm = "guild_id" not in data
    if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"):
        if not intents & (INTENT_DIRECT_MESSAGES if is_dm else INTENT_GUILD_MESSAGES):
            return None
        if event != "MESSAGE_DELETE" and not intents & INTENT_MESSAGE_CONTENT:
            author = data.get("author", {}).get("id")
            mentioned = any(m.get("id") == bot_id for m in data.get("mentions", []))
            if not (is_dm or mentioned or author == bot_id):
                # Discord blanks these fields without the privileged message content intent
                return {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        return data
    if event == "MESSAGE_REACTION_ADD":
        need = INTENT_DIRECT_MESSAGE_REACTIONS if is_dm else INTENT_GUILD_MESSAGE_REACTIONS
        return data if intents & need else None
    return data
