"""Which thread a stored message belongs to (database lookups, no decisions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import OPEN_THREAD_STATES, MessageKind
from bot.storage.tables import MessageRow, ThreadRow, WorkItemRow

_MESSAGE: Table = MessageRow.__table__  # type: ignore[attr-defined]
_THREAD: Table = ThreadRow.__table__  # type: ignore[attr-defined]
_WORK: Table = WorkItemRow.__table__  # type: ignore[attr-defined]
_OPEN = [s.value for s in OPEN_THREAD_STATES]


@dataclass(frozen=True)
class Resolution:
    thread: Any | None  # a thread row, or None
    wait_for_parent: bool = False  # the message answers one not yet triaged: retry shortly
    how: str = ""


async def thread_by_id(session: AsyncSession, thread_id: int) -> Any | None:
    return (await session.execute(select(_THREAD).where(_THREAD.c.id == thread_id))).first()


async def resolve(session: AsyncSession, row: Any) -> Resolution:
    """Find the thread for message ``row``: by button payload, by the message it acts on or
    replies to, by platform thread (topic / Discord thread / X conversation), or by DM chat."""
    if row.kind == MessageKind.BUTTON.value and row.button_data:
        _, _, tid = row.button_data.partition(":")
        if tid.isdigit():
            t = await thread_by_id(session, int(tid))
            if t is not None and t.connector_id == row.connector_id:
                return Resolution(t, how="button")
    for ref, how in ((row.target_id, "target"), (row.reply_to_id, "reply")):
        if not ref:
            continue
        parent = (
            await session.execute(
                select(_MESSAGE.c.id, _MESSAGE.c.thread_id).where(
                    _MESSAGE.c.connector_id == row.connector_id, _MESSAGE.c.external_id == ref
                )
            )
        ).first()
        if parent is None:
            continue
        if parent.thread_id is not None:
            t = await thread_by_id(session, parent.thread_id)
            if t is not None:
                return Resolution(t, how=how)
        pending = (
            await session.execute(
                select(_WORK.c.state).where(
                    _WORK.c.message_id == parent.id, _WORK.c.state.in_(("pending", "claimed"))
                )
            )
        ).first()
        if pending is not None:
            return Resolution(None, wait_for_parent=True, how=f"{how} parent not triaged yet")
    if row.thread_ref or row.is_private:
        q = select(_THREAD).where(
            _THREAD.c.connector_id == row.connector_id,
            _THREAD.c.conversation_id == row.conversation_id,
            _THREAD.c.state.in_(_OPEN),
        )
        q = (
            q.where(_THREAD.c.thread_ref == row.thread_ref)
            if row.thread_ref
            else q.where(_THREAD.c.is_private)
        )
        t = (await session.execute(q.order_by(_THREAD.c.id.desc()).limit(1))).first()
        if t is not None:
            return Resolution(t, how="thread_ref" if row.thread_ref else "dm")
    return Resolution(None, how="new")
