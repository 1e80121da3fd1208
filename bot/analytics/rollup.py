"""Daily roll-ups of the overview: a 30-day window reads 30 stored rows, not 100,000 threads.

A UTC day is *settled* once every thread opened in it is older than the longest SLA target:
from then on its figures change only when one of its threads is written to (a state change, a
reply, an escalation), and every such write sets ``thread.updated_at``. So a stored day is
valid while no thread opened that day has ``updated_at`` after the day was computed; the check
is one grouped scan of the index ``ix_thread_opened_updated``. Stale or missing days are
recomputed with the same SQL as the live figures (:func:`bot.analytics.queries.aggregate`) and
stored; the partial first day and the unsettled recent days are always computed live.

The stored figures depend on settings too (SLA policies, staff identities): they are keyed by
a fingerprint of those, so a config change simply computes new roll-ups.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.analytics.queries import (
    THREAD,
    Aggregate,
    Unit,
    aggregate,
    dialect,
    identity_pairs,
    policy_targets,
)
from bot.models import utcnow
from bot.settings import Settings
from bot.storage.dialect import insert
from bot.storage.web_tables import OverviewDayRow

log = logging.getLogger("unsource.analytics")
OVERVIEW_DAY: Table = OverviewDayRow.__table__  # type: ignore[attr-defined]
FORMAT = 2  # bump when the stored figures change meaning or layout
# a write that started before a computation but committed after its read carries an older
# updated_at: a day computed less than this long after such a write is checked again next time
WRITE_SKEW = timedelta(minutes=1)
DAY = timedelta(days=1)


def fingerprint(settings: Settings) -> str:
    """What the stored figures depend on besides the threads themselves."""
    basis = {
        "format": FORMAT,
        "policies": [
            [
                p.name,
                p.first_response_s,
                sorted(p.priorities),
                sorted(p.topics),
                sorted(p.connectors),
                sorted(p.channels),
            ]
            for p in policy_targets(settings)
        ],
        "staff": identity_pairs(settings, "staff"),
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:32]


def settle_time(settings: Settings) -> timedelta:
    """How old a thread must be before nothing but a write to it can change its figures."""
    targets = [p.first_response_s for p in policy_targets(settings)]
    return timedelta(seconds=max(targets, default=0.0)) + timedelta(minutes=5)


def settled_days(since: datetime, now: datetime, settle: timedelta) -> list[datetime]:
    """Starts of the whole UTC days inside ``[since, now]`` that are settled at ``now``."""
    first = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if first < since:
        first += DAY
    days = []
    d = first
    while d + DAY + settle <= now:
        days.append(d)
        d += DAY
    return days


async def aggregate_with_rollups(
    session: AsyncSession, settings: Settings, since: datetime, now: datetime, unit: Unit
) -> Aggregate:
    """The overview's figures for threads opened in ``[since, now]``; settled days from roll-ups.

    Hour buckets (windows of two days or less) are always computed live.
    """
    days = settled_days(since, now, settle_time(settings)) if unit == "day" else []
    if not days:
        return await aggregate(session, settings, since, now, now, unit)
    lo, hi = days[0], days[-1] + DAY
    try:
        settled = await _days(session, settings, days, now)
    except (OperationalError, ProgrammingError) as exc:  # a database not upgraded to 0006 yet
        await session.rollback()
        log.warning("overview roll-ups unavailable (%s); computing every day live", exc.orig)
        return await aggregate(session, settings, since, now, now, unit)
    total = Aggregate()
    if since < lo:
        total.add(await aggregate(session, settings, since, lo, now, unit, include_hi=False))
    total.add(settled)
    total.add(await aggregate(session, settings, hi, now, now, unit))
    return total


async def _days(session: AsyncSession, settings: Settings, days: list[datetime], now: datetime) -> Aggregate:
    fp = fingerprint(settings)
    labels = [d.strftime("%Y-%m-%d") for d in days]
    # the last write to each day's threads: one range probe of ix_thread_opened_updated per day,
    # all in one statement (grouping by a day expression would sort the whole window)
    probes = [
        select(func.max(THREAD.c.updated_at))
        .where(THREAD.c.opened_at >= start, THREAD.c.opened_at < start + DAY)
        .scalar_subquery()
        .label(f"d{i}")
        for i, start in enumerate(days)
    ]
    last_writes = (await session.execute(select(*probes))).one()
    latest = {label: _aware(u) for label, u in zip(labels, last_writes, strict=True) if u is not None}
    stored = {
        str(r.day): (_aware(r.computed_at), r.figures)
        for r in (
            await session.execute(
                select(OVERVIEW_DAY.c.day, OVERVIEW_DAY.c.computed_at, OVERVIEW_DAY.c.figures).where(
                    OVERVIEW_DAY.c.fingerprint == fp, OVERVIEW_DAY.c.day.in_(labels)
                )
            )
        ).all()
    }
    total = Aggregate()
    fresh: list[dict[str, Any]] = []
    for start, label in zip(days, labels, strict=True):
        if label not in latest:
            continue  # no threads opened that day
        have = stored.get(label)
        last_write = latest[label]
        if have is not None and have[0] is not None and last_write is not None and last_write <= have[0]:
            total.add(Aggregate.from_json(have[1]))
            continue
        computed_at = utcnow() - WRITE_SKEW
        day = await aggregate(session, settings, start, start + DAY, now, "day", include_hi=False)
        total.add(day)
        fresh.append({"fingerprint": fp, "day": label, "computed_at": computed_at, "figures": day.to_json()})
    if fresh:
        stmt = insert(dialect(session), OVERVIEW_DAY)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["fingerprint", "day"],
                set_={"computed_at": stmt.excluded.computed_at, "figures": stmt.excluded.figures},
            ),
            fresh,
        )
        await session.commit()
        log.debug("overview roll-ups: %d day(s) computed and stored", len(fresh))
    return total


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def warm(sessions: async_sessionmaker[AsyncSession], settings: Settings, days: int = 30) -> None:
    """Compute and store the roll-ups a ``days`` overview needs (a scheduler job), so that the
    first page load after midnight or after a busy hour does not pay for them."""
    now = utcnow()
    async with sessions() as session:
        await aggregate_with_rollups(session, settings, now - timedelta(days=days), now, "day")
