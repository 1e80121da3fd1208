"""The fake's world: one guild with channels, threads, roles, users and message history, and
what users do in it (post, open a forum post or a thread, DM the bot, edit, delete, react,
press a button). Every user action is dispatched to the bot's gateway session like Discord does.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from sandbox.discord import payloads as P
from sandbox.discord.payloads import Json


class FakeError(Exception):
    """A test-side operation that makes no sense (unknown channel, user ...)."""


@dataclass
class Interaction:
    id: str
    token: str
    channel_id: str
    message_id: str
    user_id: str
    custom_id: str
    created: float
    acked_at: float | None = None
    ack_type: int | None = None


class World:
    """One guild ("Acme Support"), a bot user and a few people; see :meth:`_build_world`."""

    def __init__(self) -> None:
        self.sf = P.Snowflakes()
        self.interactions: dict[str, Interaction] = {}
        self.dms_closed: set[str] = set()  # user ids who do not accept DMs from the bot
        self._build_world()

    async def dispatch(self, event: str, data: Json) -> None:
        """Deliver a gateway event to the bot (the server side implements it)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ world
    def _build_world(self) -> None:
        sf = self.sf
        self.app_id = sf()
        self.bot_user = P.user(sf(), "supportbot", bot=True)
        self.guild_id = sf()
        self.helper_role_id = sf()
        self.staff_role_id = sf()
        self.roles: list[Json] = [
            P.role(self.guild_id, "@everyone", position=0),
            P.role(self.helper_role_id, "helpers", position=1, mentionable=True),
            P.role(self.staff_role_id, "staff", position=2),
        ]
        self.users: dict[str, Json] = {}
        self.user_roles: dict[str, list[str]] = {}
        self.add_user("carol")
        self.add_user("dave", roles=[self.helper_role_id])
        self.add_user("erin", roles=[self.staff_role_id])
        self.channels: dict[str, Json] = {}
        self._dm_by_user: dict[str, Json] = {}  # recipient id -> DM channel
        self.messages: dict[str, list[Json]] = {}
        self.by_id: dict[str, Json] = {}
        self.text_channel_id = sf()
        self.forum_channel_id = sf()
        self.other_channel_id = sf()
        self._add_channel(P.text_channel(self.text_channel_id, self.guild_id, "support", 0))
        self.forum_tags = [
            {"id": sf(), "name": "billing", "moderated": False, "emoji_id": None, "emoji_name": None},
            {"id": sf(), "name": "login", "moderated": False, "emoji_id": None, "emoji_name": None},
        ]
        self._add_channel(
            P.forum_channel(self.forum_channel_id, self.guild_id, "help-forum", 1, self.forum_tags)
        )
        self._add_channel(P.text_channel(self.other_channel_id, self.guild_id, "off-topic", 2))
        # an existing thread in #support, started from a message (thread id == message id)
        starter = self._store(
            P.message(
                sf(), self.text_channel_id, self.guild_id, self.users["carol"], "known issue: sync is slow"
            )
        )
        self.existing_thread_id = starter["id"]
        self._add_channel(
            P.thread_channel(
                starter["id"], self.guild_id, self.text_channel_id, "sync is slow", self.users["carol"]["id"]
            )
        )

    def add_user(self, name: str, *, roles: list[str] | None = None, bot: bool = False) -> Json:
        u = P.user(self.sf(), name, bot=bot)
        self.users[name] = u
        self.user_roles[u["id"]] = list(roles or [])
        return u

    def user(self, who: str | Json) -> Json:
        if isinstance(who, dict):
            return who
        if who in self.users:
            return self.users[who]
        for u in self.users.values():
            if u["id"] == who:
                return u
        if who == self.bot_user["id"]:
            return self.bot_user
        raise FakeError(f"unknown user {who!r}")

    def _add_channel(self, ch: Json) -> Json:
        self.channels[ch["id"]] = ch
        if ch["type"] == P.DM and ch.get("recipients"):
            self._dm_by_user.setdefault(ch["recipients"][0]["id"], ch)
        self.messages.setdefault(ch["id"], [])
        return ch

    def _store(self, msg: Json) -> Json:
        self.messages.setdefault(msg["channel_id"], []).append(msg)
        self.by_id[msg["id"]] = msg
        ch = self.channels.get(msg["channel_id"])
        if ch is not None:
            ch["last_message_id"] = msg["id"]
            if ch["type"] in P.THREAD_TYPES:
                ch["message_count"] = ch.get("message_count", 0) + 1
                ch["total_message_sent"] = ch.get("total_message_sent", 0) + 1
        return msg

    def channel(self, channel_id: str) -> Json:
        ch = self.channels.get(str(channel_id))
        if ch is None:
            raise FakeError(f"unknown channel {channel_id}")
        return ch

    def guild_of(self, channel_id: str) -> str | None:
        return self.channel(channel_id).get("guild_id")

    def threads(self) -> list[Json]:
        return [c for c in self.channels.values() if c["type"] in P.THREAD_TYPES]

    def guild_payload(self) -> Json:
        members = [P.member([], self.bot_user)] + [
            P.member(self.user_roles.get(u["id"], []), u) for u in self.users.values()
        ]
        guild_channels = [c for c in self.channels.values() if c["type"] in (P.GUILD_TEXT, P.GUILD_FORUM)]
        return {
            "id": self.guild_id,
            "name": "Acme Support",
            "icon": None,
            "owner_id": self.users["erin"]["id"],
            "unavailable": False,
            "member_count": len(members),
            "large": False,
            "joined_at": P.now_iso(),
            "features": [],
            "roles": self.roles,
            "emojis": [],
            "stickers": [],
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_flags": 0,
            "afk_timeout": 300,
            "channels": guild_channels,
            "threads": self.threads(),
            "members": members,
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # ------------------------------------------------------------------ what users do
    def _mentions_for(self, content: str, mention_bot: bool, extra: list[str]) -> list[Json]:
        ids = list(extra)
        if mention_bot:
            ids.append(self.bot_user["id"])
        for u in [self.bot_user, *self.users.values()]:
            if f"<@{u['id']}>" in content and u["id"] not in ids:
                ids.append(u["id"])
        out = []
        for uid in ids:
            u = self.user(uid)
            out.append({**u, "member": P.member(self.user_roles.get(uid, []))})
        return out

    async def post(
        self,
        channel_id: str,
        content: str,
        *,
        author: str | Json = "carol",
        reply_to: str | None = None,
        mention_bot: bool = False,
        mention_users: list[str] | None = None,
    ) -> Json:
        """A user posts in a guild channel or thread; returns the message."""
        ch = self.channel(channel_id)
        if ch["type"] == P.GUILD_FORUM:
            raise FakeError("post in a forum with forum_post(); messages go in its threads")
        u = self.user(author)
        if mention_bot and f"<@{self.bot_user['id']}>" not in content:
            content = f"<@{self.bot_user['id']}> {content}"
        ref = None
        if reply_to is not None:
            target = self.by_id.get(str(reply_to))
            if target is None:
                raise FakeError(f"unknown message {reply_to}")
            ref = {
                "message_id": target["id"],
                "channel_id": target["channel_id"],
                "guild_id": ch.get("guild_id"),
            }
        msg = P.message(
            self.sf(),
            ch["id"],
            ch.get("guild_id"),
            u,
            content,
            author_roles=self.user_roles.get(u["id"], []),
            mentions=self._mentions_for(content, mention_bot, mention_users or []),
            reference=ref,
        )
        if ref is not None:
            msg["referenced_message"] = self.by_id[ref["message_id"]]
        self._store(msg)
        await self.dispatch("MESSAGE_CREATE", msg)
        return msg

    async def forum_post(
        self,
        title: str,
        content: str,
        *,
        author: str | Json = "carol",
        tags: list[str] | None = None,
        forum_id: str | None = None,
    ) -> tuple[Json, Json]:
        """A user opens a forum post (a thread plus its starter message; same id)."""
        forum = self.channel(forum_id or self.forum_channel_id)
        u = self.user(author)
        tag_ids = [t["id"] for t in forum["available_tags"] if t["name"] in (tags or [])]
        tid = self.sf()
        thread = self._add_channel(
            P.thread_channel(tid, forum["guild_id"], forum["id"], title, u["id"], applied_tags=tag_ids)
        )
        msg = P.message(
            tid, tid, forum["guild_id"], u, content, author_roles=self.user_roles.get(u["id"], [])
        )
        self._store(msg)
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        await self.dispatch("MESSAGE_CREATE", msg)
        return thread, msg

    async def start_thread(self, message_id: str, name: str, *, author: str | Json = "carol") -> Json:
        """A user starts a public thread from a message (thread id == message id)."""
        starter = self.by_id[str(message_id)]
        u = self.user(author)
        thread = self._add_channel(
            P.thread_channel(starter["id"], self.guild_id, starter["channel_id"], name, u["id"])
        )
        starter["thread"] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return thread

    async def edit(self, message_id: str, content: str) -> Json:
        msg = self.by_id[str(message_id)]
        msg["content"] = content
        msg["edited_timestamp"] = P.now_iso()
        await self.dispatch("MESSAGE_UPDATE", dict(msg))
        return msg

    async def delete(self, message_id: str) -> None:
        msg = self.by_id.pop(str(message_id))
        self.messages[msg["channel_id"]].remove(msg)
        data: Json = {"id": msg["id"], "channel_id": msg["channel_id"]}
        if "guild_id" in msg:
            data["guild_id"] = msg["guild_id"]
        await self.dispatch("MESSAGE_DELETE", data)

    async def react(self, message_id: str, emoji: str, *, user: str | Json = "carol") -> None:
        msg = self.by_id[str(message_id)]
        u = self.user(user)
        await self._reaction(msg, emoji, u)

    async def _reaction(self, msg: Json, emoji: str, u: Json) -> None:
        reactions: list[Json] = msg.setdefault("reactions", [])
        for r in reactions:
            if r["emoji"]["name"] == emoji:
                if u["id"] in r["users"]:
                    return  # Discord ignores a repeated reaction
                r["users"].append(u["id"])
                r["count"] += 1
                break
        else:
            reactions.append({"emoji": {"id": None, "name": emoji}, "count": 1, "users": [u["id"]]})
        data: Json = {
            "user_id": u["id"],
            "channel_id": msg["channel_id"],
            "message_id": msg["id"],
            "emoji": {"id": None, "name": emoji},
            "message_author_id": msg["author"]["id"],
            "burst": False,
            "type": 0,
        }
        if "guild_id" in msg:
            data["guild_id"] = msg["guild_id"]
            data["member"] = P.member(self.user_roles.get(u["id"], []), u)
        await self.dispatch("MESSAGE_REACTION_ADD", data)

    async def click(self, message_id: str, custom_id: str, *, user: str | Json = "carol") -> Interaction:
        """A user presses a button on one of the bot's messages."""
        msg = self.by_id[str(message_id)]
        ids = [c.get("custom_id") for row in msg.get("components", []) for c in row.get("components", [])]
        if custom_id not in ids:
            raise FakeError(f"message {message_id} has no button {custom_id!r} (has {ids})")
        u = self.user(user)
        ch = self.channel(msg["channel_id"])
        it = Interaction(
            id=self.sf(),
            token="itk-" + secrets.token_hex(12),
            channel_id=ch["id"],
            message_id=msg["id"],
            user_id=u["id"],
            custom_id=custom_id,
            created=time.monotonic(),
        )
        self.interactions[it.id] = it
        await self.dispatch(
            "INTERACTION_CREATE",
            P.interaction(
                it.id,
                self.app_id,
                it.token,
                channel=ch,
                msg=msg,
                clicker=u,
                custom_id=custom_id,
                guild_id=ch.get("guild_id"),
                roles=self.user_roles.get(u["id"], []),
            ),
        )
        return it

    def dm_channel_for(self, user_id: str) -> Json:
        """The DM channel with ``user_id``, created on first use (looked up in an index kept by
        ``_add_channel``, not a scan: the e2e benchmark opens thousands of DMs)."""
        ch = self._dm_by_user.get(user_id)
        if ch is None or ch["id"] not in self.channels:
            ch = self._add_channel(P.dm_channel(self.sf(), self.user(user_id)))
        return ch

    async def dm(self, content: str, *, author: str | Json = "carol") -> Json:
        """A user writes to the bot in a direct message."""
        u = self.user(author)
        ch = self.dm_channel_for(u["id"])
        msg = P.message(self.sf(), ch["id"], None, u, content)
        self._store(msg)
        await self.dispatch("MESSAGE_CREATE", msg)
        return msg

    # ------------------------------------------------------------------ what the bot did
    def bot_messages(self, channel_id: str | None = None) -> list[Json]:
        out = [
            m
            for cid, msgs in self.messages.items()
            if channel_id is None or cid == str(channel_id)
            for m in msgs
            if m["author"]["id"] == self.bot_user["id"]
        ]
        return sorted(out, key=lambda m: int(m["id"]))

    def sent_texts(self, channel_id: str | None = None) -> list[str]:
        return [m["content"] for m in self.bot_messages(channel_id)]

    def history(self, channel_id: str) -> list[Json]:
        return list(self.messages.get(str(channel_id), []))
