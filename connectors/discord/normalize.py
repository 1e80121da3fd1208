"""discord.py objects -> :class:`~bot.models.InboundMessage`.

Ids (all strings):

* ``conversation_id``: the text or forum channel; for a thread, its parent; for a DM, the DM channel.
* ``thread_ref``: the Discord thread (its channel id) for messages inside a thread or forum post.
* ``reply_to_id``: the message a reply references; inside a thread without an explicit reply,
  the thread id, which is the id of the message the thread was started from (or the forum
  post's first message), so a thread stays attached to its question.
* ``external_id``: the message snowflake for messages (globally unique); events that are not
  messages get a prefix: ``edit:<message>:<edited µs>``, ``del:<message>``,
  ``rx:<message>:<user>:<emoji>``, ``btn:<interaction>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import discord

from bot.models import Author, InboundMessage, MessageKind, utcnow

PLATFORM = "discord"
#: message types that carry something a person wrote (default, reply); system messages are skipped
USER_MESSAGE_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})


@dataclass(frozen=True)
class Where:
    """Where an event happened, in the connector's id scheme."""

    channel_id: str  # the Discord channel the event is in (a thread's own id for threads)
    conversation_id: str
    thread_ref: str | None = None
    is_private: bool = False
    in_forum: bool = False
    thread_name: str | None = None
    guild_id: str | None = None
    parent_id: str | None = None  # the thread's parent channel


def where(channel: object, channel_id: int, guild_id: int | None) -> Where:
    gid = str(guild_id) if guild_id is not None else None
    cid = str(channel_id)
    if isinstance(channel, discord.Thread):
        parent = str(channel.parent_id)
        in_forum = isinstance(channel.parent, discord.ForumChannel)
        return Where(cid, parent, cid, False, in_forum, channel.name, gid, parent)
    if isinstance(channel, discord.DMChannel | discord.GroupChannel) or guild_id is None:
        return Where(cid, cid, None, True, guild_id=None)
    return Where(cid, cid, guild_id=gid)


def author_of(user: discord.abc.User | None, user_id: int | None = None) -> Author:
    if user is None:
        return Author(id=str(user_id) if user_id is not None else "unknown")
    return Author(id=str(user.id), handle=user.name, display_name=user.display_name, is_bot=user.bot)


def forum_tags(channel: object) -> list[str]:
    if isinstance(channel, discord.Thread):
        return [t.name for t in channel.applied_tags]
    return []


def from_message(message: discord.Message, *, connector_id: str, bot_id: int | None) -> InboundMessage | None:
    """A message someone wrote; None for system messages."""
    if message.type not in USER_MESSAGE_TYPES:
        return None
    w = where(message.channel, message.channel.id, message.guild.id if message.guild else None)
    mentions_bot = bot_id is not None and any(u.id == bot_id for u in message.mentions)
    ref = message.reference
    reply_to = str(ref.message_id) if ref is not None and ref.message_id is not None else None
    is_starter = w.thread_ref is not None and str(message.id) == w.thread_ref
    if reply_to is None and w.thread_ref is not None and not is_starter:
        reply_to = w.thread_ref  # the thread's starter message (forum post or the question it grew from)
    if w.is_private:
        kind = MessageKind.DM
    elif reply_to is not None:
        kind = MessageKind.REPLY
    elif mentions_bot:
        kind = MessageKind.MENTION
    else:
        kind = MessageKind.CHANNEL_POST
    raw: dict[str, Any] = {
        "id": str(message.id),
        "channel_id": w.channel_id,
        "guild_id": w.guild_id,
        "type": message.type.value,
        "attachments": [a.url for a in message.attachments],
        "mention_ids": [str(u.id) for u in message.mentions],
        "role_mention_ids": [str(r.id) for r in message.role_mentions],
    }
    if message.reference is not None:
        raw["message_reference"] = {"message_id": reply_to, "channel_id": str(message.reference.channel_id)}
    if is_starter and w.in_forum:
        raw["forum_tags"] = forum_tags(message.channel)
    if isinstance(message.author, discord.Member):
        raw["author_role_ids"] = [str(r.id) for r in message.author.roles if not r.is_default()]
    return InboundMessage(
        connector_id=connector_id,
        platform=PLATFORM,
        external_id=str(message.id),
        conversation_id=w.conversation_id,
        thread_ref=w.thread_ref,
        kind=kind,
        author=author_of(message.author),
        text=message.content,
        sent_at=message.created_at,
        reply_to_id=reply_to,
        mentions_bot=mentions_bot,
        is_private=w.is_private,
        title=w.thread_name if is_starter and w.in_forum else None,
        permalink=message.jump_url,
        raw=raw,
    )


