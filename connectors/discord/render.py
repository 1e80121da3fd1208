"""OutboundMessage -> the Discord messages that carry it.

* Mentions go first, in Discord's notifying form (``<@user>``, ``<@&role>``); only those ids are
  allowed to ping (``allowed_mentions``), so text that happens to contain ``@everyone`` or
  ``<@...>`` never notifies anyone else.
* Text over 2000 characters is split at paragraph / line / word boundaries.
* The first part replies to ``reply_to_id`` (when it is in the same channel); the last part
  carries the card as an embed and the buttons as a row of components.
* Each part has a nonce derived from the idempotency key, sent with ``enforce_nonce``: Discord
  answers a repeat within a few minutes with the message it already created.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import discord

from bot.errors import PermanentSendError
from bot.models import AnswerCard, Button, OutboundMessage
from connectors.textsplit import split_text

MAX_CONTENT = 2000
MAX_BUTTONS = 25
MAX_CUSTOM_ID = 100
MAX_LABEL = 80


@dataclass(frozen=True)
class Part:
    content: str
    nonce: str
    reference_id: int | None = None
    embed: discord.Embed | None = None
    buttons: tuple[Button, ...] = ()


def nonce_for(key: str, index: int) -> str:
    """A stable nonce (at most 25 characters, as Discord requires) for part ``index`` of ``key``."""
    return hashlib.sha256(f"{key}#{index}".encode()).hexdigest()[:25]


def mention_ids(message: OutboundMessage, helper_role_id: str | None) -> tuple[list[str], list[str]]:
    users: list[str] = []
    roles: list[str] = []
    for m in message.mentions:
        if m.role:
            rid = m.user_id if m.user_id.isdigit() else helper_role_id
            if rid is None:
                raise PermanentSendError(f"role mention {m.user_id!r} but no helper_role_id is configured")
            if rid not in roles:
                roles.append(rid)
        elif m.user_id.isdigit():
            if m.user_id not in users:
                users.append(m.user_id)
        else:
            raise PermanentSendError(f"{m.user_id!r} is not a Discord user id")
    if message.purpose == "tag_helpers" and not users and not roles and helper_role_id:
        roles.append(helper_role_id)
    return users, roles


def allowed_mentions(users: list[str], roles: list[str]) -> discord.AllowedMentions:
    return discord.AllowedMentions(
        everyone=False,
        users=[discord.Object(id=int(u)) for u in users],
        roles=[discord.Object(id=int(r)) for r in roles],
        replied_user=True,
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def card_embed(card: AnswerCard, text: str) -> discord.Embed:
    """The auto-answer as an embed: the question, the answer (unless the text already has it),
    credit to the helper who wrote it and a link to the original thread."""
    link = card.link if card.link and card.link.startswith(("http://", "https://")) else None
    answer = card.answer.strip()
    description = None if answer and answer in text else _cut(answer, 4096)
    embed = discord.Embed(title=_cut(card.question, 256), url=link, description=description)
    if card.credit:
        embed.set_footer(text=_cut(f"Answer by {card.credit}", 2048))
    if card.link:
        embed.add_field(name="Original thread", value=_cut(card.link, 1024), inline=False)
    return embed


def check_buttons(buttons: tuple[Button, ...]) -> None:
    if len(buttons) > MAX_BUTTONS:
        raise PermanentSendError(f"at most {MAX_BUTTONS} buttons on a Discord message")
    seen: set[str] = set()
    for b in buttons:
        if not 1 <= len(b.data) <= MAX_CUSTOM_ID:
            raise PermanentSendError(f"button data must be 1..{MAX_CUSTOM_ID} characters: {b.data!r}")
        if b.data in seen:
            raise PermanentSendError(f"two buttons with the same data {b.data!r}")
        if not b.label or len(b.label) > MAX_LABEL:
            raise PermanentSendError(f"button label must be 1..{MAX_LABEL} characters")
        seen.add(b.data)


def button_view(buttons: tuple[Button, ...]) -> discord.ui.View:
    """Buttons as components (no callbacks: presses arrive as interactions the connector handles)."""
    view = discord.ui.View(timeout=None)
    for i, b in enumerate(buttons):
        style = discord.ButtonStyle.primary if i == 0 else discord.ButtonStyle.secondary
        view.add_item(discord.ui.Button(label=b.label, custom_id=b.data, style=style, row=i // 5))
    return view


def render(message: OutboundMessage, *, reference_id: int | None, helper_role_id: str | None) -> list[Part]:
    users, roles = mention_ids(message, helper_role_id)
    prefix = " ".join([f"<@{u}>" for u in users] + [f"<@&{r}>" for r in roles])
    body = message.text.strip()
    full = f"{prefix} {body}".strip() if prefix else body
    if not full and message.card is None and not message.buttons:
        raise PermanentSendError("refusing to send an empty message")
    check_buttons(message.buttons)
    chunks = split_text(full, MAX_CONTENT) if full else [""]
    embed = card_embed(message.card, full) if message.card is not None else None
    parts: list[Part] = []
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        parts.append(
            Part(
                content=chunk,
                nonce=nonce_for(message.idempotency_key, i),
                reference_id=reference_id if i == 0 else None,
                embed=embed if last else None,
                buttons=message.buttons if last else (),
            )
        )
    return parts
