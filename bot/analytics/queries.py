"""Reading the tables for analytics (SQLAlchemy Core; SQLite and PostgreSQL).

Only aggregated or window-limited reads: the overview of a 7-day window reads one row of
plain values per thread opened in it (no ORM objects, no JSON), everything else is grouped
in SQL. Tables owned by other parts (SLA, kudos, knowledge) are looked up by name at query
time with :func:`has_table`, so the dashboard shows what exists and degrades cleanly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Float,
    String,
    Table,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    inspect,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.stats import Overview, PolicyTarget, ThreadFact, overview
from bot.models import OPEN_THREAD_STATES
from bot.settings import Settings
from bot.storage.tables import DecisionRow, MessageRow, OutboxRow, ThreadRow

THREAD: Table = ThreadRow.__table__  # type: ignore[attr-defined]
MESSAGE: Table = MessageRow.__table__  # type: ignore[attr-defined]
DECISION: Table = DecisionRow.__table__  # type: ignore[attr-defined]
OUTBOX: Table = OutboxRow.__table__  # type: ignore[attr-defined]

Unit = Literal["day", "hour"]
OPEN_STATES = sorted(s.value for s in OPEN_THREAD_STATES)


def dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def has_table(session: AsyncSession, name: str) -> bool:
    conn = await session.connection()
    return bool(await conn.run_sync(lambda c: inspect(c).has_table(name)))


async def table_columns(session: AsyncSession, name: str) -> list[str]:
    """The column names of ``name``, or ``[]`` when the table does not exist."""
    conn = await session.connection()

    def cols(c: Any) -> list[str]:
        insp = inspect(c)
        return [col["name"] for col in insp.get_columns(name)] if insp.has_table(name) else []

    return list(await conn.run_sync(cols))


def bucket_expr(dia: str, col: Any, unit: Unit) -> ColumnElement[str]:
    """``opened_at`` as a UTC bucket label ("YYYY-MM-DD" or "YYYY-MM-DD HH")."""
    if dia == "postgresql":
        fmt = "YYYY-MM-DD" if unit == "day" else "YYYY-MM-DD HH24"
        return func.to_char(func.timezone("UTC", col), fmt)
    # SQLite stores UTC as "YYYY-MM-DD HH:MM:SS[.ffffff]"
    return func.substr(cast(col, String), 1, 10 if unit == "day" else 13)


def seconds_between(dia: str, later: Any, earlier: Any) -> ColumnElement[float]:
    if dia == "postgresql":
        return cast(func.extract("epoch", later - earlier), Float)
    return cast((func.julianday(later) - func.julianday(earlier)) * 86400.0, Float)


def seconds_since(dia: str, col: Any, now: datetime) -> ColumnElement[float]:
    if dia == "postgresql":
        at = bindparam("now_ts", now, type_=DateTime(timezone=True))
        return cast(func.extract("epoch", at - col), Float)
    at_s = bindparam("now_s", now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), type_=String)
    return cast((func.julianday(at_s) - func.julianday(col)) * 86400.0, Float)


def identity_pairs(settings: Settings, role: Literal["helper", "staff"]) -> list[tuple[str, str]]:
    return sorted((cid, uid) for h in settings.helpers if h.role == role for cid, uid in h.identities.items())


def _authored_by(pairs: Sequence[tuple[str, str]]) -> ColumnElement[bool]:
    if not pairs:
        return false()
    m = MESSAGE.alias("m")
    cond = or_(*(and_(m.c.connector_id == c, m.c.author_id == a) for c, a in pairs))
    return exists(select(literal_column("1")).select_from(m).where(m.c.thread_id == THREAD.c.id, cond))


def policy_targets(settings: Settings) -> list[PolicyTarget]:
    return [
        PolicyTarget(
            name=p.name,
            first_response_s=p.first_response.total_seconds(),
            priorities=frozenset(p.match.priority),
            topics=frozenset(p.match.topic),
            connectors=frozenset(p.match.connector),
            channels=frozenset(p.match.channel),
        )
        for p in settings.sla.policies
    ]


async def thread_facts(
    session: AsyncSession, settings: Settings, since: datetime, now: datetime, unit: Unit
) -> list[ThreadFact]:
    dia = dialect(session)
    opening = DECISION.alias("d")
    stmt = (
        select(
            THREAD.c.platform,
            THREAD.c.connector_id,
            THREAD.c.conversation_id,
            bucket_expr(dia, THREAD.c.opened_at, unit).label("bucket"),
            opening.c.kind,
            THREAD.c.state,
            THREAD.c.priority,
            THREAD.c.topic,
            seconds_between(dia, THREAD.c.first_response_at, THREAD.c.opened_at).label("resp"),
            seconds_since(dia, THREAD.c.opened_at, now).label("age"),
            _authored_by(identity_pairs(settings, "staff")).label("staff"),
            _authored_by(identity_pairs(settings, "helper")).label("helper"),
        )
        .select_from(THREAD.outerjoin(opening, opening.c.message_id == THREAD.c.root_message_id))
        .where(THREAD.c.opened_at >= since, THREAD.c.opened_at <= now)
    )
    rows = (await session.execute(stmt)).all()
    return [
        ThreadFact(
            platform=r[0],
            connector_id=r[1],
            conversation_id=r[2],
            bucket=r[3],
            opening_kind=r[4],
            state=r[5],
            priority=r[6],
            topic=r[7],
            response_s=None if r[8] is None else float(r[8]),
            age_s=float(r[9] or 0.0),
            staff_touched=bool(r[10]),
            helper_touched=bool(r[11]),
        )
        for r in rows
    ]


async def open_by_state(session: AsyncSession) -> dict[str, int]:
    rows = (
        await session.execute(
            select(THREAD.c.state, func.count())
            .where(THREAD.c.state.in_(OPEN_STATES))
            .group_by(THREAD.c.state)
        )
    ).all()
    return {str(r[0]): int(r[1]) for r in sorted(rows)}


async def decisions_by_kind(session: AsyncSession, since: datetime | None = None) -> dict[str, int]:
    stmt = select(DECISION.c.kind, func.count()).group_by(DECISION.c.kind)
    if since is not None:
        stmt = stmt.where(DECISION.c.created_at >= since)
    return {str(r[0]): int(r[1]) for r in sorted((await session.execute(stmt)).all())}


def unit_for(span: timedelta) -> Unit:
    return "hour" if span <= timedelta(days=2) else "day"


async def load_overview(
    session: AsyncSession, settings: Settings, since: datetime, now: datetime
) -> Overview:
    unit = unit_for(now - since)
    facts = await thread_facts(session, settings, since, now, unit)
    return overview(
        facts,
        since=since,
        until=now,
        unit=unit,
        policies=policy_targets(settings),
        cost_per_contact=settings.web.cost_per_staff_contact,
        currency=settings.web.currency,
        open_by_state=await open_by_state(session),
        decisions_by_kind=await decisions_by_kind(session, since),
    )
