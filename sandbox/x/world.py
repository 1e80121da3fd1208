"""The state of the fake X: users, posts, DM events, and the rules that decide who may reply.

Posts are stored with every field the real API can return; the HTTP layer picks the fields a
request asked for. Ids are snowflakes (time-ordered, like X's), so ``since_id`` works on them.
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]

TWITTER_EPOCH_MS = 1288834974657
_MENTION_RE = re.compile(r"(?<![\w@])@(\w{1,15})")
REPLY_SETTINGS = frozenset({"everyone", "following", "mentionedUsers", "subscribers", "verified"})


class WorldError(Exception):
    """A test-side call the platform would not allow (unknown user, reply forbidden ...)."""


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


@dataclass
class World:
    bot_id: str = "1000"
    bot_username: str = "acme_support"
    users: dict[str, Json] = field(default_factory=dict)
    accepts_dms: dict[str, bool] = field(default_factory=dict)
    posts: dict[str, Json] = field(default_factory=dict)  # id -> post, insertion = id order
    dm_events: list[Json] = field(default_factory=list)  # ascending id
    _last_id: int = 0

    def __post_init__(self) -> None:
        self.users[self.bot_id] = {"id": self.bot_id, "name": "Acme Support", "username": self.bot_username}

    # ------------------------------------------------------------------ ids and users
    def next_id(self, now: float | None = None) -> str:
        ms = int((time.time() if now is None else now) * 1000) - TWITTER_EPOCH_MS
        candidate = max(ms << 22, self._last_id + 1)
        self._last_id = candidate
        return str(candidate)

    def add_user(
        self, username: str, *, user_id: str | None = None, name: str | None = None, accepts_dms: bool = True
    ) -> Json:
        if self.find_user(username) is not None:
            raise WorldError(f"username @{username} is taken")
        uid = user_id or str(2000 + len(self.users))
        if uid in self.users:
            raise WorldError(f"user id {uid} is taken")
        self.users[uid] = {
            "id": uid,
            "name": name or username.replace("_", " ").title(),
            "username": username,
        }
        self.accepts_dms[uid] = accepts_dms
        return self.users[uid]

    def find_user(self, ref: str) -> Json | None:
        if ref in self.users:
            return self.users[ref]
        ref = ref.removeprefix("@").lower()
        return next((u for u in self.users.values() if u["username"].lower() == ref), None)

    def user(self, ref: str) -> Json:
        """A user by id or username; unknown usernames are created (a new customer)."""
        found = self.find_user(ref)
        if found is not None:
            return found
        if ref.isdigit():
            raise WorldError(f"no user with id {ref}")
        return self.add_user(ref.removeprefix("@"))

    # ------------------------------------------------------------------ posts
    def mentions_in(self, text: str) -> list[Json]:
        out: list[Json] = []
        for m in _MENTION_RE.finditer(text):
            user = self.find_user(m.group(1))
            if user is not None:
                out.append(
                    {"start": m.start(), "end": m.end(), "username": user["username"], "id": user["id"]}
                )
        return out

    def create_post(
        self,
        author_id: str,
        text: str,
        *,
        in_reply_to: str | None = None,
        reply_settings: str = "everyone",
        now: float | None = None,
    ) -> Json:
        now = time.time() if now is None else now
        pid = self.next_id(now)
        post: Json = {
            "id": pid,
            "text": html.escape(text, quote=False),  # X returns &, < and > escaped
            "author_id": author_id,
            "conversation_id": pid,
            "created_at": iso(now),
            "edit_history_tweet_ids": [pid],
            "reply_settings": reply_settings,
            "lang": "en",
        }
        mentions = self.mentions_in(text)
        if mentions:
            post["entities"] = {"mentions": mentions}
        if in_reply_to is not None:
            parent = self.posts[in_reply_to]
            post["conversation_id"] = parent["conversation_id"]
            post["in_reply_to_user_id"] = parent["author_id"]
            post["referenced_tweets"] = [{"type": "replied_to", "id": parent["id"]}]
        self.posts[pid] = post
        return post

    def user_post(self, author: str, text: str, *, in_reply_to: str | None = None) -> Json:
        """A user posts, as the X app would: a reply starts with the handles of the chain."""
        user = self.user(author)
        if in_reply_to is not None:
            parent = self.posts.get(in_reply_to)
            if parent is None:
                raise WorldError(f"no post {in_reply_to}")
            if not self.may_reply(user["id"], parent):
                raise WorldError(f"@{user['username']} may not reply to {in_reply_to} (reply settings)")
            handles: list[str] = []
            chain = [self.users[parent["author_id"]]["username"]]
            chain += [m["username"] for m in parent.get("entities", {}).get("mentions", [])]
            already = {m["username"].lower() for m in self.mentions_in(text)}
            for handle in chain:
                low = handle.lower()
                if low != user["username"].lower() and low not in already:
                    handles.append(handle)
                    already.add(low)
            if handles:
                text = " ".join(f"@{h}" for h in handles) + " " + text
        return self.create_post(user["id"], text, in_reply_to=in_reply_to)

    def may_reply(self, user_id: str, parent: Json) -> bool:
        """X's reply settings, as a user sees them."""
        setting = parent.get("reply_settings", "everyone")
        if setting == "everyone" or user_id == parent["author_id"]:
            return True
        if setting == "mentionedUsers":
            return any(m["id"] == user_id for m in parent.get("entities", {}).get("mentions", []))
        return True  # following / subscribers / verified: not modelled, allowed

    def bot_may_reply(self, parent: Json) -> bool:
        """X's rule for API replies: only to posts that mention the bot, or to the bot's own."""
        if parent["author_id"] == self.bot_id:
            return True
        return any(m["id"] == self.bot_id for m in parent.get("entities", {}).get("mentions", []))

    def mentions_of_bot(self, window: int) -> list[Json]:
        """The mention timeline: the latest ``window`` posts mentioning the bot, oldest first."""
        found = [
            p
            for p in self.posts.values()
            if p["author_id"] != self.bot_id
            and any(m["id"] == self.bot_id for m in p.get("entities", {}).get("mentions", []))
        ]
        return found[-window:] if window > 0 else []

    def bot_posts(self) -> list[Json]:
        return [p for p in self.posts.values() if p["author_id"] == self.bot_id]

    @staticmethod
    def visible_text(post: Json) -> str:
        """A post's text as people see it (unescaped)."""
        return html.unescape(str(post["text"]))

    # ------------------------------------------------------------------ direct messages
    def conversation_id(self, a: str, b: str) -> str:
        lo, hi = sorted((a, b), key=int)
        return f"{lo}-{hi}"

    def add_dm(self, sender_id: str, recipient_id: str, text: str, now: float | None = None) -> Json:
        now = time.time() if now is None else now
        event: Json = {
            "id": self.next_id(now),
            "event_type": "MessageCreate",
            "text": text,
            "sender_id": sender_id,
            "dm_conversation_id": self.conversation_id(sender_id, recipient_id),
            "created_at": iso(now),
            "participant_ids": sorted({sender_id, recipient_id}, key=int),
        }
        self.dm_events.append(event)
        return event

    def bot_dms(self) -> list[Json]:
        return [e for e in self.dm_events if e["sender_id"] == self.bot_id]
