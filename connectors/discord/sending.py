"""Sending one OutboundMessage: where it goes, the thread it may open, the parts it becomes.

Targets, in order: ``private_to`` (a DM with that user), ``thread_ref`` (that thread or forum
post), a thread grown from the question (``thread_per_question`` and a reply in a text channel),
else ``conversation_id``. A reply reference is kept only where Discord accepts it: in the same
channel as the message replied to.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import discord

from bot.errors import PermanentSendError
from bot.models import OutboundMessage, SendReceipt, utcnow
from connectors.discord.client import SupportClient
from connectors.discord.errors import translate
from connectors.discord.render import Part, allowed_mentions, button_view, mention_ids, render
from connectors.discord.settings import DiscordSettings

SENT_KEYS = 10_000
THREAD_EXISTS = 160004  # "A thread has already been created for this message"


def as_id(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise PermanentSendError(f"{what} {value!r} is not a Discord id")
    return int(value)


class Sender:
    def __init__(self, settings: DiscordSettings, question_text: Callable[[str], str | None]) -> None:
        self.settings = settings
        self._question_text = question_text
        self._sent: OrderedDict[str, SendReceipt] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def send(self, client: SupportClient, message: OutboundMessage) -> SendReceipt:
        """Send (or return the receipt of an earlier send with the same idempotency key)."""
        key = message.idempotency_key
        if len(self._locks) > SENT_KEYS:  # failed keys leave their lock behind; drop idle ones
            for k in [k for k, lock in self._locks.items() if not lock.locked()]:
                del self._locks[k]
        async with self._locks.setdefault(key, asyncio.Lock()):  # one attempt per key at a time
            done = self._sent.get(key)
            if done is not None:
                return done
            receipt = await self._send(client, message)
            self._sent[key] = receipt
        self._locks.pop(key, None)  # later callers find the receipt
        if len(self._sent) > SENT_KEYS:
            self._sent.popitem(last=False)
        return receipt

    async def _send(self, client: SupportClient, message: OutboundMessage) -> SendReceipt:
        channel_id, reference = await self._target(client, message)
        helper_role = self.settings.helper_role_id
        parts = render(message, reference_id=reference, helper_role_id=helper_role)
        mentions = allowed_mentions(*mention_ids(message, helper_role))
        ids: list[str] = []
        permalink = None
        for part in parts:
            sent = await self._post(client, channel_id, part, mentions)
            ids.append(str(sent.id))
            permalink = permalink or sent.jump_url
        return SendReceipt(external_ids=tuple(ids), sent_at=utcnow(), permalink=permalink)

    async def _target(self, client: SupportClient, message: OutboundMessage) -> tuple[int, int | None]:
        """The channel to post in, and the message to reply to (same channel only)."""
        reply_to = as_id(message.reply_to_id, "reply_to_id")
        if message.private_to is not None:
            user_id = as_id(message.private_to, "private_to")
            assert user_id is not None
            try:
                dm = await client.create_dm(discord.Object(id=user_id))
            except Exception as exc:
                raise translate(exc, what="create DM") from exc
            return dm.id, None
        if message.thread_ref is not None:
            thread_id = as_id(message.thread_ref, "thread_ref")
            assert thread_id is not None
            if reply_to == thread_id and not _is_forum_thread(client, thread_id):
                reply_to = None  # the message a thread grew from lives in the parent channel
            return thread_id, reply_to
        conversation = as_id(message.conversation_id, "conversation_id")
        assert conversation is not None
        if self.settings.thread_per_question and reply_to is not None:
            parent = client.get_channel(conversation)
            if isinstance(parent, discord.TextChannel):
                return await self._thread_for(client, parent, reply_to, message), None
        return conversation, reply_to

    async def _thread_for(
        self, client: SupportClient, parent: discord.TextChannel, question_id: int, message: OutboundMessage
    ) -> int:
        """The thread grown from the question (created on first use; its id is the question's)."""
        if isinstance(client.get_channel(question_id), discord.Thread):
            return question_id
        source = self._question_text(str(question_id)) or (message.card.question if message.card else "")
        name = " ".join(source.split())[:90] or "Question"
        try:
            await client.http.start_thread_with_message(
                parent.id,
                question_id,
                name=name,
                auto_archive_duration=self.settings.thread_auto_archive_minutes,
            )
        except discord.HTTPException as exc:
            if exc.code != THREAD_EXISTS:
                raise translate(exc, what="start thread") from exc
        except Exception as exc:
            raise translate(exc, what="start thread") from exc
        return question_id

    @staticmethod
    async def _post(
        client: SupportClient, channel_id: int, part: Part, mentions: discord.AllowedMentions
    ) -> discord.Message:
        known = client.get_channel(channel_id)
        channel: discord.abc.Messageable = (
            known
            if isinstance(known, discord.TextChannel | discord.Thread | discord.DMChannel)
            else client.get_partial_messageable(channel_id)
        )
        kwargs: dict[str, Any] = {
            "content": part.content or None,
            "allowed_mentions": mentions,
            "nonce": part.nonce,
        }
        if part.embed is not None:
            kwargs["embed"] = part.embed
        view = button_view(part.buttons) if part.buttons else None
        if view is not None:
            kwargs["view"] = view
        if part.reference_id is not None:
            kwargs["reference"] = discord.MessageReference(
                message_id=part.reference_id, channel_id=channel_id, fail_if_not_exists=False
            )
        try:
            return await channel.send(**kwargs)
        except Exception as exc:
            raise translate(exc, what="send") from exc
        finally:
            if view is not None:
                view.stop()  # presses arrive as interactions the connector handles; nothing to keep


def _is_forum_thread(client: SupportClient, thread_id: int) -> bool:
    ch = client.get_channel(thread_id)
    return isinstance(ch, discord.Thread) and isinstance(ch.parent, discord.ForumChannel)
