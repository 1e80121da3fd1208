"""Staff commands on an escalation: snooze, re-assign, close; and a status view.

Plain async functions on a session (the caller owns the transaction), used by the CLI
(``unsource sla ...``) and later by the dashboard and in-chat commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import UnsourceError
from bot.models import Mention, OutboundMessage
from bot.pipeline.roles import Directory
from bot.storage import outbox
from bot.storage.dialect import dialect_of, insert
from bot.storage.sla_tables import SlaStageRow, SlaThreadRow
from bot.storage.tables import ThreadRow

_STAGE: Table = SlaStageRow.__table__  # type: ignore[attr-defined]
_SLA_THREAD: Table = SlaThreadRow.__table__  # type: ignore[attr-defined]
_THREAD: Table = ThreadRow.__table__  # type: ignore[attr-defined]


class SlaCommandError(UnsourceError):
    """A staff command that cannot apply (unknown thread or helper)."""


async def _thread(session: AsyncSession, thread_id: int) -> Any:
    t = (await session.execute(select(_THREAD).where(_THREAD.c.id == thread_id))).first()
    if t is None:
        raise SlaCommandError(f"no thread #{thread_id}")
    return t


async def _upsert(session: AsyncSession, thread_id: int, now: datetime, **values: Any) -> None:
    ins = insert(dialect_of(session), _SLA_THREAD)
    await session.execute(
        ins.values(thread_id=thread_id, updated_at=now, **values).on_conflict_do_update(
            index_elements=["thread_id"], set_={**values, "updated_at": now}
        )
    )


async def snooze(session: AsyncSession, thread_id: int, duration: timedelta, by: str, now: datetime) -> int:
    """Nothing fires for ``duration``: the pending stages shift so the next one is due at
    ``now + duration`` and the gaps between them stay. Returns how many stages moved."""
    await _thread(session, thread_id)
    rows = (
        await session.execute(
            select(_STAGE.c.id, _STAGE.c.due_at).where(
                _STAGE.c.thread_id == thread_id, _STAGE.c.state == "pending"
            )
        )
    ).all()
    until = now + duration
    await _upsert(session, thread_id, now, snoozed_until=until)
    if not rows:
        return 0
    shift = until - min(r.due_at for r in rows)
    if shift <= timedelta(0):
        return 0
    await session.execute(
        update(_STAGE)
        .where(_STAGE.c.id == bindparam("sid"))
        .values(due_at=bindparam("due"), note=bindparam("why")),
        [{"sid": r.id, "due": r.due_at + shift, "why": f"snoozed by {by}"[:255]} for r in rows],
    )
    return len(rows)


async def close(session: AsyncSession, thread_id: int, by: str, now: datetime) -> int:
    """Stop the ladder: cancel every pending stage. A later asker message starts new clocks."""
    await _thread(session, thread_id)
    res = await session.execute(
        update(_STAGE)
        .where(_STAGE.c.thread_id == thread_id, _STAGE.c.state == "pending")
        .values(state="cancelled", note=f"closed by {by}"[:255])
    )
    await _upsert(session, thread_id, now, closed_at=now, closed_by=by[:128])
    return int(res.rowcount)  # type: ignore[attr-defined]


async def assign(
    session: AsyncSession, thread_id: int, name: str, *, directory: Directory, by: str, now: datetime
) -> OutboundMessage:
    """Hand the thread to one helper or staff member (by config name): recorded, included in
    every later reminder, and notified now (in the thread, or privately for private threads)."""
    t = await _thread(session, thread_id)
    helper = next((h for h in directory.helpers if h.name.lower() == name.lower()), None)
    if helper is None:
        raise SlaCommandError(f"no helper or staff named {name!r}")
    uid = helper.identities.get(t.connector_id)
    if uid is None:
        raise SlaCommandError(f"{helper.name} has no identity on connector {t.connector_id!r}")
    await _upsert(session, thread_id, now, assignee=helper.name)
    key = f"t{thread_id}:sla:assign:{int(now.timestamp())}:{uid}"
    mention = Mention(user_id=uid, handle=helper.handles.get(t.connector_id), display_name=helper.name)
    private = bool(t.is_private or t.sensitive)
    text = (
        f"You have been assigned thread #{thread_id} on {t.platform} by {by}."
        if private
        else f"@{mention.handle or helper.name} you have been assigned this question by {by}: "
        "please take a look."
    )
    msg = OutboundMessage(
        idempotency_key=key,
        connector_id=t.connector_id,
        conversation_id=t.conversation_id if not private else uid,
        thread_ref=None if private else t.thread_ref,
        reply_to_id=None if private else t.root_external_id,
        text=text,
        mentions=() if private else (mention,),
        private_to=uid if private else None,
        purpose="sla_assign",
    )
    await outbox.enqueue(session, [msg], thread_id=thread_id)
    return msg


@dataclass(frozen=True)
class StageInfo:
    thread_id: int
    policy: str
    clock: str
    stage: int
    action: str
    at: str
    due_at: datetime
    state: str
    fired_at: datetime | None
    fired_by: str | None
    note: str | None


async def status(session: AsyncSession, thread_id: int | None = None, limit: int = 50) -> list[StageInfo]:
    """A thread's stages (all states), or the next ``limit`` pending stages overall."""
    q = select(_STAGE)
    if thread_id is not None:
        q = q.where(_STAGE.c.thread_id == thread_id).order_by(_STAGE.c.due_at, _STAGE.c.id)
    else:
        q = q.where(_STAGE.c.state == "pending").order_by(_STAGE.c.due_at).limit(limit)
    return [
        StageInfo(
            r.thread_id,
            r.policy,
            r.clock,
            r.stage,
            r.action,
            r.at,
            r.due_at,
            r.state,
            r.fired_at,
            r.fired_by,
            r.note,
        )
        for r in (await session.execute(q)).all()
    ]


async def counts(session: AsyncSession) -> dict[str, int]:
    rows = (await session.execute(select(_STAGE.c.state, func.count()).group_by(_STAGE.c.state))).all()
    return {str(r[0]): int(r[1]) for r in rows}
