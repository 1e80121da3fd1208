"""The fake's test-side API over HTTP, under ``/_sandbox/`` (for a simulated community).

GET  /_sandbox/state                  ids (guild, channels, users, roles), counters
POST /_sandbox/messages   {"channel_id", "content", "author": "carol", "reply_to", "mention_bot"}
POST /_sandbox/forum_posts {"title", "content", "author", "tags": ["billing"]}
POST /_sandbox/threads    {"message_id", "name", "author"}       a user starts a thread from a message
POST /_sandbox/dms        {"content", "author"}
POST /_sandbox/edits      {"message_id", "content"}
POST /_sandbox/deletes    {"message_id"}
POST /_sandbox/reactions  {"message_id", "emoji", "user"}
POST /_sandbox/clicks     {"message_id", "custom_id", "user"}     -> {"interaction_id"}
GET  /_sandbox/sent[?channel_id=]     messages the bot sent
GET  /_sandbox/interactions            clicks and whether/when they were acknowledged
POST /_sandbox/faults     {"status": 429, "method": "POST", "path_contains": "/messages", "times": 1,
                           "retry_after": 2.0, "global": false, "after_effect": false}
POST /_sandbox/gateway/<action>        drop | close | hold | release | expire | reconnect | invalidate
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from sandbox.discord.fake import FakeDiscord

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Op = Callable[[dict[str, Any]], Awaitable[Any]]


def add_control_routes(r: web.UrlDispatcher, fake: FakeDiscord) -> None:
    from sandbox.discord.world import FakeError

    def guarded(fn: Op) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                body = await request.json() if request.body_exists else {}
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
                return web.json_response(await fn({**request.query, **body}))
            except FakeError as exc:
                return web.json_response({"error": str(exc)}, status=404)
            except (KeyError, TypeError, ValueError) as exc:
                return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)

        return handler

    async def state(b: dict[str, Any]) -> Any:
        return fake.state()

    async def messages(b: dict[str, Any]) -> Any:
        return await fake.post(
            str(b.get("channel_id") or fake.text_channel_id),
            str(b["content"]),
            author=str(b.get("author", "carol")),
            reply_to=str(b["reply_to"]) if b.get("reply_to") else None,
            mention_bot=bool(b.get("mention_bot", False)),
        )

    async def forum_posts(b: dict[str, Any]) -> Any:
        thread, msg = await fake.forum_post(
            str(b["title"]),
            str(b["content"]),
            author=str(b.get("author", "carol")),
            tags=list(b.get("tags", [])),
        )
        return {"thread": thread, "message": msg}

    async def threads(b: dict[str, Any]) -> Any:
        return await fake.start_thread(
            str(b["message_id"]), str(b["name"]), author=str(b.get("author", "carol"))
        )

    async def dms(b: dict[str, Any]) -> Any:
        return await fake.dm(str(b["content"]), author=str(b.get("author", "carol")))

    async def edits(b: dict[str, Any]) -> Any:
        return await fake.edit(str(b["message_id"]), str(b["content"]))

    async def deletes(b: dict[str, Any]) -> Any:
        await fake.delete(str(b["message_id"]))
        return {"deleted": str(b["message_id"])}

    async def reactions(b: dict[str, Any]) -> Any:
        await fake.react(str(b["message_id"]), str(b["emoji"]), user=str(b.get("user", "carol")))
        return {"ok": True}

    async def clicks(b: dict[str, Any]) -> Any:
        it = await fake.click(str(b["message_id"]), str(b["custom_id"]), user=str(b.get("user", "carol")))
        return {"interaction_id": it.id}

    async def sent(b: dict[str, Any]) -> Any:
        cid = b.get("channel_id")
        return fake.bot_messages(str(cid) if cid else None)

    async def interactions(b: dict[str, Any]) -> Any:
        now = time.monotonic()
        return [
            {
                "id": it.id,
                "message_id": it.message_id,
                "custom_id": it.custom_id,
                "user_id": it.user_id,
                "acked": it.acked_at is not None,
                "ack_type": it.ack_type,
                "ack_seconds": None if it.acked_at is None else round(it.acked_at - it.created, 3),
                "age_seconds": round(now - it.created, 3),
            }
            for it in fake.interactions.values()
        ]

    async def faults(b: dict[str, Any]) -> Any:
        fake.fail_next(
            int(b["status"]),
            method=str(b.get("method", "POST")),
            path_contains=str(b.get("path_contains", "/messages")),
            times=int(b.get("times", 1)),
            retry_after=float(b.get("retry_after", 1.0)),
            is_global=bool(b.get("global", False)),
            after_effect=bool(b.get("after_effect", False)),
        )
        return {"pending": len(fake.faults)}

    def gateway_action(action: str) -> Op:
        async def op(b: dict[str, Any]) -> Any:
            if action == "drop":
                await fake.drop_connection(abrupt=True)
            elif action == "close":
                await fake.drop_connection(abrupt=False, code=int(b.get("code", 4000)))
            elif action == "hold":
                fake.hold_gateway()
            elif action == "release":
                fake.release_gateway()
            elif action == "expire":
                fake.expire_sessions()
            elif action == "reconnect":
                await fake.send_reconnect()
            elif action == "invalidate":
                await fake.send_invalid_session(bool(b.get("resumable", False)))
            return {"ok": True, "connected": fake.connected}

        return op

    r.add_get("/_sandbox/state", guarded(state))
    r.add_post("/_sandbox/messages", guarded(messages))
    r.add_post("/_sandbox/forum_posts", guarded(forum_posts))
    r.add_post("/_sandbox/threads", guarded(threads))
    r.add_post("/_sandbox/dms", guarded(dms))
    r.add_post("/_sandbox/edits", guarded(edits))
    r.add_post("/_sandbox/deletes", guarded(deletes))
    r.add_post("/_sandbox/reactions", guarded(reactions))
    r.add_post("/_sandbox/clicks", guarded(clicks))
    r.add_get("/_sandbox/sent", guarded(sent))
    r.add_get("/_sandbox/interactions", guarded(interactions))
    r.add_post("/_sandbox/faults", guarded(faults))
    for action in ("drop", "close", "hold", "release", "expire", "reconnect", "invalidate"):
        r.add_post(f"/_sandbox/gateway/{action}", guarded(gateway_action(action)))
