"""Ingest: store inbound messages and move the connector cursor in ONE transaction.

Re-delivery is harmless: ``(connector_id, external_id)`` is unique and duplicates are
skipped. Every newly stored message gets a work item in the same transaction, so nothing
is acknowledged (cursor moved) before it is stored and queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import InboundMessage, MessageKind, utcnow
from bot.storage.dialect import dialect_of, insert
from bot.storage.tables import CursorRow, MessageRow, WorkItemRow

_MESSAGE: Table = MessageRow.__table__  # type: ignore[attr-defined]
_WORK: Table = WorkItemRow.__table__  # type: ignore[attr-defined]
_CURSOR: Table = CursorRow.__table__  # type: ignore[attr-defined]

# SQLite limits bound parameters per statement; stay well under it
_CHUNK = 200


def message_values(m: InboundMessage) -> dict[str, Any]:
    return {
        "connector_id": m.connector_id,
        "external_id": m.external_id,
        "platform": m.platform,
        "conversation_id": m.conversation_id,
        "thread_ref": m.thread_ref,
        "kind": m.kind.value,
        "author_id": m.author.id,
        "author_handle": m.author.handle,
        "author_name": m.author.display_name,
        "author_is_bot": m.author.is_bot,
        "text": _clean_text(m.text),
        "sent_at": m.sent_at,
        "received_at": utcnow(),
        "reply_to_id": m.reply_to_id,
        "target_id": m.target_id,
        "mentions_bot": m.mentions_bot,
        "is_private": m.is_private,
        "title": m.title,
        "reaction": m.reaction,
        "button_data": m.button_data,
        "permalink": m.permalink,
        "raw": dict(m.raw),
    }


def _clean_text(text: str) -> str:
    # NUL cannot be stored in PostgreSQL text; lone surrogates cannot be encoded as UTF-8
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


async def store_batch(
    session: AsyncSession, connector_id: str, messages: Sequence[InboundMessage], cursor: str | None
) -> list[int]:
    """Store ``messages`` (skipping ones already stored) and the cursor; return new message ids.

    The caller commits (or the caller's ``session.begin()`` block does).
    """
    return (await store_batches(session, connector_id, [(messages, cursor)]))[0]


async def store_batches(
    session: AsyncSession,
    connector_id: str,
    batches: Sequence[tuple[Sequence[InboundMessage], str | None]],
) -> list[list[int]]:
    """Store several of one connector's batches, in order, with the same few statements as
    one batch; return each batch's new message ids. The cursor stored is the last one given
    (a later cursor covers everything an earlier one did)."""
    messages = [m for batch, _ in batches for m in batch]
    cursor = next((c for _, c in reversed(batches) if c is not None), None)
    new = await _store(session, connector_id, messages, cursor)
    out: list[list[int]] = []
    for batch, _ in batches:
        ids = [i for m in batch if (i := new.pop(m.external_id, None)) is not None]
        out.append(sorted(ids))
    return out


async def _store(
    session: AsyncSession, connector_id: str, messages: Sequence[InboundMessage], cursor: str | None
) -> dict[str, int]:
    """external id -> new message id, for the messages stored now (not before)."""
    dialect = dialect_of(session)
    new: dict[str, int] = {}
    now = utcnow()
    for start in range(0, len(messages), _CHUNK):
        chunk = messages[start : start + _CHUNK]
        # two events with one external id in one batch: keep the first
        seen: set[str] = set()
        rows = []
        for m in chunk:
            if m.connector_id != connector_id:
                raise ValueError(f"message from {m.connector_id!r} handed to the {connector_id!r} sink")
            if m.external_id not in seen and m.external_id not in new:
                seen.add(m.external_id)
                rows.append(message_values(m))
        if not rows:
            continue
        stmt = (
            insert(dialect, _MESSAGE)
            .on_conflict_do_nothing(index_elements=["connector_id", "external_id"])
            .returning(
                _MESSAGE.c.id, _MESSAGE.c.external_id, _MESSAGE.c.kind, _MESSAGE.c.target_id, _MESSAGE.c.text
            )
        )
        # executemany form: a cached statement batched by SQLAlchemy ("insertmanyvalues")
        result = (await session.execute(stmt, rows)).all()
        ids = sorted(r.id for r in result)
        new.update((r.external_id, r.id) for r in result)
        if ids:
            await session.execute(
                insert(dialect, _WORK),
                [{"message_id": i, "state": "pending", "available_at": now, "created_at": now} for i in ids],
            )
        for r in result:
            if r.kind == MessageKind.EDIT.value and r.target_id:
                # the stored text follows the edit; the edit itself stays recorded as its own row
                await session.execute(
                    update(_MESSAGE)
                    .where(_MESSAGE.c.connector_id == connector_id, _MESSAGE.c.external_id == r.target_id)
                    .values(text=r.text)
                )
    if cursor is not None:
        stmt = insert(dialect, _CURSOR).values(connector_id=connector_id, value=cursor, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["connector_id"], set_={"value": cursor, "updated_at": now}
        )
        await session.execute(stmt)
    return new


async def load_cursor(session: AsyncSession, connector_id: str) -> str | None:
    row = (
        await session.execute(select(_CURSOR.c.value).where(_CURSOR.c.connector_id == connector_id))
    ).first()
    return None if row is None else str(row[0])
