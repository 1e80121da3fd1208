"""A fake of the X API v2 endpoints the bot uses (aiohttp), for the real tweepy to talk to.

Bot side (the real protocol, JSON over HTTP):

* ``GET /2/users/me``; ``GET /2/users/:id`` (lookup)
* ``GET /2/users/:id/mentions`` with ``since_id``, ``until_id``, ``pagination_token``,
  ``max_results`` (5..100), ``expansions`` (``author_id``, ``referenced_tweets.id``,
  ``in_reply_to_user_id``, ``entities.mentions.username``), ``tweet.fields``, ``user.fields``;
  newest first; only the latest ``mention_window`` (800) mentions are reachable, like X.
* ``GET /2/tweets/:id``
* ``POST /2/tweets`` with ``text``, ``reply.in_reply_to_tweet_id``, ``reply_settings``. Refused
  like the real API: over 280 weighted characters, duplicate content, and a reply to a post that
  neither mentions the bot nor is the bot's own ("not been mentioned or otherwise engaged").
* ``GET /2/dm_events`` (newest first, ``pagination_token``, ``max_results`` 1..100,
  ``dm_event.fields``, ``event_types``); ``POST /2/dm_conversations/with/:id/messages`` and
  ``POST /2/dm_conversations/:id/messages``.

Auth: the bearer token for app-context reads, OAuth 1.0a (consumer key and access token are
checked, signatures are not) for user-context calls; a bearer token on a user-context endpoint
gets 403 "Unsupported Authentication", as on X.

Every answer carries ``x-rate-limit-*`` headers from per-endpoint windows with the real per-user
limits (:mod:`sandbox.x.limits`). A request that arrives while its window is spent gets a 429
and is counted as a *violation*: a well-behaved client never makes one.

Test side: the Python methods below (``mention``, ``reply``, ``dm``, ``bot_posts``, ``inject``,
``stats`` ...) and the same over HTTP under ``/_sandbox/`` (:mod:`sandbox.x.control`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from sandbox.x.limits import RateWindows
from sandbox.x.textlen import LIMIT, weighted_length
from sandbox.x.world import REPLY_SETTINGS, Json, World, WorldError

log = logging.getLogger("sandbox.x")

FaultKind = Literal[
    "rate_limit", "rate_limit_no_headers", "server_error", "unavailable", "html_error", "slow", "auth"
]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DM_MAX = 10_000
DEFAULT_TWEET_FIELDS = frozenset({"id", "text", "edit_history_tweet_ids"})
DEFAULT_USER_FIELDS = frozenset({"id", "name", "username"})
DEFAULT_DM_FIELDS = frozenset({"id", "event_type", "text"})
USER_CONTEXT_ONLY = frozenset({"me", "create_tweet", "dm_events", "create_dm"})
NOT_ENGAGED = (
    "Reply to this conversation is not allowed because you have not been mentioned or otherwise "
    "engaged by the author of the post you are replying to."
)

# canonical route -> endpoint key
_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/2/users/me"): "me",
    ("GET", "/2/users/{id}"): "user_lookup",
    ("GET", "/2/users/{id}/mentions"): "mentions",
    ("GET", "/2/tweets/{id}"): "tweet_lookup",
    ("POST", "/2/tweets"): "create_tweet",
    ("GET", "/2/dm_events"): "dm_events",
    ("POST", "/2/dm_conversations/with/{participant_id}/messages"): "create_dm",
    ("POST", "/2/dm_conversations/{conversation_id}/messages"): "create_dm",
}


@dataclass
class Fault:
    kind: FaultKind
    endpoint: str = "*"  # an endpoint key (mentions, create_tweet, dm_events, ...) or "*"
    times: int = 1
    reset_in: float = 1.0  # seconds until x-rate-limit-reset / Retry-After
    delay: float = 0.5  # for "slow"
    after: int = 0  # let this many matching requests through first


@dataclass
class RequestRecord:
    endpoint: str
    method: str
    path: str
    query: dict[str, str]
    body: Any
    auth: str  # "Bearer", "OAuth" or ""
    status: int
    at: float  # time.time()


def _problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    body = {"title": title, "detail": detail, "type": "about:blank", "status": status, **extra}
    return web.json_response(body, status=status)


class FakeX:
    def __init__(
        self,
        *,
        bot_id: str = "1000",
        bot_username: str = "acme_support",
        bearer_token: str = "TEST-BEARER",
        consumer_key: str = "TEST-CONSUMER-KEY",
        access_token: str = "TEST-ACCESS-TOKEN",
        mention_window: int = 800,
        limits: Mapping[str, tuple[int, float]] | None = None,
    ) -> None:
        self.world = World(bot_id=bot_id, bot_username=bot_username)
        self.bearer_token = bearer_token
        self.consumer_key = consumer_key
        self.access_token = access_token
        self.mention_window = mention_window
        self.windows = RateWindows(limits)
        self.faults: list[Fault] = []
        self.requests: list[RequestRecord] = []
        self.counts: Counter[str] = Counter()  # requests per endpoint key
        self.throttled: Counter[str] = Counter()  # 429 answers per endpoint key
        self.violations: Counter[str] = Counter()  # requests made while the window was spent
        self.rejected: list[Json] = []  # posts / DMs refused, with the reason
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0

    # ================================================================== lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        from sandbox.x.control import add_control_routes

        app = web.Application(middlewares=[self._api_middleware])
        r = app.router
        r.add_get("/2/users/me", self._me)
        r.add_get("/2/users/{id}/mentions", self._mentions)
        r.add_get("/2/users/{id}", self._user_lookup)
        r.add_get("/2/tweets/{id}", self._tweet_lookup)
        r.add_post("/2/tweets", self._create_tweet)
        r.add_get("/2/dm_events", self._dm_events)
        r.add_post("/2/dm_conversations/with/{participant_id}/messages", self._create_dm)
        r.add_post("/2/dm_conversations/{conversation_id}/messages", self._create_dm)
        add_control_routes(app, self)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.host = host
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ================================================================== test-side API
    @property
    def bot(self) -> Json:
        return self.world.users[self.world.bot_id]

    def add_user(self, username: str, *, user_id: str | None = None, accepts_dms: bool = True) -> Json:
        return self.world.add_user(username, user_id=user_id, accepts_dms=accepts_dms)

    def mention(self, author: str, text: str) -> Json:
        """``author`` posts ``@bot text`` (a new conversation)."""
        return self.world.user_post(author, f"@{self.world.bot_username} {text}")

    def post(self, author: str, text: str) -> Json:
        """A post exactly as given (it mentions the bot only if the text does)."""
        return self.world.user_post(author, text)

    def reply(self, author: str, to_post_id: str, text: str) -> Json:
        """``author`` replies to a post; like the X app, the chain's handles are prepended."""
        return self.world.user_post(author, text, in_reply_to=to_post_id)

    def dm(self, author: str, text: str) -> Json:
        """``author`` sends the bot a direct message."""
        user = self.world.user(author)
        return self.world.add_dm(user["id"], self.world.bot_id, text)

    def bot_posts(self) -> list[Json]:
        return self.world.bot_posts()

    def bot_dms(self) -> list[Json]:
        return self.world.bot_dms()

    def bot_texts(self) -> list[str]:
        """The texts of the bot's posts, as people see them, oldest first."""
        return [self.world.visible_text(p) for p in self.world.bot_posts()]

    def inject(
        self,
        kind: FaultKind,
        endpoint: str = "*",
        *,
        times: int = 1,
        reset_in: float = 1.0,
        delay: float = 0.5,
        after: int = 0,
    ) -> None:
        """Answer the next ``times`` requests to ``endpoint`` (after ``after`` normal ones) with ``kind``."""
        self.faults.append(Fault(kind, endpoint, times, reset_in, delay, after))

    def request_count(self, endpoint: str) -> int:
        return self.counts[endpoint]

    def stats(self) -> Json:
        return {
            "requests": dict(self.counts),
            "throttled": dict(self.throttled),
            "violations": dict(self.violations),
            "rejected": len(self.rejected),
            "bot_posts": len(self.world.bot_posts()),
            "bot_dms": len(self.world.bot_dms()),
        }

    # ================================================================== plumbing
    @web.middleware
    async def _api_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_sandbox/"):
            return await handler(request)
        resource = request.match_info.route.resource
        canonical = resource.canonical if resource is not None else request.path
        endpoint = _ROUTES.get((request.method, canonical), "unknown")
        body: Any = None
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = {"_unparsable": await request.text()}
        auth_header = request.headers.get("Authorization", "")
        record = RequestRecord(
            endpoint, request.method, request.path, dict(request.query), body,
            auth_header.split(" ", 1)[0], 0, time.time(),
        )  # fmt: skip
        self.requests.append(record)
        self.counts[endpoint] += 1
        response = await self._answer(request, endpoint, auth_header, handler)
        record.status = response.status
        if response.status == 429:
            self.throttled[endpoint] += 1
        return response

    async def _answer(
        self, request: web.Request, endpoint: str, auth_header: str, handler: Handler
    ) -> web.StreamResponse:
        fault = self._take_fault(endpoint)
        window = self.windows.get(endpoint)
        if fault is not None:
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "rate_limit":
                window.roll(time.time())
                window.exhaust_until(math.ceil(time.time() + fault.reset_in))
                return self._too_many(window.headers())
            elif fault.kind == "rate_limit_no_headers":
                return self._too_many({})
            elif fault.kind == "server_error":
                return _problem(500, "Internal Server Error", "Something went wrong on our side.")
            elif fault.kind == "unavailable":
                response = _problem(503, "Service Unavailable", "Service Unavailable")
                response.headers["Retry-After"] = str(math.ceil(fault.reset_in))
                return response
            elif fault.kind == "html_error":
                return web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html")
            elif fault.kind == "auth":
                return _problem(401, "Unauthorized", "Unauthorized")
        denied = self._check_auth(endpoint, auth_header)
        if denied is not None:
            return denied
        if not window.take(time.time()):
            self.violations[endpoint] += 1
            return self._too_many(window.headers())
        answer = await handler(request)
        answer.headers.update(window.headers())
        return answer

    def _take_fault(self, endpoint: str) -> Fault | None:
        for fault in self.faults:
            if fault.endpoint in ("*", endpoint):
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _too_many(self, headers: Mapping[str, str]) -> web.Response:
        response = _problem(429, "Too Many Requests", "Too Many Requests")
        response.headers.update(headers)
        return response

    def _check_auth(self, endpoint: str, header: str) -> web.Response | None:
        if header.startswith("Bearer "):
            if header.removeprefix("Bearer ") != self.bearer_token:
                return _problem(401, "Unauthorized", "Unauthorized")
            if endpoint in USER_CONTEXT_ONLY:
                return _problem(
                    403,
                    "Unsupported Authentication",
                    "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint. "
                    "Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
                )
            return None
        if header.startswith("OAuth "):
            params = dict(re.findall(r'(\w+)="([^"]*)"', header))
            if params.get("oauth_consumer_key") == self.consumer_key and params.get("oauth_token") == (
                self.access_token
            ):
                return None
        return _problem(401, "Unauthorized", "Unauthorized")

    # ================================================================== field selection
    @staticmethod
    def _fields(request: web.Request, name: str, default: frozenset[str]) -> set[str]:
        raw = request.query.get(name, "")
        return set(default) | {f for f in raw.split(",") if f}

    @staticmethod
    def _pick(obj: Json, fields: set[str]) -> Json:
        return {k: v for k, v in obj.items() if k in fields}

    def _includes(self, request: web.Request, posts: list[Json]) -> Json:
        expansions = set(filter(None, request.query.get("expansions", "").split(",")))
        user_fields = self._fields(request, "user.fields", DEFAULT_USER_FIELDS)
        tweet_fields = self._fields(request, "tweet.fields", DEFAULT_TWEET_FIELDS)
        user_ids: list[str] = []
        referenced: list[Json] = []
        for post in posts:
            if "author_id" in expansions:
                user_ids.append(post["author_id"])
            if "in_reply_to_user_id" in expansions and "in_reply_to_user_id" in post:
                user_ids.append(post["in_reply_to_user_id"])
            if "entities.mentions.username" in expansions:
                user_ids += [m["id"] for m in post.get("entities", {}).get("mentions", [])]
            if "referenced_tweets.id" in expansions:
                for ref in post.get("referenced_tweets", []):
                    target = self.world.posts.get(ref["id"])
                    if target is not None and target not in referenced:
                        referenced.append(target)
        includes: Json = {}
        if user_ids:
            seen = dict.fromkeys(user_ids)
            includes["users"] = [self._pick(self.world.users[u], user_fields) for u in seen]
        if referenced:
            includes["tweets"] = [self._pick(p, tweet_fields) for p in referenced]
        return includes

    # ================================================================== endpoints
    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"data": self._pick(self.bot, self._fields(request, "user.fields", DEFAULT_USER_FIELDS))}
        )

    async def _user_lookup(self, request: web.Request) -> web.Response:
        uid = request.match_info["id"]
        user = self.world.users.get(uid)
        if user is None:
            return web.json_response({"errors": [self._not_found("user", uid)]})
        return web.json_response(
            {"data": self._pick(user, self._fields(request, "user.fields", DEFAULT_USER_FIELDS))}
        )

    async def _tweet_lookup(self, request: web.Request) -> web.Response:
        pid = request.match_info["id"]
        post = self.world.posts.get(pid)
        if post is None:
            return web.json_response({"errors": [self._not_found("tweet", pid)]})
        body: Json = {"data": self._pick(post, self._fields(request, "tweet.fields", DEFAULT_TWEET_FIELDS))}
        includes = self._includes(request, [post])
        if includes:
            body["includes"] = includes
        return web.json_response(body)

    @staticmethod
    def _not_found(kind: str, rid: str) -> Json:
        return {
            "value": rid,
            "detail": f"Could not find {kind} with id: [{rid}].",
            "title": "Not Found Error",
            "resource_type": kind,
            "parameter": "id",
            "resource_id": rid,
            "type": "https://api.twitter.com/2/problems/resource-not-found",
        }

    async def _mentions(self, request: web.Request) -> web.Response:
        q = request.query
        if request.match_info["id"] != self.world.bot_id:
            return _problem(403, "Forbidden", "Mentions of other users are not available to this app.")
        try:
            max_results = int(q.get("max_results", "10"))
            since_id = int(q.get("since_id", "0"))
            until_id = int(q["until_id"]) if "until_id" in q else None
            below = self._decode_token(q["pagination_token"]) if "pagination_token" in q else None
        except ValueError:
            return _problem(400, "Invalid Request", "One or more parameters to your request was invalid.")
        if not 5 <= max_results <= 100:
            return _problem(
                400,
                "Invalid Request",
                f"The `max_results` query parameter value [{max_results}] is not between 5 and 100",
            )
        candidates = [
            p
            for p in reversed(self.world.mentions_of_bot(self.mention_window))
            if int(p["id"]) > since_id
            and (until_id is None or int(p["id"]) < until_id)
            and (below is None or int(p["id"]) < below)
        ]
        page = candidates[:max_results]
        if not page:
            return web.json_response({"meta": {"result_count": 0}})
        fields = self._fields(request, "tweet.fields", DEFAULT_TWEET_FIELDS)
        meta: Json = {"result_count": len(page), "newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}
        if len(candidates) > len(page):
            meta["next_token"] = self._encode_token(int(page[-1]["id"]))
        body: Json = {"data": [self._pick(p, fields) for p in page], "meta": meta}
        includes = self._includes(request, page)
        if includes:
            body["includes"] = includes
        return web.json_response(body)

    @staticmethod
    def _encode_token(below: int) -> str:
        return base64.b32encode(str(below).encode()).decode().rstrip("=").lower()

    @staticmethod
    def _decode_token(token: str) -> int:
        padded = token.upper() + "=" * (-len(token) % 8)
        try:
            return int(base64.b32decode(padded).decode())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError("bad pagination token") from exc

    async def _create_tweet(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict):
            return _problem(400, "Invalid Request", "The request body is not a JSON object.")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return _problem(400, "Invalid Request", "One or more parameters to your request was invalid.")
        reply = body.get("reply") or {}
        parent_id = reply.get("in_reply_to_tweet_id")
        settings = body.get("reply_settings", "everyone")
        refusal: web.Response | None = None
        if settings not in REPLY_SETTINGS:
            refusal = _problem(
                400, "Invalid Request", f"reply_settings [{settings}] is not one of {sorted(REPLY_SETTINGS)}"
            )
        elif weighted_length(text) > LIMIT:
            refusal = _problem(400, "Invalid Request", "Your Tweet text is too long.")
        elif parent_id is not None and str(parent_id) not in self.world.posts:
            refusal = _problem(
                403, "Forbidden", "You attempted to reply to a Tweet that is deleted or not visible to you."
            )
        elif parent_id is not None and not self.world.bot_may_reply(self.world.posts[str(parent_id)]):
            refusal = _problem(403, "Forbidden", NOT_ENGAGED)
        elif any(self.world.visible_text(p) == text for p in self.world.bot_posts()):
            refusal = _problem(
                403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
            )
        if refusal is not None:
            self.rejected.append(
                {"kind": "post", "body": body, "status": refusal.status, "reason": refusal.text}
            )
            return refusal
        post = self.world.create_post(
            self.world.bot_id,
            text,
            in_reply_to=str(parent_id) if parent_id is not None else None,
            reply_settings=settings,
        )
        return web.json_response(
            {"data": {"id": post["id"], "text": post["text"], "edit_history_tweet_ids": [post["id"]]}},
            status=201,
        )

    async def _dm_events(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            max_results = int(q.get("max_results", "100"))
            below = self._decode_token(q["pagination_token"]) if "pagination_token" in q else None
        except ValueError:
            return _problem(400, "Invalid Request", "One or more parameters to your request was invalid.")
        if not 1 <= max_results <= 100:
            return _problem(400, "Invalid Request", "max_results must be between 1 and 100")
        types = set(filter(None, q.get("event_types", "").split(","))) or {"MessageCreate"}
        bot = self.world.bot_id
        events = [
            e
            for e in reversed(self.world.dm_events)
            if bot in e["participant_ids"]
            and e["event_type"] in types
            and (below is None or int(e["id"]) < below)
        ]
        page = events[:max_results]
        if not page:
            return web.json_response({"meta": {"result_count": 0}})
        fields = self._fields(request, "dm_event.fields", DEFAULT_DM_FIELDS)
        meta: Json = {"result_count": len(page), "newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}
        if len(events) > len(page):
            meta["next_token"] = self._encode_token(int(page[-1]["id"]))
        body: Json = {"data": [self._pick(e, fields) for e in page], "meta": meta}
        expansions = set(filter(None, q.get("expansions", "").split(",")))
        wanted: list[str] = []
        if "sender_id" in expansions:
            wanted += [e["sender_id"] for e in page]
        if "participant_ids" in expansions:
            wanted += [p for e in page for p in e["participant_ids"]]
        if wanted:
            user_fields = self._fields(request, "user.fields", DEFAULT_USER_FIELDS)
            body["includes"] = {
                "users": [self._pick(self.world.users[u], user_fields) for u in dict.fromkeys(wanted)]
            }
        return web.json_response(body)

    async def _create_dm(self, request: web.Request) -> web.Response:
        body = await request.json()
        text = body.get("text") if isinstance(body, dict) else None
        bot = self.world.bot_id
        if "participant_id" in request.match_info:
            other = request.match_info["participant_id"]
        else:
            ids = request.match_info["conversation_id"].split("-")
            if len(ids) != 2 or bot not in ids:
                return _problem(403, "Forbidden", "You are not a participant of this conversation.")
            other = ids[0] if ids[1] == bot else ids[1]
        refusal: web.Response | None = None
        if not isinstance(text, str) or not text.strip():
            refusal = _problem(400, "Invalid Request", "One or more parameters to your request was invalid.")
        elif len(text) > DM_MAX:
            refusal = _problem(
                400, "Invalid Request", "The text of your direct message is over the max character limit."
            )
        elif other not in self.world.users or other == bot:
            refusal = _problem(400, "Invalid Request", f"The participant_id [{other}] is not valid.")
        elif not self.world.accepts_dms.get(other, True):
            refusal = _problem(403, "Forbidden", "You cannot send messages to this user.")
        if refusal is not None:
            self.rejected.append(
                {"kind": "dm", "body": body, "status": refusal.status, "reason": refusal.text}
            )
            return refusal
        assert isinstance(text, str)
        event = self.world.add_dm(bot, other, text)
        return web.json_response(
            {"data": {"dm_conversation_id": event["dm_conversation_id"], "dm_event_id": event["id"]}},
            status=201,
        )


__all__ = ["FakeX", "Fault", "FaultKind", "RequestRecord", "WorldError"]
