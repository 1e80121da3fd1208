"""Outbound rendering: escaping for the parse mode, helper mentions, splitting, keyboards."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Literal

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.helpers import escape_markdown

from bot.errors import PermanentSendError
from bot.models import Button, Mention
from connectors.textsplit import split_text

MAX_TEXT = 4096
MAX_CALLBACK_BYTES = 64

ParseMode = Literal["HTML", "MarkdownV2"]


def utf16_len(text: str) -> int:
    """Telegram counts text (and entity offsets) in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str, parse_mode: ParseMode) -> str:
    """Make plain ``text`` show exactly as typed under ``parse_mode``."""
    if parse_mode == "HTML":
        return html.escape(text, quote=False)
    return escape_markdown(text, version=2)


def render_mention(mention: Mention, parse_mode: ParseMode) -> tuple[str, str]:
    """(formatted, visible) for one helper mention that notifies them.

    ``@username`` when there is one (Telegram turns it into a mention entity), otherwise a
    ``tg://user?id=`` link on the display name (a text mention).
    """
    if mention.handle:
        visible = "@" + mention.handle.lstrip("@")
        return escape(visible, parse_mode), visible
    name = mention.display_name or "helper"
    url = f"tg://user?id={mention.user_id}"
    if parse_mode == "HTML":
        return f'<a href="{url}">{html.escape(name, quote=False)}</a>', name
    return f"[{escape_markdown(name, version=2)}]({url})", name


def render_parts(
    text: str, mentions: Sequence[Mention], parse_mode: ParseMode, limit: int = MAX_TEXT
) -> list[str]:
    """Formatted messages for ``text`` with ``mentions`` first, each at most ``limit`` visible
    characters, split on paragraph (then line, then word) boundaries."""
    rendered = [render_mention(m, parse_mode) for m in mentions if not m.role]
    prefix_fmt = " ".join(r[0] for r in rendered)
    prefix_vis = " ".join(r[1] for r in rendered)
    body = text.strip()
    if not body and not prefix_vis:
        raise PermanentSendError("refusing to send an empty message")
    room = limit - (utf16_len(prefix_vis) + 1 if prefix_vis else 0)
    if room < 100:
        raise PermanentSendError("too many mentions for one message")
    chunks = split_text(body, room, length=utf16_len) if body else []
    parts = [escape(chunk, parse_mode) for chunk in chunks]
    if prefix_fmt:
        sep = "\n" if "\n" in body else " "
        parts = [prefix_fmt + (sep + parts[0] if parts else ""), *parts[1:]]
    return parts


def keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    """An inline keyboard: up to three buttons on one row, more two by two."""
    if not buttons:
        return None
    for b in buttons:
        size = len(b.data.encode("utf-8"))
        if not 1 <= size <= MAX_CALLBACK_BYTES:
            raise PermanentSendError(f"button data must be 1-64 bytes, {b.label!r} has {size}")
    items = [InlineKeyboardButton(b.label, callback_data=b.data) for b in buttons]
    width = len(items) if len(items) <= 3 else 2
    return InlineKeyboardMarkup([items[i : i + width] for i in range(0, len(items), width)])
