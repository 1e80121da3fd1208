"""The fake Telegram's world: users, chats, forum topics and the messages in them.

Everything is kept as Bot API JSON (plain dicts), built the way Telegram builds it: message
ids count per chat, forum-topic messages carry ``message_thread_id``/``is_topic_message`` and
reply to the topic's creation message, ``@username`` mentions become ``mention`` entities
with UTF-16 offsets.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.telegram.markup import utf16_len

Json = dict[str, Any]

BOT_ID = 777000111
BOT_USERNAME = "support_test_bot"

_MENTION_RE = re.compile(r"@[A-Za-z0-9_]{3,32}")


class WorldError(Exception):
    """A request refers to something that does not exist (mapped to a Bot API error)."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass
class Chat:
    id: int
    type: str  # private, group, supergroup
    title: str | None = None
    username: str | None = None
    is_forum: bool = False
    first_name: str | None = None
    topics: dict[int, str] = field(default_factory=dict)
    messages: dict[int, Json] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def as_json(self) -> Json:
        out: Json = {"id": self.id, "type": self.type}
        if self.type == "private":
            out["first_name"] = self.first_name or "User"
        else:
            out["title"] = self.title or f"chat {self.id}"
        if self.username:
            out["username"] = self.username
        if self.is_forum:
            out["is_forum"] = True
        return out

    def next_id(self) -> int:
        return next(self._ids)

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")


class World:
    def __init__(self, bot_username: str = BOT_USERNAME, bot_id: int = BOT_ID) -> None:
        self.bot: Json = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "SupportBot",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
        }
        self.users: dict[int, Json] = {}
        self.chats: dict[int, Chat] = {}
        self.started: set[int] = set()  # users who opened a DM with the bot
        self._last_edit: dict[tuple[int, int], int] = {}

    # ----------------------------------------------------------------- set-up
    def add_user(
        self, user_id: int, first_name: str, username: str | None = None, is_bot: bool = False
    ) -> Json:
        user: Json = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        if username:
            user["username"] = username
        self.users[user_id] = user
        return user

    def add_group(
        self,
        chat_id: int,
        title: str,
        *,
        supergroup: bool = True,
        forum: bool = False,
        username: str | None = None,
    ) -> Chat:
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        chat = Chat(chat_id, "supergroup" if supergroup else "group", title, username, forum)
        self.chats[chat_id] = chat
        return chat

    def create_topic(self, chat_id: int, name: str, creator_id: int | None = None) -> int:
        chat = self.chat(chat_id)
        if not chat.is_forum:
            raise WorldError(400, "Bad Request: the chat is not a forum")
        creator = self.users.get(creator_id or 0) or self.bot
        mid = chat.next_id()
        msg = {
            "message_id": mid,
            "date": int(time.time()),
            "chat": chat.as_json(),
            "from": creator,
            "message_thread_id": mid,
            "forum_topic_created": {"name": name, "icon_color": 7322096},
        }
        chat.messages[mid] = msg
        chat.topics[mid] = name
        return mid

    def private_chat(self, user_id: int) -> Chat:
        user = self.user(user_id)
        chat = self.chats.get(user_id)
        if chat is None:
            chat = Chat(user_id, "private", first_name=user["first_name"], username=user.get("username"))
            self.chats[user_id] = chat
        return chat

    # ----------------------------------------------------------------- lookups
    def user(self, user_id: int) -> Json:
        try:
            return self.users[user_id]
        except KeyError:
            raise WorldError(400, "Bad Request: user not found") from None

    def chat(self, chat_id: int) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None and chat_id in self.users:
            raise WorldError(403, "Forbidden: bot can't initiate conversation with a user")
        if chat is None:
            raise WorldError(400, "Bad Request: chat not found")
        if chat.type == "private" and chat_id not in self.started:
            raise WorldError(403, "Forbidden: bot can't initiate conversation with a user")
        return chat

    def message(self, chat_id: int, message_id: int) -> Json:
        msg = self.chat(chat_id).messages.get(message_id)
        if msg is None:
            raise WorldError(400, "Bad Request: message not found")
        return msg

    # ----------------------------------------------------------------- messages
    def user_message(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
    ) -> Json:
        """A message a user writes (``chat_id == user_id`` is a DM to the bot)."""
        if chat_id == user_id:
            chat = self.private_chat(user_id)
            self.started.add(user_id)
        else:
            chat = self.chat(chat_id)
        msg = self._message(chat, self.user(user_id), text, thread_id=thread_id, reply_to=reply_to)
        msg["entities"] = mention_entities(text)
        if not msg["entities"]:
            del msg["entities"]
        return msg

    def _message(
        self,
        chat: Chat,
        sender: Json,
        text: str,
        *,
        thread_id: int | None,
        reply_to: int | None,
    ) -> Json:
        if thread_id is not None and thread_id not in chat.topics:
            raise WorldError(400, "Bad Request: message thread not found")
        mid = chat.next_id()
        msg: Json = {"message_id": mid, "date": int(time.time()), "chat": chat.as_json(), "from": sender}
        if text:
            msg["text"] = text
        if thread_id is not None:
            msg["message_thread_id"] = thread_id
            msg["is_topic_message"] = True
        parent_id = reply_to if reply_to is not None else thread_id
        if parent_id is not None:
            parent = chat.messages.get(parent_id)
            if parent is None:
                raise WorldError(400, "Bad Request: message to be replied not found")
            msg["reply_to_message"] = {k: v for k, v in parent.items() if k != "reply_to_message"}
            if thread_id is None and chat.is_group:
                # a reply chain in a plain group: Telegram sets the root id without is_topic_message
                msg["message_thread_id"] = parent.get("message_thread_id", parent_id)
        chat.messages[mid] = msg
        return msg

    def bot_message(
        self,
        chat: Chat,
        text: str,
        entities: list[Json],
        *,
        thread_id: int | None,
        reply_to: int | None,
        reply_markup: Json | None,
    ) -> Json:
        msg = self._message(chat, self.bot, text, thread_id=thread_id, reply_to=reply_to)
        if entities:
            msg["entities"] = entities
        if reply_markup:
            msg["reply_markup"] = reply_markup
        return msg

    def edit(self, chat_id: int, message_id: int, text: str, entities: list[Json] | None = None) -> Json:
        msg = self.message(chat_id, message_id)
        key = (chat_id, message_id)
        edit_date = max(int(time.time()), self._last_edit.get(key, 0) + 1)  # distinct per edit
        self._last_edit[key] = edit_date
        msg["text"] = text
        msg["edit_date"] = edit_date
        ents = mention_entities(text) if entities is None else entities
        if ents:
            msg["entities"] = ents
        else:
            msg.pop("entities", None)
        return msg


def mention_entities(text: str) -> list[Json]:
    """``mention`` entities for every ``@username`` in ``text`` (UTF-16 offsets)."""
    return [
        {"type": "mention", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group(0))}
        for m in _MENTION_RE.finditer(text)
    ]
