"""JSON shapes of Discord API v10 objects, as the fake sends them.

Every snowflake is a string; every required key discord.py 2.7 reads is present (``Member``
needs ``flags``; ``Interaction`` needs ``attachment_size_limit``, ``context`` ...).
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]

DISCORD_EPOCH_MS = 1420070400000

# channel types
GUILD_TEXT = 0
DM = 1
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12
GUILD_FORUM = 15
THREAD_TYPES = (PUBLIC_THREAD, PRIVATE_THREAD)

# message types
DEFAULT = 0
REPLY = 19

# permissions for @everyone: view, send, read history, add reactions, threads ...
EVERYONE_PERMISSIONS = "1071698660929"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Snowflakes:
    """Strictly increasing, time-based snowflakes (so ``after=`` paging works like Discord)."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()
        self._inc = itertools.count()

    def __call__(self) -> str:
        with self._lock:
            value = ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._inc) & 0xFFF)
            value = max(value, self._last + 1)
            self._last = value
            return str(value)

    @staticmethod
    def at(when: float) -> str:
        """The smallest snowflake of the given unix time."""
        return str((int(when * 1000) - DISCORD_EPOCH_MS) << 22)

    @staticmethod
    def time_of(snowflake: str) -> float:
        return ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000.0


def user(uid: str, name: str, *, bot: bool = False) -> Json:
    return {
        "id": uid,
        "username": name,
        "discriminator": "0",
        "global_name": name.title(),
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


def member(roles: list[str], u: Json | None = None) -> Json:
    out: Json = {
        "roles": list(roles),
        "joined_at": now_iso(),
        "deaf": False,
        "mute": False,
        "flags": 0,
        "nick": None,
    }
    if u is not None:
        out["user"] = u
    return out


def role(rid: str, name: str, *, position: int, mentionable: bool = False) -> Json:
    return {
        "id": rid,
        "name": name,
        "permissions": EVERYONE_PERMISSIONS,
        "position": position,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": mentionable,
        "flags": 0,
    }


def text_channel(cid: str, guild_id: str, name: str, position: int) -> Json:
    return {
        "id": cid,
        "guild_id": guild_id,
        "type": GUILD_TEXT,
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "parent_id": None,
        "nsfw": False,
        "topic": None,
        "rate_limit_per_user": 0,
        "last_message_id": None,
    }


def forum_channel(cid: str, guild_id: str, name: str, position: int, tags: list[Json]) -> Json:
    return {
        "id": cid,
        "guild_id": guild_id,
        "type": GUILD_FORUM,
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "parent_id": None,
        "nsfw": False,
        "topic": None,
        "rate_limit_per_user": 0,
        "available_tags": tags,
        "default_reaction_emoji": None,
        "default_sort_order": None,
        "default_forum_layout": 0,
        "flags": 0,
        "last_message_id": None,
    }


def thread_channel(
    tid: str,
    guild_id: str,
    parent_id: str,
    name: str,
    owner_id: str,
    *,
    applied_tags: list[str] | None = None,
    auto_archive: int = 1440,
    kind: int = PUBLIC_THREAD,
) -> Json:
    return {
        "id": tid,
        "guild_id": guild_id,
        "parent_id": parent_id,
        "owner_id": owner_id,
        "name": name,
        "type": kind,
        "last_message_id": None,
        "message_count": 0,
        "member_count": 1,
        "rate_limit_per_user": 0,
        "flags": 0,
        "total_message_sent": 0,
        "applied_tags": list(applied_tags or []),
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": auto_archive,
            "archive_timestamp": now_iso(),
            "locked": False,
        },
    }


def dm_channel(cid: str, recipient: Json) -> Json:
    return {"id": cid, "type": DM, "recipients": [recipient], "last_message_id": None, "flags": 0}


def message(
    mid: str,
    channel_id: str,
    guild_id: str | None,
    author: Json,
    content: str,
    *,
    author_roles: list[str] | None = None,
    mentions: list[Json] | None = None,
    mention_roles: list[str] | None = None,
    reference: Json | None = None,
    embeds: list[Json] | None = None,
    components: list[Json] | None = None,
    nonce: str | None = None,
) -> Json:
    msg: Json = {
        "id": mid,
        "channel_id": channel_id,
        "author": author,
        "content": content,
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": list(mentions or []),
        "mention_roles": list(mention_roles or []),
        "attachments": [],
        "embeds": list(embeds or []),
        "components": list(components or []),
        "pinned": False,
        "type": DEFAULT,
        "flags": 0,
    }
    if guild_id is not None:
        msg["guild_id"] = guild_id
        msg["member"] = member(author_roles or [])
    if reference is not None:
        msg["type"] = REPLY
        msg["message_reference"] = {"type": 0, **reference}
    if nonce is not None:
        msg["nonce"] = nonce
    return msg


def interaction(
    iid: str,
    app_id: str,
    token: str,
    *,
    channel: Json,
    msg: Json,
    clicker: Json,
    custom_id: str,
    guild_id: str | None,
    roles: list[str],
) -> Json:
    data: Json = {
        "id": iid,
        "application_id": app_id,
        "type": 3,  # MESSAGE_COMPONENT
        "token": token,
        "version": 1,
        "channel_id": channel["id"],
        "channel": channel,
        "message": msg,
        "data": {"custom_id": custom_id, "component_type": 2},
        "locale": "en-US",
        "guild_locale": "en-US",
        "app_permissions": EVERYONE_PERMISSIONS,
        "entitlements": [],
        "authorizing_integration_owners": {},
        "context": 0 if guild_id else 1,
        "attachment_size_limit": 10 * 1024 * 1024,
    }
    if guild_id is not None:
        data["guild_id"] = guild_id
        data["member"] = {**member(roles, clicker), "permissions": EVERYONE_PERMISSIONS}
    else:
        data["user"] = clicker
    return data
