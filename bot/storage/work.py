"""Work items: claiming messages for triage with a lease, exactly once.

On PostgreSQL the claim uses ``FOR UPDATE SKIP LOCKED`` so several worker processes share
the queue without blocking each other; SQLite has one writer at a time, so the same
conditional UPDATE is already exclusive. Completion is conditional on still holding the
claim, and the decision row is unique per message: a message is triaged exactly once even
if a lease expires under a slow worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import utcnow
from bot.storage.dialect import dialect_of
from bot.storage.tables import WorkItemRow

_WORK: Table = WorkItemRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Claimed:
    work_id: int
    message_id: int
    attempts: int


async def claim(session: AsyncSession, worker: str, limit: int, lease: timedelta) -> list[Claimed]:
    now = utcnow()
    due = or_(
        and_(_WORK.c.state == "pending", _WORK.c.available_at <= now),
        and_(_WORK.c.state == "claimed", _WORK.c.claimed_at < now - lease),
    )
    pick = select(_WORK.c.id).where(due).order_by(_WORK.c.id).limit(limit)
    if dialect_of(session) == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(_WORK)
        .where(_WORK.c.id.in_(pick.scalar_subquery()))
        .values(state="claimed", claimed_by=worker, claimed_at=now, attempts=_WORK.c.attempts + 1)
        .returning(_WORK.c.id, _WORK.c.message_id, _WORK.c.attempts)
    )
    rows = (await session.execute(stmt)).all()
    return sorted((Claimed(r.id, r.message_id, r.attempts) for r in rows), key=lambda c: c.work_id)


async def complete(session: AsyncSession, work_id: int, worker: str) -> bool:
    """Mark done if this worker still holds the claim; False means someone else took it over."""
    res = await session.execute(
        update(_WORK)
        .where(_WORK.c.id == work_id, _WORK.c.state == "claimed", _WORK.c.claimed_by == worker)
        .values(state="done", done_at=utcnow(), last_error=None)
    )
    return bool(res.rowcount)  # type: ignore[attr-defined]


async def defer(session: AsyncSession, work_id: int, worker: str, until: datetime, reason: str) -> None:
    """Give the item back, to be retried after ``until`` (does not count as an attempt)."""
    await session.execute(
        update(_WORK)
        .where(_WORK.c.id == work_id, _WORK.c.claimed_by == worker)
        .values(
            state="pending",
            available_at=until,
            claimed_by=None,
            attempts=_WORK.c.attempts - 1,
            last_error=reason,
        )
    )


async def fail(
    session: AsyncSession, work_id: int, worker: str, error: str, *, retry_at: datetime | None
) -> None:
    """Record an error: retry later, or (``retry_at=None``) give up and leave it for staff."""
    values: dict[str, object] = {"last_error": error[:2000], "claimed_by": None}
    if retry_at is None:
        values["state"] = "failed"
    else:
        values["state"] = "pending"
        values["available_at"] = retry_at
    await session.execute(
        update(_WORK).where(_WORK.c.id == work_id, _WORK.c.claimed_by == worker).values(**values)
    )


async def counts(session: AsyncSession) -> dict[str, int]:
    from sqlalchemy import func

    rows = (await session.execute(select(_WORK.c.state, func.count()).group_by(_WORK.c.state))).all()
    return {str(r[0]): int(r[1]) for r in rows}
