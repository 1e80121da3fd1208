"""The fake X's test-side operations over HTTP, under ``/_sandbox/`` (for a simulated community).

* ``POST /_sandbox/users`` ``{"username", "id"?, "accepts_dms"?}``
* ``POST /_sandbox/mentions`` ``{"author", "text"}`` -> the post (``@bot text``)
* ``POST /_sandbox/posts`` ``{"author", "text", "in_reply_to"?}`` -> the post
* ``POST /_sandbox/dms`` ``{"author", "text"}`` -> the DM event
* ``GET /_sandbox/bot/posts`` and ``GET /_sandbox/bot/dms`` -> what the bot sent
* ``GET /_sandbox/posts?since_id=`` -> every post, oldest first
* ``POST /_sandbox/faults`` ``{"kind", "endpoint"?, "times"?, "reset_in"?, "delay"?, "after"?}``
* ``GET /_sandbox/stats`` -> requests, 429s and violations per endpoint
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from sandbox.x.world import WorldError

if TYPE_CHECKING:
    from sandbox.x.fake import FakeX, FaultKind

FAULT_KINDS = {
    "rate_limit",
    "rate_limit_no_headers",
    "server_error",
    "unavailable",
    "html_error",
    "slow",
    "auth",
}


def add_control_routes(app: web.Application, fake: FakeX) -> None:
    async def body_of(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise web.HTTPBadRequest(text="expected a JSON object") from exc
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        return body

    def guarded(result: Any) -> web.Response:
        return web.json_response(result)

    async def users(request: web.Request) -> web.Response:
        b = await body_of(request)
        try:
            return guarded(
                fake.add_user(
                    str(b["username"]), user_id=b.get("id"), accepts_dms=bool(b.get("accepts_dms", True))
                )
            )
        except (KeyError, WorldError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc

    async def mentions(request: web.Request) -> web.Response:
        b = await body_of(request)
        try:
            return guarded(fake.mention(str(b["author"]), str(b["text"])))
        except (KeyError, WorldError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc

    async def posts(request: web.Request) -> web.Response:
        b = await body_of(request)
        try:
            if b.get("in_reply_to"):
                return guarded(fake.reply(str(b["author"]), str(b["in_reply_to"]), str(b["text"])))
            return guarded(fake.post(str(b["author"]), str(b["text"])))
        except (KeyError, WorldError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc

    async def dms(request: web.Request) -> web.Response:
        b = await body_of(request)
        try:
            return guarded(fake.dm(str(b["author"]), str(b["text"])))
        except (KeyError, WorldError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc

    async def all_posts(request: web.Request) -> web.Response:
        since = int(request.query.get("since_id", "0"))
        return guarded([p for p in fake.world.posts.values() if int(p["id"]) > since])

    async def bot_posts(request: web.Request) -> web.Response:
        return guarded(fake.bot_posts())

    async def bot_dms(request: web.Request) -> web.Response:
        return guarded(fake.bot_dms())

    async def faults(request: web.Request) -> web.Response:
        b = await body_of(request)
        kind = str(b.get("kind"))
        if kind not in FAULT_KINDS:
            raise web.HTTPBadRequest(text=f"kind must be one of {sorted(FAULT_KINDS)}")
        fake.inject(
            cast("FaultKind", kind),
            str(b.get("endpoint", "*")),
            times=int(b.get("times", 1)),
            reset_in=float(b.get("reset_in", 1.0)),
            delay=float(b.get("delay", 0.5)),
            after=int(b.get("after", 0)),
        )
        return guarded({"ok": True})

    async def stats(request: web.Request) -> web.Response:
        return guarded(fake.stats())

    r = app.router
    r.add_post("/_sandbox/users", users)
    r.add_post("/_sandbox/mentions", mentions)
    r.add_post("/_sandbox/posts", posts)
    r.add_get("/_sandbox/posts", all_posts)
    r.add_post("/_sandbox/dms", dms)
    r.add_get("/_sandbox/bot/posts", bot_posts)
    r.add_get("/_sandbox/bot/dms", bot_dms)
    r.add_post("/_sandbox/faults", faults)
    r.add_get("/_sandbox/stats", stats)
