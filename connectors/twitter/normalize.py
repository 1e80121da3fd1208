"""X posts and DM events -> :class:`~bot.models.InboundMessage`.

Threads: every post in an X conversation carries the conversation's root id
(``conversation_id``); it is both the message's ``conversation_id`` and its ``thread_ref``, so a
mention and the replies under it form one thread. ``reply_to_id`` is the post it replies to.
DMs: ``conversation_id`` is the DM conversation, ``thread_ref`` is ``dm:<conversation>``, the
external id ``dm:<event id>`` (so it can never collide with a post id).

Text: X returns ``&``, ``<`` and ``>`` HTML-escaped; they are unescaped. The leading run of
@handles (the addressing a reply starts with, e.g. ``@acme_support``) is removed from
``text``; the original is kept in ``raw``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from bot.errors import MalformedPayload
from bot.models import Author, InboundMessage, MessageKind

Json = dict[str, Any]
TWITTER_EPOCH_MS = 1288834974657
_LEADING_HANDLES = re.compile(r"^(?:\s*@\w{1,15}\b)+\s*")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def strip_addressing(text: str) -> str:
    """Drop the @handles a post starts with (``@acme_support @ann how do I...`` -> ``how do I...``)."""
    return _LEADING_HANDLES.sub("", text, count=1)


def snowflake_time(snowflake: str) -> datetime:
    return datetime.fromtimestamp(((int(snowflake) >> 22) + TWITTER_EPOCH_MS) / 1000, UTC)


def parse_time(value: object, snowflake: str) -> datetime:
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    return snowflake_time(snowflake)


def author_of(user_id: str, users: Mapping[str, Json], bot_id: str) -> Author:
    user = users.get(user_id, {})
    return Author(
        id=user_id,
        handle=user.get("username"),
        display_name=user.get("name"),
        is_bot=user_id == bot_id,
    )


def permalink(handle: str | None, post_id: str) -> str:
    return f"https://x.com/{handle or 'i/web'}/status/{post_id}"


def post_to_message(
    post: Json, users: Mapping[str, Json], *, connector_id: str, bot_id: str, bot_username: str
) -> InboundMessage:
    try:
        pid = str(post["id"])
        author_id = str(post["author_id"])
    except KeyError as exc:
        raise MalformedPayload(f"X post without {exc.args[0]!r}") from exc
    conversation = str(post.get("conversation_id") or pid)
    replied_to = next(
        (str(ref["id"]) for ref in post.get("referenced_tweets") or [] if ref.get("type") == "replied_to"),
        None,
    )
    mentions = (post.get("entities") or {}).get("mentions") or []
    bot_handle = bot_username.lower()
    mentions_bot = any(
        str(m.get("id", "")) == bot_id or str(m.get("username", "")).lower() == bot_handle for m in mentions
    )
    author = author_of(author_id, users, bot_id)
    try:
        return InboundMessage(
            connector_id=connector_id,
            platform="x",
            external_id=pid,
            conversation_id=conversation,
            thread_ref=conversation,
            kind=MessageKind.REPLY if replied_to else MessageKind.MENTION,
            author=author,
            text=strip_addressing(unescape(str(post.get("text", "")))),
            sent_at=parse_time(post.get("created_at"), pid),
            reply_to_id=replied_to,
            mentions_bot=mentions_bot,
            permalink=permalink(author.handle, pid),
            raw=post,
        )
    except (ValidationError, ValueError) as exc:
        raise MalformedPayload(f"X post {pid}: {exc}") from exc


def dm_to_message(
    event: Json, users: Mapping[str, Json], *, connector_id: str, bot_id: str
) -> InboundMessage:
    try:
        eid = str(event["id"])
        sender = str(event["sender_id"])
        conversation = str(event["dm_conversation_id"])
    except KeyError as exc:
        raise MalformedPayload(f"X DM event without {exc.args[0]!r}") from exc
    try:
        return InboundMessage(
            connector_id=connector_id,
            platform="x",
            external_id=f"dm:{eid}",
            conversation_id=conversation,
            thread_ref=f"dm:{conversation}",
            kind=MessageKind.DM,
            author=author_of(sender, users, bot_id),
            text=unescape(str(event.get("text", ""))),
            sent_at=parse_time(event.get("created_at"), eid),
            is_private=True,
            mentions_bot=True,
            raw=event,
        )
    except (ValidationError, ValueError) as exc:
        raise MalformedPayload(f"X DM event {eid}: {exc}") from exc
