"""The fake's REST API (``/api/v10``): what a support bot calls, refusing what Discord refuses.

Responses carry ``Content-Type: application/json`` exactly (discord.py only parses that), and
429s carry ``Via`` (without it discord.py assumes a Cloudflare ban) plus the ``X-RateLimit-*``
headers discord.py reads to pace itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import web

from sandbox.discord import payloads as P
from sandbox.discord.payloads import Json

if TYPE_CHECKING:
    from sandbox.discord.fake import FakeDiscord, Fault

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_CONTENT = 2000
MENTION_RE = re.compile(r"<@(!?|&)(\d+)>")
INTERACTION_DEADLINE = 3.0


def jresp(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def err(status: int, code: int, message: str, errors: Json | None = None) -> web.Response:
    body: Json = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return jresp(body, status=status)


def form_error(field: str, message: str) -> web.Response:
    return err(
        400, 50035, "Invalid Form Body", {field: {"_errors": [{"code": "INVALID", "message": message}]}}
    )


def too_many(retry_after: float, *, scope: str, is_global: bool = False, bucket: str = "") -> web.Response:
    headers = {
        "Via": "1.1 google",
        "Retry-After": str(max(1, round(retry_after))),
        "X-RateLimit-Scope": scope,
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
    }
    if bucket:
        headers["X-RateLimit-Bucket"] = bucket
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    body = {
        "message": "You are being rate limited.",
        "retry_after": round(retry_after, 3),
        "global": is_global,
    }
    return jresp(body, status=429, headers=headers)


def validate_embeds(embeds: list[Json]) -> str | None:
    if len(embeds) > 10:
        return "at most 10 embeds"
    total = 0
    for e in embeds:
        limits = {"title": 256, "description": 4096}
        for key, lim in limits.items():
            value = str(e.get(key) or "")
            if len(value) > lim:
                return f"embed {key} longer than {lim}"
            total += len(value)
        fields = e.get("fields") or []
        if len(fields) > 25:
            return "at most 25 embed fields"
        for f in fields:
            if len(str(f.get("name", ""))) > 256 or len(str(f.get("value", ""))) > 1024:
                return "embed field too long"
            total += len(str(f.get("name", ""))) + len(str(f.get("value", "")))
        footer = str((e.get("footer") or {}).get("text") or "")
        author = str((e.get("author") or {}).get("name") or "")
        if len(footer) > 2048 or len(author) > 256:
            return "embed footer/author too long"
        total += len(footer) + len(author)
    if total > 6000:
        return "embeds longer than 6000 characters in total"
    return None


def validate_components(rows: list[Json]) -> str | None:
    if len(rows) > 5:
        return "at most 5 action rows"
    seen: set[str] = set()
    for row in rows:
        if row.get("type") != 1:
            return "top-level components must be action rows"
        children = row.get("components") or []
        if not 1 <= len(children) <= 5:
            return "an action row holds 1 to 5 buttons"
        for c in children:
            if c.get("type") != 2:
                return "only buttons are supported by the fake"
            if len(str(c.get("label") or "")) > 80:
                return "button label longer than 80"
            if c.get("style") == 5:
                if not c.get("url"):
                    return "link buttons need a url"
                continue
            cid = c.get("custom_id")
            if not cid or len(str(cid)) > 100:
                return "custom_id must be 1 to 100 characters"
            if cid in seen:
                return "custom_id must be unique within a message"
            seen.add(str(cid))
    return None


class Rest:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self._tasks: set[asyncio.Task[None]] = set()

    def add_routes(self, r: web.UrlDispatcher) -> None:
        b = "/api/v10"
        r.add_get(f"{b}/gateway", self.get_gateway)
        r.add_get(f"{b}/gateway/bot", self.get_gateway_bot)
        r.add_get(f"{b}/users/@me", self.users_me)
        r.add_get(f"{b}/oauth2/applications/@me", self.app_info)
        r.add_post(f"{b}/users/@me/channels", self.create_dm)
        r.add_get(f"{b}/channels/{{cid}}", self.get_channel)
        r.add_get(f"{b}/channels/{{cid}}/messages", self.get_messages)
        r.add_post(f"{b}/channels/{{cid}}/messages", self.create_message)
        r.add_post(f"{b}/channels/{{cid}}/messages/{{mid}}/threads", self.thread_from_message)
        r.add_post(f"{b}/channels/{{cid}}/threads", self.thread_in_channel)
        r.add_put(f"{b}/channels/{{cid}}/messages/{{mid}}/reactions/{{emoji}}/@me", self.add_reaction)
        r.add_post(f"{b}/interactions/{{iid}}/{{itoken}}/callback", self.interaction_callback)

    # ------------------------------------------------------------------ cross-cutting
    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        fake, lim = self.fake, self.fake.limits
        now = time.monotonic()
        resp: web.StreamResponse
        fault: Fault | None = None
        is_callback = "/interactions/" in request.path  # authorised by its token, not the bot token
        if lim.banned(now):
            # Cloudflare's ban: a 429 without Via, not JSON; discord.py raises HTTPException
            resp = web.Response(status=429, text="error code: 1015", headers={"Retry-After": "600"})
        elif not is_callback and request.headers.get("Authorization") != f"Bot {fake.token}":
            resp = err(401, 0, "401: Unauthorized")
        elif (fault := fake.take_fault(request.method, request.path)) is not None:
            lim.counters.injected_faults += 1
            if fault.after_effect:
                await handler(request)  # done, but the answer is lost
            resp = self._fault_response(fault)
        elif lim.global_window.would_exceed(now):
            lim.counters.global_violations += 1
            resp = too_many(lim.global_window.reset_after(now) or 0.05, scope="global", is_global=True)
        else:
            lim.global_window.add(now)
            resp = await handler(request)
        lim.record_status(resp.status, now, shared_scope=resp.headers.get("X-RateLimit-Scope") == "shared")
        fake.rest_log.append((request.method, request.path, resp.status))
        return resp

    def _fault_response(self, fault: Fault) -> web.Response:
        if fault.status == 429:
            return too_many(
                fault.retry_after, scope="global" if fault.is_global else "user", is_global=fault.is_global
            )
        if fault.status == 401:
            return err(401, 0, "401: Unauthorized")
        if fault.status == 403:
            return err(403, 50013, "Missing Permissions")
        return jresp({"message": "upstream error", "code": 0}, status=fault.status)

    def _dispatch_soon(self, event: str, data: Json) -> None:
        task = asyncio.ensure_future(self.fake.dispatch(event, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _body(self, request: web.Request) -> Json:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            raw = form.get("payload_json")
            return json.loads(str(raw)) if raw is not None else {}
        if not request.can_read_body:
            return {}
        data = await request.json()
        return data if isinstance(data, dict) else {}

    def _channel(self, request: web.Request) -> Json | None:
        return self.fake.channels.get(request.match_info["cid"])

    # ------------------------------------------------------------------ meta
    async def get_gateway(self, request: web.Request) -> web.Response:
        return jresp({"url": self.fake.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return jresp({"url": self.fake.gateway_url, "shards": 1, "session_start_limit": limit})

    async def users_me(self, request: web.Request) -> web.Response:
        return jresp(self.fake.bot_user)

    async def app_info(self, request: web.Request) -> web.Response:
        f = self.fake
        return jresp(
            {
                "id": f.app_id,
                "name": "supportbot",
                "icon": None,
                "description": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": f.users["erin"],
                "verify_key": "00" * 32,
                "flags": 0,
                "summary": "",
                "team": None,
            }
        )

    # ------------------------------------------------------------------ channels
    async def get_channel(self, request: web.Request) -> web.Response:
        ch = self._channel(request)
        return jresp(ch) if ch is not None else err(404, 10003, "Unknown Channel")

    async def create_dm(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        rid = str(body.get("recipient_id", ""))
        if not any(u["id"] == rid for u in self.fake.users.values()):
            return form_error("recipient_id", "Unknown user")
        return jresp(self.fake.dm_channel_for(rid))

    async def get_messages(self, request: web.Request) -> web.Response:
        ch = self._channel(request)
        if ch is None:
            return err(404, 10003, "Unknown Channel")
        try:
            limit = int(request.query.get("limit", "50"))
        except ValueError:
            return form_error("limit", "not an integer")
        if not 1 <= limit <= 100:
            return form_error("limit", "must be between 1 and 100")
        msgs = sorted(self.fake.messages.get(ch["id"], []), key=lambda m: int(m["id"]))
        q = request.query
        if "after" in q:
            after = int(q["after"])
            picked = [m for m in msgs if int(m["id"]) > after][:limit]
        elif "before" in q:
            before = int(q["before"])
            picked = [m for m in msgs if int(m["id"]) < before][-limit:]
        else:
            picked = msgs[-limit:]
        return jresp(list(reversed(picked)))  # Discord answers newest first

    # ------------------------------------------------------------------ messages
    def _rate_headers(self, cid: str, now: float) -> dict[str, str]:
        win = self.fake.limits.channel(cid)
        return {
            "X-RateLimit-Limit": str(win.limit),
            "X-RateLimit-Remaining": str(max(0, win.limit - win.count(now))),
            "X-RateLimit-Reset-After": f"{max(win.reset_after(now), 0.001):.3f}",
            "X-RateLimit-Bucket": "fake-message-create",
        }

    def _pace(self, cid: str, now: float) -> web.Response | None:
        """Discord's ~5 messages / 5 s per channel: over it, a 429 and a counted violation."""
        win = self.fake.limits.channel(cid)
        if win.would_exceed(now):
            self.fake.limits.counters.pace_violations[cid] += 1
            return too_many(win.reset_after(now), scope="user", bucket="fake-message-create")
        win.add(now)
        return None

    def _build_bot_message(self, ch: Json, body: Json, ref: Json | None) -> Json | web.Response:
        content = str(body.get("content") or "")
        embeds = list(body.get("embeds") or [])
        components = list(body.get("components") or [])
        if len(content) > MAX_CONTENT:
            return form_error("content", f"Must be {MAX_CONTENT} or fewer in length.")
        if not content.strip() and not embeds and not components:
            return err(400, 50006, "Cannot send an empty message")
        problem = validate_embeds(embeds)
        if problem:
            return form_error("embeds", problem)
        problem = validate_components(components)
        if problem:
            return form_error("components", problem)
        fake = self.fake
        allowed = body.get("allowed_mentions")
        parse = set(allowed.get("parse", [])) if isinstance(allowed, dict) else {"users", "roles", "everyone"}
        allowed_users = (
            {str(u) for u in (allowed or {}).get("users", [])} if isinstance(allowed, dict) else set()
        )
        allowed_roles = (
            {str(r) for r in (allowed or {}).get("roles", [])} if isinstance(allowed, dict) else set()
        )
        users: list[str] = []
        roles: list[str] = []
        for kind, sid in MENTION_RE.findall(content):
            if kind == "&":
                if ("roles" in parse or sid in allowed_roles) and sid not in roles:
                    roles.append(sid)
            elif ("users" in parse or sid in allowed_users) and sid not in users:
                users.append(sid)
        replied = (isinstance(allowed, dict) and bool(allowed.get("replied_user", True))) or allowed is None
        if ref is not None and replied:
            target_author = fake.by_id[ref["message_id"]]["author"]["id"]
            if target_author not in users:
                users.append(target_author)
        mentions = []
        for uid in users:
            try:
                mentions.append(fake.user(uid))
            except Exception:
                continue
        msg = P.message(
            fake.sf(),
            ch["id"],
            ch.get("guild_id"),
            fake.bot_user,
            content,
            mentions=mentions,
            mention_roles=roles,
            reference=ref,
            embeds=embeds,
            components=components,
            nonce=str(body["nonce"]) if body.get("nonce") is not None else None,
        )
        if ref is not None:
            msg["referenced_message"] = fake.by_id[ref["message_id"]]
        return msg

    async def create_message(self, request: web.Request) -> web.Response:
        fake = self.fake
        ch = self._channel(request)
        if ch is None:
            return err(404, 10003, "Unknown Channel")
        if ch["type"] == P.GUILD_FORUM:
            return err(400, 50008, "Cannot send messages in a non-text channel")
        if ch["type"] == P.DM and ch["recipients"][0]["id"] in fake.dms_closed:
            return err(403, 50007, "Cannot send messages to this user")
        body = await self._body(request)
        now = time.monotonic()
        nonce = body.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            return form_error("nonce", "Must be 25 or fewer in length.")
        if nonce is not None and body.get("enforce_nonce"):
            seen = fake.nonces.get((fake.bot_user["id"], str(nonce)))
            if seen is not None and now - seen[0] <= fake.nonce_window and seen[1]["id"] in fake.by_id:
                return jresp(
                    seen[1], headers=self._rate_headers(ch["id"], now)
                )  # same message, not a new one
        ref = None
        raw_ref = body.get("message_reference")
        if isinstance(raw_ref, dict) and raw_ref.get("message_id") is not None:
            target = fake.by_id.get(str(raw_ref["message_id"]))
            if target is not None and target["channel_id"] == ch["id"]:
                ref = {"message_id": target["id"], "channel_id": ch["id"], "guild_id": ch.get("guild_id")}
            elif raw_ref.get("fail_if_not_exists", True):
                return form_error("message_reference", "Unknown message")
        built = self._build_bot_message(ch, body, ref)
        if isinstance(built, web.Response):
            return built
        limited = self._pace(ch["id"], now)
        if limited is not None:
            return limited
        fake._store(built)
        if nonce is not None:
            fake.nonces[(fake.bot_user["id"], str(nonce))] = (now, built)
        self._dispatch_soon("MESSAGE_CREATE", built)
        return jresp(built, headers=self._rate_headers(ch["id"], now))

    async def add_reaction(self, request: web.Request) -> web.Response:
        msg = self.fake.by_id.get(request.match_info["mid"])
        if msg is None or msg["channel_id"] != request.match_info["cid"]:
            return err(404, 10008, "Unknown Message")
        await self.fake._reaction(msg, unquote(request.match_info["emoji"]), self.fake.bot_user)
        return web.Response(status=204)

    # ------------------------------------------------------------------ threads
    async def thread_from_message(self, request: web.Request) -> web.Response:
        fake = self.fake
        ch = self._channel(request)
        if ch is None:
            return err(404, 10003, "Unknown Channel")
        if ch["type"] != P.GUILD_TEXT:
            return err(400, 50024, "Cannot execute action on this channel type")
        mid = request.match_info["mid"]
        starter = fake.by_id.get(mid)
        if starter is None or starter["channel_id"] != ch["id"]:
            return err(404, 10008, "Unknown Message")
        if mid in fake.channels:
            return err(400, 160004, "A thread has already been created for this message")
        body = await self._body(request)
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            return form_error("name", "Must be between 1 and 100 in length.")
        thread = fake._add_channel(
            P.thread_channel(
                mid,
                ch["guild_id"],
                ch["id"],
                name,
                fake.bot_user["id"],
                auto_archive=int(body.get("auto_archive_duration") or 1440),
            )
        )
        starter["thread"] = thread
        self._dispatch_soon("THREAD_CREATE", {**thread, "newly_created": True})
        return jresp(thread, status=201)

    async def thread_in_channel(self, request: web.Request) -> web.Response:
        fake = self.fake
        ch = self._channel(request)
        if ch is None:
            return err(404, 10003, "Unknown Channel")
        body = await self._body(request)
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            return form_error("name", "Must be between 1 and 100 in length.")
        archive = int(body.get("auto_archive_duration") or 1440)
        if ch["type"] == P.GUILD_TEXT:
            kind = int(body.get("type") or P.PRIVATE_THREAD)
            thread = fake._add_channel(
                P.thread_channel(
                    fake.sf(),
                    ch["guild_id"],
                    ch["id"],
                    name,
                    fake.bot_user["id"],
                    auto_archive=archive,
                    kind=kind,
                )
            )
            self._dispatch_soon("THREAD_CREATE", {**thread, "newly_created": True})
            return jresp(thread, status=201)
        if ch["type"] != P.GUILD_FORUM:
            return err(400, 50024, "Cannot execute action on this channel type")
        tag_ids = [str(t) for t in body.get("applied_tags") or []]
        known = {t["id"] for t in ch["available_tags"]}
        if any(t not in known for t in tag_ids):
            return form_error("applied_tags", "Unknown tag")
        first = body.get("message") or {}
        tid = fake.sf()
        thread = P.thread_channel(
            tid,
            ch["guild_id"],
            ch["id"],
            name,
            fake.bot_user["id"],
            applied_tags=tag_ids,
            auto_archive=archive,
        )
        built = self._build_bot_message(thread, first, None)
        if isinstance(built, web.Response):
            return built
        now = time.monotonic()
        limited = self._pace(tid, now)
        if limited is not None:
            return limited
        fake._add_channel(thread)
        built["id"] = tid  # a forum post's starter message has the thread's id
        fake._store(built)
        self._dispatch_soon("THREAD_CREATE", {**thread, "newly_created": True})
        self._dispatch_soon("MESSAGE_CREATE", built)
        return jresp({**thread, "message": built}, status=201)

    # ------------------------------------------------------------------ interactions
    async def interaction_callback(self, request: web.Request) -> web.Response:
        fake = self.fake
        it = fake.interactions.get(request.match_info["iid"])
        if it is None or it.token != request.match_info["itoken"]:
            return err(404, 10062, "Unknown interaction")
        now = time.monotonic()
        if it.acked_at is not None:
            return err(400, 40060, "Interaction has already been acknowledged.")
        if now - it.created > INTERACTION_DEADLINE:
            fake.limits.counters.interactions_late += 1
            return err(404, 10062, "Unknown interaction")
        body = await self._body(request)
        kind = int(body.get("type") or 0)
        if kind not in (4, 5, 6, 7):
            return form_error("type", "unsupported callback type")
        it.acked_at = now
        it.ack_type = kind
        fake.limits.counters.interactions_acked += 1
        if kind == 4:
            data = body.get("data") or {}
            ch = fake.channels[it.channel_id]
            built = self._build_bot_message(ch, data, None)
            if isinstance(built, web.Response):
                return built
            fake._store(built)
            self._dispatch_soon("MESSAGE_CREATE", built)
        if request.query.get("with_response") in ("1", "true", "True"):
            return jresp(
                {
                    "interaction": {
                        "id": it.id,
                        "type": 3,
                        "response_message_loading": kind == 5,
                        "response_message_ephemeral": False,
                    }
                }
            )
        return web.Response(status=204)