def from_edit(event: discord.RawMessageUpdateEvent, *, connector_id: str) -> InboundMessage | None:
    """A user's edit (MESSAGE_UPDATE with an ``edited_timestamp``; embed unfurls are skipped)."""
    stamp = event.data.get("edited_timestamp")
    message = event.message
    if not stamp or message.type not in USER_MESSAGE_TYPES:
        return None
    edited = datetime.fromisoformat(str(stamp))
    w = where(message.channel, event.channel_id, event.guild_id)
    return InboundMessage(
        connector_id=connector_id,
        platform=PLATFORM,
        external_id=f"edit:{event.message_id}:{int(edited.timestamp() * 1_000_000)}",
        conversation_id=w.conversation_id,
        thread_ref=w.thread_ref,
        kind=MessageKind.EDIT,
        author=author_of(message.author),
        text=message.content,
        sent_at=edited,
        target_id=str(event.message_id),
        is_private=w.is_private,
        permalink=message.jump_url,
        raw={"id": str(event.message_id), "channel_id": w.channel_id, "edited_timestamp": str(stamp)},
    )


def from_delete(
    event: discord.RawMessageDeleteEvent, channel: object, *, connector_id: str
) -> InboundMessage:
    w = where(channel, event.channel_id, event.guild_id)
    cached = event.cached_message
    return InboundMessage(
        connector_id=connector_id,
        platform=PLATFORM,
        external_id=f"del:{event.message_id}",
        conversation_id=w.conversation_id,
        thread_ref=w.thread_ref,
        kind=MessageKind.DELETE,
        author=author_of(cached.author) if cached is not None else Author(id="unknown"),
        sent_at=utcnow(),
        target_id=str(event.message_id),
        is_private=w.is_private,
        raw={"id": str(event.message_id), "channel_id": w.channel_id},
    )


SKIN_TONES_AND_VARIATION = dict.fromkeys([0xFE0F, *range(0x1F3FB, 0x1F400)])


def base_emoji(emoji: str) -> str:
    """``👍🏽`` -> ``👍``, ``✔️`` -> ``✔``: the form the connector compares and delivers."""
    return emoji.translate(SKIN_TONES_AND_VARIATION) or emoji


def from_reaction(
    event: discord.RawReactionActionEvent,
    channel: object,
    user: discord.abc.User | None,
    *,
    connector_id: str,
) -> InboundMessage:
    w = where(channel, event.channel_id, event.guild_id)
    as_sent = str(event.emoji)
    emoji = base_emoji(as_sent)
    return InboundMessage(
        connector_id=connector_id,
        platform=PLATFORM,
        external_id=f"rx:{event.message_id}:{event.user_id}:{emoji}",
        conversation_id=w.conversation_id,
        thread_ref=w.thread_ref,
        kind=MessageKind.REACTION,
        author=author_of(event.member or user, event.user_id),
        sent_at=utcnow(),
        target_id=str(event.message_id),
        reaction=emoji,
        is_private=w.is_private,
        raw={
            "message_id": str(event.message_id),
            "channel_id": w.channel_id,
            "emoji": as_sent,
            "message_author_id": _opt(event.message_author_id),
            "author_role_ids": [str(r.id) for r in event.member.roles if not r.is_default()]
            if event.member
            else [],
        },
    )


def from_interaction(interaction: discord.Interaction, *, connector_id: str) -> InboundMessage | None:
    """A press on one of the bot's buttons; None for other interactions."""
    if interaction.type != discord.InteractionType.component or interaction.message is None:
        return None
    data: dict[str, Any] = dict(interaction.data or {})
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str):
        return None
    channel_id = interaction.channel_id or interaction.message.channel.id
    w = where(interaction.channel, channel_id, interaction.guild_id)
    return InboundMessage(
        connector_id=connector_id,
        platform=PLATFORM,
        external_id=f"btn:{interaction.id}",
        conversation_id=w.conversation_id,
        thread_ref=w.thread_ref,
        kind=MessageKind.BUTTON,
        author=author_of(interaction.user),
        sent_at=interaction.created_at,
        target_id=str(interaction.message.id),
        button_data=custom_id,
        is_private=w.is_private,
        raw={
            "interaction_id": str(interaction.id),
            "message_id": str(interaction.message.id),
            "channel_id": w.channel_id,
        },
    )


def _opt(value: int | None) -> str | None:
    return None if value is None else str(value)
