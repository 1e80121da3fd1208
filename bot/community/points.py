"""Points, ranks, leaderboards and the reward export."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.settings import RankSettings
from bot.storage.community_tables import PointsRow, table

_POINTS = table(PointsRow)


def rank_of(points: int, ranks: Sequence[RankSettings]) -> str | None:
    """The highest rank whose threshold ``points`` reaches."""
    best: str | None = None
    for r in ranks:
        if points >= r.points:
            best = r.name
    return best


def rank_index(name: str | None, ranks: Sequence[RankSettings]) -> int:
    for i, r in enumerate(ranks):
        if r.name == name:
            return i
    return -1


def next_rank(points: int, ranks: Sequence[RankSettings]) -> RankSettings | None:
    return next((r for r in ranks if r.points > points), None)


def period_start(period: str, now: datetime) -> datetime | None:
    """``week`` (since Monday 00:00 UTC), ``month`` (since the 1st), ``all`` (None)."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return None


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """``2026-11`` -> [2026-11-01, 2026-12-01) in UTC."""
    year, _, month = period.partition("-")
    start = datetime(int(year), int(month), 1, tzinfo=UTC)
    end = datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


@dataclass(frozen=True)
class Standing:
    helper: str
    points: int
    awards: int


async def leaderboard(
    session: AsyncSession,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    topic: str | None = None,
    limit: int = 10,
) -> list[Standing]:
    total = func.sum(_POINTS.c.points)
    q = select(_POINTS.c.helper, total, func.count()).group_by(_POINTS.c.helper)
    if since is not None:
        q = q.where(_POINTS.c.created_at >= since)
    if until is not None:
        q = q.where(_POINTS.c.created_at < until)
    if topic is not None:
        q = q.where(_POINTS.c.topic == topic)
    q = q.order_by(total.desc(), _POINTS.c.helper).limit(limit)
    return [Standing(h, int(p or 0), int(n)) for h, p, n in (await session.execute(q)).all()]


def format_board(rows: Sequence[Standing], title: str) -> str:
    if not rows:
        return f"{title}: no points yet."
    lines = [f"{title}:"]
    lines += [f"{i}. {r.helper} — {r.points} pts" for i, r in enumerate(rows, 1)]
    return "\n".join(lines)


async def export_csv(session: AsyncSession, period: str) -> str:
    """Points per helper and reason for a month (``2026-11``), as CSV for reward programs."""
    start, end = month_bounds(period)
    q = (
        select(_POINTS.c.helper, _POINTS.c.reason, func.sum(_POINTS.c.points), func.count())
        .where(_POINTS.c.created_at >= start, _POINTS.c.created_at < end)
        .group_by(_POINTS.c.helper, _POINTS.c.reason)
        .order_by(_POINTS.c.helper, _POINTS.c.reason)
    )
    rows = (await session.execute(q)).all()
    per: dict[str, dict[str, int]] = {}
    counts: dict[str, int] = {}
    reasons = sorted({r[1] for r in rows})
    for helper, reason, pts, n in rows:
        per.setdefault(helper, {})[reason] = int(pts or 0)
        counts[helper] = counts.get(helper, 0) + int(n)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["period", "helper", "points", "awards", *reasons])
    for helper in sorted(per, key=lambda h: (-sum(per[h].values()), h)):
        w.writerow(
            [
                period,
                helper,
                sum(per[helper].values()),
                counts[helper],
                *(per[helper].get(r, 0) for r in reasons),
            ]
        )
    return out.getvalue()
