"""Reading the tables for analytics (SQLAlchemy Core; SQLite and PostgreSQL).

Only aggregated or window-limited reads: the overview of a 7-day window reads one row of
plain values per thread opened in it (no ORM objects, no JSON), everything else is grouped
in SQL. Tables owned by other parts (SLA, kudos, knowledge) are looked up by name at query
time with :func:`has_table`, so the dashboard shows what exists and degrades cleanly.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Float,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    inspect,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.stats import (
    AUTO_DONE_STATES,
    OUTCOMES,
    RESOLVED_STATES,
    STAFF_KINDS,
    STAFF_STATES,
    Deflection,
    Overview,
    PolicyTarget,
    SlaSummary,
    ThreadFact,
    bucket_labels,
    overview,
    percentile,
)
from bot.models import OPEN_THREAD_STATES
from bot.settings import Settings
from bot.storage.tables import DecisionRow, MessageRow, OutboxRow, ThreadRow

THREAD: Table = ThreadRow.__table__  # type: ignore[attr-defined]
MESSAGE: Table = MessageRow.__table__  # type: ignore[attr-defined]
DECISION: Table = DecisionRow.__table__  # type: ignore[attr-defined]
OUTBOX: Table = OutboxRow.__table__  # type: ignore[attr-defined]

Unit = Literal["day", "hour"]
OPENING_SLACK = timedelta(days=1)  # see aggregate(): a thread's opening decision is this close
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


def authored_by(pairs: Sequence[tuple[str, str]]) -> ColumnElement[bool]:
    """Messages written by one of these ``(connector id, platform user id)`` identities."""
    if not pairs:
        return false()
    return or_(*(and_(MESSAGE.c.connector_id == c, MESSAGE.c.author_id == a) for c, a in pairs))


async def threads_written_in(
    session: AsyncSession, pairs: Sequence[tuple[str, str]], since: datetime
) -> set[int]:
    """Ids of threads with a message by one of ``pairs`` sent since ``since`` (index
    ``ix_message_author``: one range scan per identity, not one lookup per thread)."""
    if not pairs:
        return set()
    stmt = select(MESSAGE.c.thread_id).where(
        authored_by(pairs), MESSAGE.c.sent_at >= since, MESSAGE.c.thread_id.is_not(None)
    )
    return {int(t) for t in (await session.execute(stmt)).scalars()}


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
    staff = await threads_written_in(session, identity_pairs(settings, "staff"), since)
    opening = DECISION.alias("d")
    stmt = (
        select(
            THREAD.c.id,
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
        )
        .select_from(THREAD.outerjoin(opening, opening.c.message_id == THREAD.c.root_message_id))
        .where(THREAD.c.opened_at >= since, THREAD.c.opened_at <= now)
    )
    rows = (await session.execute(stmt)).all()
    return [
        ThreadFact(
            platform=r[1],
            connector_id=r[2],
            conversation_id=r[3],
            bucket=r[4],
            opening_kind=r[5],
            state=r[6],
            priority=r[7],
            topic=r[8],
            response_s=None if r[9] is None else float(r[9]),
            age_s=float(r[10] or 0.0),
            staff_touched=r[0] in staff,
            # a human (helper or staff) answered: the pipeline records the first such reply
            helper_touched=r[9] is not None,
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


async def load_overview_from_facts(
    session: AsyncSession, settings: Settings, since: datetime, now: datetime
) -> Overview:
    """The overview computed in Python from one row per thread (the reference for the SQL one)."""
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


def _in(col: Any, values: Iterable[str]) -> ColumnElement[bool]:
    vals = sorted(values)
    return col.in_(vals) if vals else false()


def _policy_target(policies: Sequence[PolicyTarget]) -> ColumnElement[float]:
    """The first matching policy's first-response target (seconds) as a CASE expression."""
    whens: list[tuple[ColumnElement[bool], float]] = []
    for p in policies:
        conds: list[ColumnElement[bool]] = []
        if p.priorities:
            conds.append(THREAD.c.priority.in_(sorted(p.priorities)))
        if p.topics:
            conds.append(func.coalesce(THREAD.c.topic, "").in_(sorted(p.topics)))
        if p.connectors:
            conds.append(THREAD.c.connector_id.in_(sorted(p.connectors)))
        if p.channels:
            conds.append(THREAD.c.conversation_id.in_(sorted(p.channels)))
        whens.append((and_(*conds) if conds else true(), p.first_response_s))
        if not conds:
            break  # a catch-all policy: later ones never match
    if not whens:
        return literal(None, Float)
    return case(*whens, else_=None)


