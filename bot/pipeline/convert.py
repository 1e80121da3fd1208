"""Rows <-> value objects."""

from __future__ import annotations

from typing import Any

from bot.models import Author, InboundMessage, MessageKind, ThreadState, ThreadView


def inbound_from_row(row: Any) -> InboundMessage:
    return InboundMessage(
        connector_id=row.connector_id,
        platform=row.platform,
        external_id=row.external_id,
        conversation_id=row.conversation_id,
        thread_ref=row.thread_ref,
        kind=MessageKind(row.kind),
        author=Author(
            id=row.author_id, handle=row.author_handle, display_name=row.author_name, is_bot=row.author_is_bot
        ),
        text=row.text,
        sent_at=row.sent_at,
        reply_to_id=row.reply_to_id,
        target_id=row.target_id,
        mentions_bot=row.mentions_bot,
        is_private=row.is_private,
        title=row.title,
        reaction=row.reaction,
        button_data=row.button_data,
        permalink=row.permalink,
        raw=row.raw or {},
    )


def thread_view(row: Any) -> ThreadView:
    return ThreadView(
        id=row.id,
        state=ThreadState(row.state),
        connector_id=row.connector_id,
        platform=row.platform,
        conversation_id=row.conversation_id,
        thread_ref=row.thread_ref,
        root_external_id=row.root_external_id,
        asker_id=row.asker_id,
        asker_handle=row.asker_handle,
        is_private=row.is_private,
        topic=row.topic,
        priority=row.priority,
        opened_at=row.opened_at,
        message_count=row.message_count,
    )
