"""What people do on each fake platform, over the fakes' ``/_sandbox`` HTTP APIs.

One client per platform with the same small vocabulary: :meth:`ask` (a customer posts a
question somewhere), :meth:`replies` (what the bot has sent, normalised to :class:`BotReply`),
:meth:`answer` (a helper replies in the question's thread), :meth:`confirm` (the asker presses
"Solved" / "Not yet" or says so) and :meth:`react_solved`. The simulated community and the
end-to-end tests both use them, so tests drive the fakes exactly as the community does.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from sandbox.compose import Endpoints, Person

Json = dict[str, Any]


@dataclass
class Asked:
    """A question a customer posted, and where."""

    platform: str  # telegram | discord | x
    place: str  # group | forum | dm | channel | mention | forum_post
    asker: Person
    text: str
    ref: str  # the platform's id of the question message
    chat: str = ""  # telegram chat id / discord channel id / x conversation
    thread: str | None = None  # telegram topic id
    at: float = 0.0  # time.time() when posted
    kind: str = "new"  # repeat | new | sensitive | angry | chatter


@dataclass
class BotReply:
    platform: str
    id: str
    text: str
    reply_to: str | None  # the question (or message) it answers
    chat: str
    buttons: dict[str, str] = field(default_factory=dict)  # "solved"/"notyet" -> data or custom id
    mentioned: tuple[str, ...] = ()  # usernames or user ids tagged


class PlatformClient(Protocol):
    name: str

    async def ask(self, asker: Person, text: str, place: str) -> Asked: ...

    async def replies(self) -> list[BotReply]: ...

    async def answer(self, helper: Person, asked: Asked, reply: BotReply | None, text: str) -> str: ...

    async def confirm(self, asked: Asked, reply: BotReply, solved: bool) -> None: ...

    async def say(self, who: Person, asked: Asked, reply_to: str, text: str) -> str: ...


async def _call(http: aiohttp.ClientSession, method: str, url: str, body: Json | None = None) -> Any:
    async with http.request(method, url, json=body) as r:
        if r.status >= 400:
            raise RuntimeError(f"{method} {url}: {r.status} {await r.text()}")
        return await r.json()


class TelegramPeople:
    name = "telegram"
    places = ("group", "forum", "dm")

    def __init__(self, ep: Endpoints, http: aiohttp.ClientSession) -> None:
        self.ep, self.http, self.base = ep, http, ep.telegram_url + "/_sandbox"
        self._topics = itertools.cycle(sorted(ep.telegram_topics.values()))

    async def _post(self, user: Person, chat: int | None, text: str, **kw: Any) -> Json:
        body: Json = {"user_id": user.telegram_id, "text": text, **kw}
        if chat is not None:
            body["chat_id"] = chat
        result: Json = await _call(self.http, "POST", f"{self.base}/messages", body)
        return result

    async def ask(self, asker: Person, text: str, place: str) -> Asked:
        thread: int | None = None
        if place == "dm":
            chat: int | None = None
        elif place == "forum":
            chat, thread = self.ep.telegram_forum, next(self._topics)
        else:
            chat = self.ep.telegram_support
        msg = await self._post(asker, chat, text, thread_id=thread)
        return Asked(
            "telegram",
            place,
            asker,
            text,
            str(msg["message_id"]),
            chat=str(msg["chat"]["id"]),
            thread=None if thread is None else str(thread),
        )

    async def replies(self) -> list[BotReply]:
        out = []
        for s in await _call(self.http, "GET", f"{self.base}/sent"):
            buttons: dict[str, str] = {}
            for row in (s.get("reply_markup") or {}).get("inline_keyboard", []):
                for b in row:
                    data = str(b.get("callback_data", ""))
                    buttons[data.partition(":")[0]] = data
            out.append(
                BotReply(
                    "telegram",
                    f"{s['chat_id']}:{s['message_id']}",
                    s["text"],
                    None if s.get("reply_to") is None else f"{s['chat_id']}:{s['reply_to']}",
                    str(s["chat_id"]),
                    buttons,
                    tuple(s.get("mentioned_usernames", []))
                    + tuple(map(str, s.get("mentioned_user_ids", []))),
                )
            )
        return out

    async def say(self, who: Person, asked: Asked, reply_to: str, text: str) -> str:
        chat = int(asked.chat)
        msg = await self._post(
            who,
            None if chat == asked.asker.telegram_id and who is asked.asker else chat,
            text,
            reply_to=int(reply_to.rpartition(":")[2]),
            thread_id=None if asked.thread is None else int(asked.thread),
        )
        return f"{msg['chat']['id']}:{msg['message_id']}"

    async def answer(self, helper: Person, asked: Asked, reply: BotReply | None, text: str) -> str:
        return await self.say(helper, asked, f"{asked.chat}:{asked.ref}", text)

    async def confirm(self, asked: Asked, reply: BotReply, solved: bool) -> None:
        data = reply.buttons.get("solved" if solved else "notyet")
        if data:
            chat, _, mid = reply.id.partition(":")
            body = {
                "chat_id": int(chat),
                "message_id": int(mid),
                "user_id": asked.asker.telegram_id,
                "data": data,
            }
            await _call(self.http, "POST", f"{self.base}/buttons", body)
        else:
            await self.say(
                asked.asker, asked, reply.id, "Solved, thanks! That worked." if solved else "Not yet, sorry."
            )


class DiscordPeople:
    name = "discord"
    places = ("channel", "mention", "forum_post", "dm")

    def __init__(self, ep: Endpoints, http: aiohttp.ClientSession) -> None:
        self.ep, self.http, self.base = ep, http, ep.discord_url + "/_sandbox"
        self._threads: dict[str, str] = {}  # question id -> the thread the bot grew from it

    async def ask(self, asker: Person, text: str, place: str) -> Asked:
        if place == "dm":
            msg = await _call(self.http, "POST", f"{self.base}/dms", {"content": text, "author": asker.name})
        elif place == "forum_post":
            title = text if len(text) <= 90 else text[:87] + "..."
            res = await _call(
                self.http,
                "POST",
                f"{self.base}/forum_posts",
                {"title": title, "content": text, "author": asker.name},
            )
            msg = res["message"]
        else:
            body = {
                "channel_id": self.ep.discord_support,
                "content": text,
                "author": asker.name,
                "mention_bot": place == "mention",
            }
            msg = await _call(self.http, "POST", f"{self.base}/messages", body)
        return Asked("discord", place, asker, text, str(msg["id"]), chat=str(msg["channel_id"]))

    async def replies(self) -> list[BotReply]:
        out = []
        for m in await _call(self.http, "GET", f"{self.base}/sent"):
            ref = (m.get("message_reference") or {}).get("message_id")
            buttons: dict[str, str] = {}
            for row in m.get("components") or []:
                for c in row.get("components", []):
                    cid = str(c.get("custom_id", ""))
                    for key in ("solved", "notyet"):
                        if key in cid:
                            buttons[key] = cid
            out.append(
                BotReply(
                    "discord",
                    str(m["id"]),
                    m["content"],
                    str(ref) if ref else str(m["channel_id"]),  # a thread grown from a question has its id
                    str(m["channel_id"]),
                    buttons,
                    tuple(u["username"] for u in m.get("mentions", [])),
                )
            )
        return out

    async def say(self, who: Person, asked: Asked, reply_to: str, text: str) -> str:
        if asked.place == "dm":
            if who is not asked.asker:
                raise ValueError("only the asker writes in a DM with the bot")
            msg = await _call(self.http, "POST", f"{self.base}/dms", {"content": text, "author": who.name})
            return str(msg["id"])
        channel = self._thread_of(asked)
        body: Json = {"channel_id": channel, "content": text, "author": who.name}
        if channel == asked.chat:
            body["reply_to"] = reply_to
        msg = await _call(self.http, "POST", f"{self.base}/messages", body)
        return str(msg["id"])

    def _thread_of(self, asked: Asked) -> str:
        # forum posts are threads; the bot grows a thread from a #support question (same id)
        if asked.place == "forum_post":
            return asked.chat
        return self._threads.get(asked.ref, asked.chat)

    def note_thread(self, asked: Asked, reply: BotReply) -> None:
        if reply.chat != asked.chat:
            self._threads[asked.ref] = reply.chat

    async def answer(self, helper: Person, asked: Asked, reply: BotReply | None, text: str) -> str:
        if reply is not None:
            self.note_thread(asked, reply)
        return await self.say(helper, asked, asked.ref, text)

    async def confirm(self, asked: Asked, reply: BotReply, solved: bool) -> None:
        cid = reply.buttons.get("solved" if solved else "notyet")
        if cid:
            body = {"message_id": reply.id, "custom_id": cid, "user": asked.asker.name}
            await _call(self.http, "POST", f"{self.base}/clicks", body)
        else:
            self.note_thread(asked, reply)
            await self.say(asked.asker, asked, reply.id, "Solved, thanks!" if solved else "Not yet, sorry.")

    async def react_solved(self, who: Person, message_id: str) -> None:
        body = {"message_id": message_id, "emoji": "✅", "user": who.name}
        await _call(self.http, "POST", f"{self.base}/reactions", body)


class XPeople:
    name = "x"
    places = ("mention", "dm")

    def __init__(self, ep: Endpoints, http: aiohttp.ClientSession) -> None:
        self.ep, self.http, self.base = ep, http, ep.x_url + "/_sandbox"

    async def ask(self, asker: Person, text: str, place: str) -> Asked:
        if place == "dm":
            ev = await _call(
                self.http, "POST", f"{self.base}/dms", {"author": asker.x_username, "text": text}
            )
            return Asked("x", "dm", asker, text, str(ev["id"]), chat=str(ev.get("dm_conversation_id", "")))
        post = await _call(
            self.http, "POST", f"{self.base}/mentions", {"author": asker.x_username, "text": text}
        )
        return Asked("x", "mention", asker, text, str(post["id"]), chat=str(post.get("conversation_id", "")))

    async def replies(self) -> list[BotReply]:
        out = []
        for p in await _call(self.http, "GET", f"{self.base}/bot/posts"):
            to = next((r["id"] for r in p.get("referenced_tweets", []) if r["type"] == "replied_to"), None)
            mentions = tuple(m["username"] for m in (p.get("entities") or {}).get("mentions", []))
            out.append(
                BotReply("x", str(p["id"]), p["text"], to, str(p.get("conversation_id", "")), {}, mentions)
            )
        for d in await _call(self.http, "GET", f"{self.base}/bot/dms"):
            out.append(BotReply("x", f"dm:{d['id']}", d["text"], None, str(d.get("dm_conversation_id", ""))))
        return out

    async def say(self, who: Person, asked: Asked, reply_to: str, text: str) -> str:
        if asked.place == "dm":
            ev = await _call(self.http, "POST", f"{self.base}/dms", {"author": who.x_username, "text": text})
            return str(ev["id"])
        body = {"author": who.x_username, "text": text, "in_reply_to": reply_to}
        post = await _call(self.http, "POST", f"{self.base}/posts", body)
        return str(post["id"])

    async def answer(self, helper: Person, asked: Asked, reply: BotReply | None, text: str) -> str:
        return await self.say(helper, asked, asked.ref, text)

    async def confirm(self, asked: Asked, reply: BotReply, solved: bool) -> None:
        await self.say(
            asked.asker,
            asked,
            reply.id,
            "Solved, thanks! That worked." if solved else "not yet, still broken",
        )


def clients(
    ep: Endpoints, http: aiohttp.ClientSession
) -> dict[str, TelegramPeople | DiscordPeople | XPeople]:
    return {"telegram": TelegramPeople(ep, http), "discord": DiscordPeople(ep, http), "x": XPeople(ep, http)}
