"""Telegram updates -> :class:`~bot.models.InboundMessage`.

Ids (all strings, unique per connector):

* a message: ``"<chat_id>:<message_id>"`` (message ids count per chat in Telegram);
* an edit: ``"<chat_id>:<message_id>:edit:<edit_date>"`` with ``target_id`` the message;
* a button press: ``"cb:<callback_query_id>"`` with ``target_id`` the bot's message;
* ``conversation_id``: the chat id; ``thread_ref``: ``"<chat_id>:<message_thread_id>"`` for a
  forum topic (plain-group reply chains are threads through ``reply_to_id`` instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from telegram import CallbackQuery, Chat, Message, MessageEntity, Update, User

from bot.models import Author, InboundMessage, MessageKind, utcnow


@dataclass(frozen=True)
class BotIdentity:
    id: int
    username: str


def message_id(chat_id: int, mid: int) -> str:
    return f"{chat_id}:{mid}"


def parse_message_id(external_id: str) -> tuple[str, int] | None:
    """``"<chat>:<message>"`` -> (chat, message); None for anything else (edits, buttons)."""
    chat, sep, mid = external_id.partition(":")
    if not sep or not mid.isdigit() or not chat.lstrip("-").isdigit():
        return None
    return chat, int(mid)


def topic_id(message: Message) -> int | None:
    """The forum topic of ``message`` (None outside forum topics)."""
    if message.is_topic_message and message.message_thread_id is not None:
        return message.message_thread_id
    return None


def thread_ref(message: Message) -> str | None:
    topic = topic_id(message)
    return None if topic is None else f"{message.chat.id}:{topic}"


def parse_thread_ref(ref: str) -> tuple[str, int] | None:
    return parse_message_id(ref)


def _real_reply(message: Message) -> Message | None:
    """The message this one answers; a topic's implicit reply to its creation is not one."""
    parent = message.reply_to_message
    if parent is None:
        return None
    if parent.forum_topic_created is not None:
        return None
    if topic_id(message) is not None and parent.message_id == message.message_thread_id:
        return None
    return parent


def _author(message: Message) -> Author:
    if message.sender_chat is not None:  # anonymous admins, linked channels
        chat = message.sender_chat
        return Author(id=str(chat.id), handle=chat.username, display_name=chat.title, is_bot=False)
    return _user(message.from_user)


def _user(user: User | None) -> Author:
    if user is None:
        return Author(id="unknown")
    return Author(id=str(user.id), handle=user.username, display_name=user.full_name, is_bot=user.is_bot)


def mentions_bot(message: Message, bot: BotIdentity) -> bool:
    if message.chat.type == Chat.PRIVATE:
        return True
    entities = message.parse_entities() if message.text else message.parse_caption_entities()
    for entity, text in entities.items():
        if entity.type == MessageEntity.MENTION and text.lstrip("@").lower() == bot.username.lower():
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot.id:
            return True
        if entity.type == MessageEntity.BOT_COMMAND and text.lower().endswith("@" + bot.username.lower()):
            return True
    parent = _real_reply(message)
    return bool(parent and parent.from_user and parent.from_user.id == bot.id)


def permalink(message: Message) -> str | None:
    chat = message.chat
    if chat.type != Chat.SUPERGROUP:
        return None  # basic groups and private chats have no message links
    topic = topic_id(message)
    tail = f"{topic}/{message.message_id}" if topic is not None else str(message.message_id)
    if chat.username:
        return f"https://t.me/{chat.username}/{tail}"
    internal = str(chat.id).removeprefix("-100")
    return f"https://t.me/c/{internal}/{tail}"


def _utc(value: datetime | None) -> datetime:
    if value is None:
        return utcnow()
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _topic_title(message: Message) -> str | None:
    parent = message.reply_to_message
    if parent is not None and parent.forum_topic_created is not None:
        return parent.forum_topic_created.name
    return None


def from_message(
    message: Message, *, connector_id: str, bot: BotIdentity, raw: dict[str, object], edited: bool = False
) -> InboundMessage | None:
    """A message or an edit; None for messages without text (service messages, stickers)."""
    text = message.text or message.caption
    if text is None:
        return None
    chat_id = message.chat.id
    own_id = message_id(chat_id, message.message_id)
    parent = _real_reply(message)
    private = message.chat.type == Chat.PRIVATE
    addressed = mentions_bot(message, bot)
    if edited:
        kind = MessageKind.EDIT
        stamp = int(_utc(message.edit_date or message.date).timestamp())
        external_id, target_id = f"{own_id}:edit:{stamp}", own_id
        sent_at = _utc(message.edit_date or message.date)
    else:
        if private:
            kind = MessageKind.DM
        elif parent is not None:
            kind = MessageKind.REPLY
        elif addressed:
            kind = MessageKind.MENTION
        else:
            kind = MessageKind.CHANNEL_POST
        external_id, target_id, sent_at = own_id, None, _utc(message.date)
    return InboundMessage(
        connector_id=connector_id,
        platform="telegram",
        external_id=external_id,
        conversation_id=str(chat_id),
        thread_ref=thread_ref(message),
        kind=kind,
        author=_author(message),
        text=text,
        sent_at=sent_at,
        reply_to_id=None if parent is None else message_id(chat_id, parent.message_id),
        target_id=target_id,
        mentions_bot=addressed,
        is_private=private,
        title=_topic_title(message),
        permalink=permalink(message),
        raw=raw,
    )


def from_callback(
    query: CallbackQuery, *, connector_id: str, raw: dict[str, object]
) -> InboundMessage | None:
    """A press on one of the bot's inline buttons (None for inline-mode messages)."""
    message = query.message
    if message is None:
        return None
    chat = message.chat
    ref = thread_ref(message) if isinstance(message, Message) else None
    return InboundMessage(
        connector_id=connector_id,
        platform="telegram",
        external_id=f"cb:{query.id}",
        conversation_id=str(chat.id),
        thread_ref=ref,
        kind=MessageKind.BUTTON,
        author=_user(query.from_user),
        text=query.data or "",
        sent_at=utcnow(),
        target_id=message_id(chat.id, message.message_id),
        button_data=query.data,
        is_private=chat.type == Chat.PRIVATE,
        raw=raw,
    )


def normalize(update: Update, *, connector_id: str, bot: BotIdentity) -> InboundMessage | None:
    raw = update.to_dict()
    if update.message is not None:
        return from_message(update.message, connector_id=connector_id, bot=bot, raw=raw)
    if update.edited_message is not None:
        return from_message(update.edited_message, connector_id=connector_id, bot=bot, raw=raw, edited=True)
    if update.callback_query is not None:
        return from_callback(update.callback_query, connector_id=connector_id, raw=raw)
    return None