@dataclass
class Aggregate:
    """The overview's figures for a span of ``opened_at``, ready to be added to another span's."""

    counts: Counter[str] = field(default_factory=Counter)  # outcome -> threads
    sla: Counter[str] = field(default_factory=Counter)  # met / breached / pending / none -> threads
    resolved: int = 0  # resolved without staff
    total: int = 0
    volume: Counter[tuple[str, str]] = field(default_factory=Counter)  # (platform, bucket) -> threads
    times: list[float] = field(default_factory=list)  # first response times, seconds

    def add(self, other: Aggregate) -> None:
        self.counts.update(other.counts)
        self.sla.update(other.sla)
        self.resolved += other.resolved
        self.total += other.total
        self.volume.update(other.volume)
        self.times.extend(other.times)

    def to_json(self) -> dict[str, Any]:
        """A JSON value; the response times as base64 float64s (exact, and ~20x faster to read
        back than a JSON list of a few thousand numbers)."""
        return {
            "counts": dict(self.counts),
            "sla": dict(self.sla),
            "resolved": self.resolved,
            "total": self.total,
            "volume": [[p, b, n] for (p, b), n in sorted(self.volume.items())],
            "times_f64": base64.b64encode(np.asarray(sorted(self.times), dtype="<f8").tobytes()).decode(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Aggregate:
        return cls(
            counts=Counter(data["counts"]),
            sla=Counter(data["sla"]),
            resolved=int(data["resolved"]),
            total=int(data["total"]),
            volume=Counter({(str(p), str(b)): int(n) for p, b, n in data["volume"]}),
            times=np.frombuffer(base64.b64decode(data["times_f64"]), dtype="<f8").tolist(),
        )


async def aggregate(  # noqa: PLR0917
    session: AsyncSession,
    settings: Settings,
    lo: datetime,
    hi: datetime,
    now: datetime,
    unit: Unit,
    *,
    include_hi: bool = True,
) -> Aggregate:
    """The per-thread rules of :mod:`bot.analytics.stats` evaluated in SQL for threads opened in
    ``[lo, hi]`` (``[lo, hi)`` without ``include_hi``) and grouped there (a few hundred rows
    back instead of one per thread)."""
    dia = dialect(session)
    policies = policy_targets(settings)

    def written_by(role: Literal["staff"]) -> ColumnElement[bool]:
        pairs = identity_pairs(settings, role)
        if not pairs:
            return false()
        ids = select(MESSAGE.c.thread_id).where(authored_by(pairs), MESSAGE.c.sent_at >= lo)
        return THREAD.c.id.in_(ids)

    def opened_with(kinds: Iterable[str]) -> ColumnElement[bool]:
        # set membership (one scan of the covering index ix_decision_created), not a lookup per
        # thread; a thread opens with its first decision (the worker stamps both with one time),
        # so the decisions of [lo, hi + a day of slack] are all the opening ones of the span
        roots = select(DECISION.c.message_id).where(
            DECISION.c.created_at >= lo,
            DECISION.c.created_at <= hi + OPENING_SLACK,
            DECISION.c.kind.in_(sorted(kinds)),
        )
        return THREAD.c.root_message_id.in_(roots)

    # every rule of bot.analytics.stats as one expression over the thread row, grouped in SQL;
    # each set (staff threads, auto-answered roots, staff-routed roots) is built once
    auto = opened_with(["auto_answer"])
    human = THREAD.c.first_response_at.is_not(None)
    staff = or_(
        written_by("staff"),
        opened_with(STAFF_KINDS),
        THREAD.c.state.in_(sorted(STAFF_STATES)),
    )
    outcome_ = case(
        (staff, "staff"),
        (and_(auto, ~human), "auto"),
        (human, "community"),
        else_="waiting",
    ).label("outcome")
    resp = seconds_between(dia, THREAD.c.first_response_at, THREAD.c.opened_at)
    age = seconds_since(dia, THREAD.c.opened_at, now)
    target = _policy_target(policies)
    sla_ = case(
        (target.is_(None), "none"),
        (human, case((resp <= target, "met"), else_="breached")),
        (and_(THREAD.c.state.in_(sorted(AUTO_DONE_STATES)), auto), "met"),
        (age > target, "breached"),
        else_="pending",
    ).label("sla")
    resolved_ = THREAD.c.state.in_(sorted(RESOLVED_STATES)).label("resolved")
    bucket_ = bucket_expr(dia, THREAD.c.opened_at, unit).label("bucket")
    window = and_(
        THREAD.c.opened_at >= lo, THREAD.c.opened_at <= hi if include_hi else THREAD.c.opened_at < hi
    )
    grouped = (
        select(THREAD.c.platform, bucket_, outcome_, sla_, resolved_, func.count())
        .where(window)
        .group_by(THREAD.c.platform, bucket_, outcome_, sla_, resolved_)
    )
    agg = Aggregate()
    for platform, bucket, out, sla_class, res, count in (await session.execute(grouped)).all():
        n = int(count)
        agg.total += n
        agg.counts[out] += n
        agg.sla[sla_class] += n
        if res and out in ("auto", "community"):
            agg.resolved += n
        agg.volume[(str(platform), str(bucket))] += n
    agg.times = [
        float(v)
        for v in (await session.execute(select(resp).where(window, THREAD.c.first_response_at.is_not(None))))
        .scalars()
        .all()
    ]
    return agg


async def load_overview(
    session: AsyncSession, settings: Settings, since: datetime, now: datetime
) -> Overview:
    """The overview from SQL aggregates; whole past days come from stored daily roll-ups
    (:mod:`bot.analytics.rollup`) when they are still valid. Tests check it equals
    :func:`load_overview_from_facts` on the same data."""
    from bot.analytics.rollup import aggregate_with_rollups

    unit = unit_for(now - since)
    agg = await aggregate_with_rollups(session, settings, since, now, unit)
    buckets = bucket_labels(since, now, unit)
    index = {b: i for i, b in enumerate(buckets)}
    volume: dict[str, list[int]] = {}
    for (platform, bucket), n in agg.volume.items():
        i = index.get(bucket)
        if i is not None:
            volume.setdefault(platform, [0] * len(buckets))[i] += n
    times = sorted(agg.times)
    d = Deflection({o: agg.counts.get(o, 0) for o in OUTCOMES}, agg.total, agg.resolved)
    return Overview(
        since=since,
        until=now,
        total=agg.total,
        deflection=d,
        responses=len(times),
        p50_s=percentile(times, 50),
        p90_s=percentile(times, 90),
        sla=SlaSummary(agg.sla["met"], agg.sla["breached"], agg.sla["pending"]),
        savings=round(agg.resolved * settings.web.cost_per_staff_contact, 2),
        currency=settings.web.currency,
        open_by_state=await open_by_state(session),
        buckets=buckets,
        volume=dict(sorted(volume.items())),
        decisions_by_kind=await decisions_by_kind(session, since),
    )
