"""The fake's test-side API over HTTP, under ``/_sandbox/`` (for a simulated community).

POST /_sandbox/users     {"id": 42, "first_name": "Ann", "username": "ann"}
POST /_sandbox/groups    {"id": -100123, "title": "Support", "forum": false, "supergroup": true}
POST /_sandbox/topics    {"chat_id": -100123, "name": "Billing"}          -> {"thread_id": 7}
POST /_sandbox/messages  {"chat_id": -100123, "user_id": 42, "text": "...",
                          "thread_id": null, "reply_to": null}            -> the message
                         (no chat_id, or chat_id == user_id: a DM to the bot)
POST /_sandbox/edits     {"chat_id": -100123, "message_id": 5, "text": "..."}
POST /_sandbox/buttons   {"chat_id": -100123, "message_id": 9, "user_id": 42, "data": "solved"}
GET  /_sandbox/sent[?chat_id=-100123]                                      -> messages the bot sent
POST /_sandbox/faults    {"kind": "rate_limit", "method": "sendMessage", "times": 1, "retry_after": 2}
GET  /_sandbox/stats                                                       -> counters and violations
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.telegram.world import WorldError

if TYPE_CHECKING:
    from sandbox.telegram.fake import FakeTelegram

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_control_routes(app: web.Application, fake: FakeTelegram) -> None:
    def guarded(fn: Callable[[dict[str, Any]], Any]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                body = await request.json() if request.body_exists else {}
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
                return web.json_response(fn({**request.query, **body}))
            except WorldError as exc:
                return web.json_response({"error": exc.description}, status=exc.code)
            except (KeyError, TypeError, ValueError) as exc:
                return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)

        return handler

    def opt_int(value: Any) -> int | None:
        return None if value in (None, "") else int(value)

    def users(b: dict[str, Any]) -> Any:
        return fake.add_user(
            int(b["id"]), str(b["first_name"]), b.get("username"), bool(b.get("is_bot", False))
        )

    def groups(b: dict[str, Any]) -> Any:
        chat = fake.add_group(
            int(b["id"]),
            str(b["title"]),
            supergroup=bool(b.get("supergroup", True)),
            forum=bool(b.get("forum", False)),
            username=b.get("username"),
        )
        return chat.as_json()

    def topics(b: dict[str, Any]) -> Any:
        return {"thread_id": fake.create_topic(int(b["chat_id"]), str(b["name"]), opt_int(b.get("user_id")))}

    def messages(b: dict[str, Any]) -> Any:
        user_id = int(b["user_id"])
        chat_id = opt_int(b.get("chat_id"))
        if chat_id is None or chat_id == user_id:
            return fake.dm(user_id, str(b["text"]), reply_to=opt_int(b.get("reply_to")))
        return fake.post(
            chat_id,
            user_id,
            str(b["text"]),
            thread_id=opt_int(b.get("thread_id")),
            reply_to=opt_int(b.get("reply_to")),
        )

    def edits(b: dict[str, Any]) -> Any:
        return fake.edit(int(b["chat_id"]), int(b["message_id"]), str(b["text"]))

    def buttons(b: dict[str, Any]) -> Any:
        cb = fake.press(int(b["chat_id"]), int(b["message_id"]), int(b["user_id"]), str(b["data"]))
        return {"callback_query_id": cb}

    def sent(b: dict[str, Any]) -> Any:
        return [dataclasses.asdict(s) for s in fake.sent(opt_int(b.get("chat_id")))]

    def faults(b: dict[str, Any]) -> Any:
        fake.inject(
            b["kind"],
            str(b.get("method", "*")),
            times=int(b.get("times", 1)),
            retry_after=int(b.get("retry_after", 1)),
            delay=float(b.get("delay", 0.5)),
            status=int(b.get("status", 502)),
        )
        return {"queued": True}

    def stats(b: dict[str, Any]) -> Any:
        v = fake.rate.violations
        return {
            "requests": dict(fake.stats.requests),
            "faults_served": dict(fake.stats.faults_served),
            "rejected": dict(fake.stats.rejected),
            "webhook_deliveries": fake.stats.webhook_deliveries,
            "webhook_refusals": fake.stats.webhook_refusals,
            "pending_updates": len(fake.pending_updates()),
            "sent": len(fake.sent_log),
            "violations": {
                "chat": v.chat,
                "group": v.group,
                "overall": v.overall,
                "by_chat": dict(v.by_chat),
            },
        }

    for path, fn in {
        "users": users,
        "groups": groups,
        "topics": topics,
        "messages": messages,
        "edits": edits,
        "buttons": buttons,
        "faults": faults,
    }.items():
        app.router.add_post(f"/_sandbox/{path}", guarded(fn))
    app.router.add_get("/_sandbox/sent", guarded(sent))
    app.router.add_get("/_sandbox/stats", guarded(stats))
