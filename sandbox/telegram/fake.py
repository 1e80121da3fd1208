"""A fake Telegram Bot API server (aiohttp) that the real python-telegram-bot talks to.

Bot side (the real protocol): ``POST /bot<token>/<method>`` with form, JSON or query
parameters (PTB JSON-encodes every non-string form field), answered with
``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N, "description": ...,
"parameters": {"retry_after": S}}``. Implemented: getMe, getUpdates (long poll with offset,
limit, timeout, allowed_updates; a newer poll terminates an older one with 409), setWebhook /
deleteWebhook / getWebhookInfo (updates are then POSTed to the webhook, with the secret
header, until it answers 2xx), sendMessage, editMessageText, editMessageReplyMarkup,
answerCallbackQuery, getChat, getChatMember.

It refuses what the real API refuses and that matters here: text over 4096 characters after
entity parsing, unknown chats and threads, markup it cannot parse, a DM to a user who never
opened one, callback data over 64 bytes. It counts every send that goes over Telegram's
per-chat / per-group / overall limits (see :mod:`sandbox.telegram.limits`).

Test side: the Python methods below (``post``, ``dm``, ``edit``, ``press``, ``sent``,
``inject``...) and the same over HTTP under ``/_sandbox/...`` (see :mod:`sandbox.telegram.control`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import copy
import hmac
import itertools
import json
import logging
import socket
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from sandbox.telegram.limits import Limits, RateCounter, retry_after_seconds
from sandbox.telegram.markup import EntityParseError, parse, utf16_len
from sandbox.telegram.world import BOT_ID, BOT_USERNAME, Chat, Json, World, WorldError

log = logging.getLogger("sandbox.telegram")

MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
UPDATE_TYPES = ("message", "edited_message", "callback_query", "channel_post", "edited_channel_post")
DEFAULT_ALLOWED = frozenset(UPDATE_TYPES)

FaultKind = Literal["rate_limit", "server_error", "conflict", "unauthorized", "slow", "malformed"]


@dataclass
class Fault:
    kind: FaultKind
    method: str = "*"  # a Bot API method name, or "*" for any
    times: int = 1
    retry_after: int = 1
    delay: float = 0.5
    status: int = 502


@dataclass
class SentMessage:
    """One message the bot sent, as the platform saw it."""

    chat_id: int
    message_id: int
    text: str  # visible text, after the parse mode was applied
    raw_text: str
    parse_mode: str | None
    thread_id: int | None
    reply_to: int | None
    reply_markup: Json | None
    entities: list[Json]
    mentioned_user_ids: list[int]
    mentioned_usernames: list[str]
    at: float  # monotonic


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    faults_served: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)  # 4xx we answered on our own
    webhook_deliveries: int = 0
    webhook_refusals: int = 0


def _decode_field(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


class ApiError(Exception):
    def __init__(self, code: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


class FakeTelegram:
    """The fake Bot API. ``await start()``, point the bot at ``url``, ``await stop()``."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        limits: Limits | None = None,
        enforce_limits: bool = False,
        webhook_retry_delay: float = 0.2,
        bot_username: str = BOT_USERNAME,
    ) -> None:
        self.token = token
        self.world = World(bot_username=bot_username)
        self.rate = RateCounter(limits)
        self.enforce_limits = enforce_limits
        self.webhook_retry_delay = webhook_retry_delay
        self.stats = Stats()
        self.updates: list[Json] = []
        self.calls: list[tuple[str, Json]] = []
        self.sent_log: list[SentMessage] = []
        self.callback_answers: dict[str, Json] = {}
        self.webhook: Json | None = None
        self._confirmed = 0  # the lowest update_id not yet confirmed
        self._update_ids = itertools.count(10_000)
        self._callback_ids = itertools.count(1)
        self._open_callbacks: set[str] = set()
        self._allowed: frozenset[str] = DEFAULT_ALLOWED
        self._changed = asyncio.Condition()
        self._poll_generation = 0
        self._faults: deque[Fault] = deque()
        self._runner: web.AppRunner | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self._closing = False

    # ================================================================= lifecycle
    @property
    def url(self) -> str:
        """Root URL; the bot's ``api_base_url``. Methods live under ``/bot<token>/``."""
        return f"http://{self.host}:{self.port}"

    @property
    def bot_id(self) -> int:
        return int(self.world.bot["id"])

    def app(self) -> web.Application:
        from sandbox.telegram.control import add_control_routes

        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        add_control_routes(app, self)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self.host, self.port = sock.getsockname()[:2]
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        self._closing = True
        async with self._changed:  # end waiting long polls now rather than at their timeout
            self._changed.notify_all()
        await self._stop_webhook()
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ================================================================= test side: world
    def add_user(
        self, user_id: int, first_name: str, username: str | None = None, is_bot: bool = False
    ) -> Json:
        return self.world.add_user(user_id, first_name, username, is_bot)

    def add_group(
        self,
        chat_id: int,
        title: str,
        *,
        supergroup: bool = True,
        forum: bool = False,
        username: str | None = None,
    ) -> Chat:
        return self.world.add_group(chat_id, title, supergroup=supergroup, forum=forum, username=username)

    def create_topic(self, chat_id: int, name: str, creator_id: int | None = None) -> int:
        """A forum topic; returns its ``message_thread_id`` (the creation message's id)."""
        return self.world.create_topic(chat_id, name, creator_id)

    # ================================================================= test side: users act
    def post(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
    ) -> Json:
        """A user posts ``text`` in a group (or topic), optionally replying to a message."""
        msg = self.world.user_message(chat_id, user_id, text, thread_id=thread_id, reply_to=reply_to)
        self._push({"message": msg})
        return msg

    def dm(self, user_id: int, text: str, *, reply_to: int | None = None) -> Json:
        """A user writes to the bot in private."""
        msg = self.world.user_message(user_id, user_id, text, reply_to=reply_to)
        self._push({"message": msg})
        return msg

    def edit(self, chat_id: int, message_id: int, text: str) -> Json:
        """A user edits an earlier message; an ``edited_message`` update follows."""
        msg = self.world.edit(chat_id, message_id, text)
        self._push({"edited_message": msg})
        return msg

    def press(self, chat_id: int, message_id: int, user_id: int, data: str) -> str:
        """A user presses one of the bot's inline buttons; returns the callback query id."""
        msg = self.world.message(chat_id, message_id)
        buttons = [b for row in (msg.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
        if not any(b.get("callback_data") == data for b in buttons):
            raise ValueError(f"message {chat_id}:{message_id} has no button with data {data!r}")
        cb_id = str(next(self._callback_ids))
        self._open_callbacks.add(cb_id)
        self._push(
            {
                "callback_query": {
                    "id": cb_id,
                    "from": self.world.user(user_id),
                    "message": msg,
                    "chat_instance": str(abs(chat_id)),
                    "data": data,
                }
            }
        )
        return cb_id

    def push_raw(self, body: Json) -> Json:
        """Queue any update body as is (e.g. one a client library cannot read)."""
        return self._push(body)

    def _push(self, body: Json) -> Json:
        # a snapshot: later edits of the same message must not change an update already queued
        update = {"update_id": next(self._update_ids), **copy.deepcopy(body)}
        self.updates.append(update)
        self._notify()
        return update

    def _notify(self) -> None:
        async def wake() -> None:
            async with self._changed:
                self._changed.notify_all()

        with contextlib.suppress(RuntimeError):  # no running loop: nobody is waiting
            asyncio.get_running_loop().create_task(wake())

    # ================================================================= test side: reading
    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        return [s for s in self.sent_log if chat_id is None or s.chat_id == chat_id]

    def pending_updates(self) -> list[Json]:
        # update ids only grow: find the first unconfirmed one by bisection, not a scan of them
        # all (long polls run many times a second; the e2e benchmark keeps tens of thousands)
        start = bisect.bisect_left(self.updates, self._confirmed, key=lambda u: int(u["update_id"]))
        return [u for u in self.updates[start:] if u["update_id"] >= self._confirmed and self._is_allowed(u)]

    @property
    def violations(self) -> int:
        return self.rate.violations.total

    # ================================================================= test side: faults
    def inject(
        self,
        kind: FaultKind,
        method: str = "*",
        *,
        times: int = 1,
        retry_after: int = 1,
        delay: float = 0.5,
        status: int = 502,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with a fault (queued in order)."""
        self._faults.append(Fault(kind, method, times, retry_after, delay, status))

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self._faults:
            if fault.method in ("*", method):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ================================================================= HTTP: bot API
    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _err(code: int, description: str, **parameters: Any) -> web.Response:
        body: Json = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=code)

    async def _params(self, request: web.Request) -> Json:
        params: Json = {k: _decode_field(v) for k, v in request.query.items()}
        if request.method != "POST" or not request.body_exists:
            return params
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        else:
            form = await request.post()
            params.update({k: _decode_field(v) for k, v in form.items() if isinstance(v, str)})
        return params

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.stats.requests[method] += 1
        if not hmac.compare_digest(request.match_info["token"], self.token):
            return self._err(401, "Unauthorized")
        try:
            params = await self._params(request)
        except ValueError:
            return self._err(400, "Bad Request: can't parse request body")
        self.calls.append((method, params))
        fault = self._take_fault(method)
        if fault is not None:
            self.stats.faults_served[fault.kind] += 1
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            else:
                return self._fault_response(fault)
        handler = getattr(self, "_m_" + method, None)
        if handler is None:
            return self._err(404, "Not Found")
        try:
            result = await handler(params)
        except ApiError as exc:
            self.stats.rejected[method] += 1
            return self._err(exc.code, exc.description, **exc.parameters)
        except WorldError as exc:
            self.stats.rejected[method] += 1
            return self._err(exc.code, exc.description)
        except (KeyError, TypeError, ValueError) as exc:
            self.stats.rejected[method] += 1
            return self._err(400, f"Bad Request: invalid parameters ({exc})")
        return self._ok(result)

    def _fault_response(self, fault: Fault) -> web.Response:
        if fault.kind == "rate_limit":
            return self._err(
                429, f"Too Many Requests: retry after {fault.retry_after}", retry_after=fault.retry_after
            )
        if fault.kind == "server_error":
            return self._err(fault.status, "Internal Server Error" if fault.status == 500 else "Bad Gateway")
        if fault.kind == "conflict":
            return self._err(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        if fault.kind == "unauthorized":
            return self._err(401, "Unauthorized")
        return web.Response(status=200, text='{"ok": true, "result": [', content_type="application/json")

    # ----------------------------------------------------------------- methods
    async def _m_getMe(self, p: Json) -> Json:
        return self.world.bot

    async def _m_getUpdates(self, p: Json) -> list[Json]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(p.get("offset") or 0)
        limit = min(100, max(1, int(p.get("limit") or 100)))
        timeout = max(0.0, float(p.get("timeout") or 0))
        if "allowed_updates" in p and p["allowed_updates"] is not None:
            self._allowed = frozenset(p["allowed_updates"]) or DEFAULT_ALLOWED
        if offset > 0:
            self._confirmed = max(self._confirmed, offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()  # an older long poll, if any, is terminated
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                if generation != self._poll_generation:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    )
                pending = self.pending_updates()
                left = deadline - time.monotonic()
                if pending or left <= 0 or self._closing:
                    return pending[:limit]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)

    def _is_allowed(self, update: Json) -> bool:
        return any(k in self._allowed for k in update if k != "update_id")

    async def _m_setWebhook(self, p: Json) -> bool:
        url = str(p.get("url") or "")
        if not url:
            return await self._m_deleteWebhook(p)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname not in ("127.0.0.1", "localhost"):
            raise ApiError(400, "Bad Request: bad webhook: the sandbox delivers to 127.0.0.1 only")
        secret = p.get("secret_token")
        if secret is not None and not (
            1 <= len(str(secret)) <= 256 and all(c.isalnum() or c in "_-" for c in str(secret))
        ):
            raise ApiError(400, "Bad Request: bad webhook: secret token contains unallowed characters")
        if p.get("allowed_updates") is not None:
            self._allowed = frozenset(p["allowed_updates"]) or DEFAULT_ALLOWED
        if p.get("drop_pending_updates"):
            self._confirmed = next(self._update_ids)
        await self._stop_webhook()
        self.webhook = {"url": url, "secret_token": None if secret is None else str(secret)}
        self._webhook_task = asyncio.get_running_loop().create_task(self._deliver_webhooks())
        return True

    async def _m_deleteWebhook(self, p: Json) -> bool:
        await self._stop_webhook()
        self.webhook = None
        if p.get("drop_pending_updates"):
            self._confirmed = next(self._update_ids)
        return True

    async def _m_getWebhookInfo(self, p: Json) -> Json:
        return {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending_updates()),
            "allowed_updates": sorted(self._allowed),
        }

    async def _m_getChat(self, p: Json) -> Json:
        chat = self.world.chat(int(p["chat_id"]))
        return {
            **chat.as_json(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
            },
        }

    async def _m_getChatMember(self, p: Json) -> Json:
        self.world.chat(int(p["chat_id"]))
        user_id = int(p["user_id"])
        user = self.world.bot if user_id == self.bot_id else self.world.user(user_id)
        return {"status": "member", "user": user}

    async def _m_sendMessage(self, p: Json) -> Json:
        chat = self.world.chat(int(p["chat_id"]))
        text, entities, raw = self._text(p)
        markup = self._markup(p.get("reply_markup"))
        thread_id = int(p["message_thread_id"]) if p.get("message_thread_id") else None
        if thread_id is not None and thread_id not in chat.topics:
            raise ApiError(400, "Bad Request: message thread not found")
        reply_to = self._reply_to(chat, p.get("reply_parameters"))
        if self.enforce_limits:
            wait = self.rate.would_exceed(chat.id, chat.is_group)
            if wait > 0:
                raise ApiError(429, "Too Many Requests: retry later", retry_after=retry_after_seconds(wait))
        self.rate.record(chat.id, chat.is_group)
        msg = self.world.bot_message(
            chat, text, entities, thread_id=thread_id, reply_to=reply_to, reply_markup=markup
        )
        self.sent_log.append(
            SentMessage(
                chat_id=chat.id,
                message_id=int(msg["message_id"]),
                text=text,
                raw_text=raw,
                parse_mode=p.get("parse_mode"),
                thread_id=thread_id,
                reply_to=reply_to,
                reply_markup=markup,
                entities=entities,
                mentioned_user_ids=_mentioned_ids(entities),
                mentioned_usernames=_mentioned_names(text, entities),
                at=time.monotonic(),
            )
        )
        return msg

    async def _m_editMessageText(self, p: Json) -> Json:
        chat = self.world.chat(int(p["chat_id"]))
        msg = self.world.message(chat.id, int(p["message_id"]))
        if msg.get("from", {}).get("id") != self.bot_id:
            raise ApiError(400, "Bad Request: message can't be edited")
        text, entities, _ = self._text(p)
        if text == msg.get("text") and "reply_markup" not in p:
            raise ApiError(400, "Bad Request: message is not modified")
        edited = self.world.edit(chat.id, msg["message_id"], text, entities)
        if "reply_markup" in p:
            self._set_markup(edited, self._markup(p.get("reply_markup")))
        return edited

    async def _m_editMessageReplyMarkup(self, p: Json) -> Json:
        chat = self.world.chat(int(p["chat_id"]))
        msg = self.world.message(chat.id, int(p["message_id"]))
        if msg.get("from", {}).get("id") != self.bot_id:
            raise ApiError(400, "Bad Request: message can't be edited")
        self._set_markup(msg, self._markup(p.get("reply_markup")))
        return msg

    async def _m_answerCallbackQuery(self, p: Json) -> bool:
        cb_id = str(p["callback_query_id"])
        if cb_id not in self._open_callbacks:
            raise ApiError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        self._open_callbacks.discard(cb_id)
        self.callback_answers[cb_id] = p
        return True

    # ----------------------------------------------------------------- validation
    def _text(self, p: Json) -> tuple[str, list[Json], str]:
        raw = p.get("text")
        if not isinstance(raw, str) or not raw.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        try:
            parsed = parse(raw, p.get("parse_mode"))
        except EntityParseError as exc:
            raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        if not parsed.text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(parsed.text) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        entities = parsed.entities
        if p.get("entities"):
            entities = list(p["entities"])
        return parsed.text, entities, raw

    def _markup(self, markup: Any) -> Json | None:
        if not markup:
            return None
        if not isinstance(markup, dict) or not isinstance(markup.get("inline_keyboard"), list):
            raise ApiError(400, "Bad Request: unsupported reply_markup")
        for row in markup["inline_keyboard"]:
            for button in row:
                if not button.get("text"):
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    @staticmethod
    def _set_markup(msg: Json, markup: Json | None) -> None:
        if markup and markup.get("inline_keyboard"):
            msg["reply_markup"] = markup
        else:
            msg.pop("reply_markup", None)

    def _reply_to(self, chat: Chat, params: Any) -> int | None:
        if not params:
            return None
        if not isinstance(params, dict) or "message_id" not in params:
            raise ApiError(400, "Bad Request: invalid reply parameters")
        if params.get("chat_id") not in (None, chat.id, str(chat.id)):
            raise ApiError(400, "Bad Request: replies to other chats are not supported by the sandbox")
        mid = int(params["message_id"])
        if mid in chat.messages:
            return mid
        if params.get("allow_sending_without_reply"):
            return None
        raise ApiError(400, "Bad Request: message to be replied not found")

    # ================================================================= webhook delivery
    async def _stop_webhook(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _deliver_webhooks(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30), trust_env=False)
        while self.webhook is not None:
            async with self._changed:
                while not self.pending_updates():
                    await self._changed.wait()
            update = self.pending_updates()[0]
            hook = self.webhook
            headers = {"Content-Type": "application/json"}
            if hook.get("secret_token"):
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
            try:
                async with self._http.post(hook["url"], data=json.dumps(update), headers=headers) as resp:
                    await resp.read()
                    delivered = 200 <= resp.status < 300
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.debug("webhook delivery failed: %s", exc)
                delivered = False
            if delivered:
                self.stats.webhook_deliveries += 1
                self._confirmed = max(self._confirmed, int(update["update_id"]) + 1)
            else:
                self.stats.webhook_refusals += 1
                await asyncio.sleep(self.webhook_retry_delay)


def _mentioned_ids(entities: list[Json]) -> list[int]:
    ids: list[int] = []
    for ent in entities:
        if ent.get("type") == "text_mention" and ent.get("user"):
            ids.append(int(ent["user"]["id"]))
        url = str(ent.get("url") or "")
        if ent.get("type") == "text_link" and url.startswith("tg://user?id="):
            ids.append(int(url.removeprefix("tg://user?id=")))
    return ids


def _mentioned_names(text: str, entities: list[Json]) -> list[str]:
    from sandbox.telegram.world import mention_entities

    units = text.encode("utf-16-le")
    names = []
    for ent in mention_entities(text):
        start, length = int(ent["offset"]) * 2, int(ent["length"]) * 2
        names.append(units[start : start + length].decode("utf-16-le").removeprefix("@"))
    in_code = [e for e in entities if e.get("type") in ("code", "pre")]
    return names if not in_code else [n for n in names if f"@{n}" not in _code_text(text, in_code)]


def _code_text(text: str, entities: list[Json]) -> str:
    units = text.encode("utf-16-le")
    return " ".join(
        units[int(e["offset"]) * 2 : (int(e["offset"]) + int(e["length"])) * 2].decode("utf-16-le")
        for e in entities
    )


__all__ = ["BOT_ID", "BOT_USERNAME", "FakeTelegram", "Fault", "SentMessage"]
