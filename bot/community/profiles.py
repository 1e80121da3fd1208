"""Helper profiles: ``config.yaml`` merged with what the database knows (self-service changes,
helpers added by command, identities on other platforms, counters).

One person is one helper whatever platforms they use: a config entry lists identities per
connector; a staff ``add`` command can attach another platform account to an existing helper.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import OPEN_THREAD_STATES
from bot.settings import HelperEntry
from bot.storage.community_tables import HelperIdentityRow, HelperRow, HelperTagRow, TopicStatRow, table
from bot.storage.tables import ThreadRow
from triage.route import HelperProfile, HelperStats, parse_hours

_HELPER = table(HelperRow)
_IDENTITY = table(HelperIdentityRow)
_TAG = table(HelperTagRow)
_TOPIC = table(TopicStatRow)
_THREAD = table(ThreadRow)
_OPEN = [s.value for s in OPEN_THREAD_STATES]
OPEN_TAG_STATES = ("tagged", "claimed")


@dataclass
class HelperRecord:
    """A helper as routing and commands see it: the merged profile, counters and DB facts."""

    profile: HelperProfile
    stats: HelperStats
    points: int = 0
    rank: str | None = None
    in_config: bool = False
    in_db: bool = False


def from_config(h: HelperEntry) -> HelperProfile:
    return HelperProfile(
        key=h.name,
        display=h.name,
        identities=dict(h.identities),
        handles=dict(h.handles),
        role=h.role,
        active=True,
        topics=frozenset(h.topics),
        languages=frozenset(h.languages),
        timezone=h.timezone,
        hours=parse_hours(h.hours),
        max_open=h.max_open,
    )


def merge(base: HelperProfile | None, row: Any | None, extra_ids: Sequence[Any]) -> HelperProfile:
    """Config profile (or defaults) with the DB row's non-NULL overrides and extra identities."""
    if base is not None:
        name = base.key
    elif row is not None:
        name = str(row.name)
    else:
        raise ValueError("a helper needs a config entry or a database row")
    p = base or HelperProfile(
        key=name, display=(row.display if row is not None else None) or name, identities={}
    )
    ids = dict(p.identities)
    handles = dict(p.handles)
    for ident in extra_ids:
        ids[ident.connector_id] = ident.user_id
        if ident.handle:
            handles[ident.connector_id] = ident.handle
    if row is None:
        return HelperProfile(**{**_fields(p), "identities": ids, "handles": handles})
    return HelperProfile(
        key=name,
        display=p.display if base is not None else (row.display or name),
        identities=ids,
        handles=handles,
        role=p.role,
        active=p.active if row.active is None else bool(row.active),
        topics=p.topics if row.topics is None else frozenset(row.topics),
        languages=p.languages if row.languages is None else frozenset(row.languages),
        timezone=row.timezone or p.timezone,
        hours=p.hours if row.hours is None else parse_hours(row.hours or None),
        away=bool(row.away),
        away_until=row.away_until,
        max_open=p.max_open if row.max_open is None else int(row.max_open),
    )


def _fields(p: HelperProfile) -> dict[str, Any]:
    return {f: getattr(p, f) for f in HelperProfile.__slots__}


@dataclass
class Roster:
    """Everyone, indexed: by helper key and by (connector, user id) / (connector, handle)."""

    helpers: dict[str, HelperRecord] = field(default_factory=dict)
    by_identity: dict[tuple[str, str], str] = field(default_factory=dict)
    by_handle: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, rec: HelperRecord) -> None:
        self.helpers[rec.profile.key] = rec
        for conn, uid in rec.profile.identities.items():
            self.by_identity[(conn, uid)] = rec.profile.key
        for conn, handle in rec.profile.handles.items():
            self.by_handle[(conn, handle.lower().lstrip("@"))] = rec.profile.key

    def who(self, connector_id: str, user_id: str) -> HelperRecord | None:
        key = self.by_identity.get((connector_id, user_id))
        return None if key is None else self.helpers.get(key)

    def find(self, connector_id: str, ref: str) -> HelperRecord | None:
        """A helper by name, @handle on this connector, or platform user id."""
        ref = ref.strip()
        for cand in (ref, ref.lstrip("@")):
            if cand in self.helpers:
                return self.helpers[cand]
        lowered = {k.lower(): k for k in self.helpers}
        if ref.lower() in lowered:
            return self.helpers[lowered[ref.lower()]]
        key = self.by_handle.get((connector_id, ref.lower().lstrip("@"))) or self.by_identity.get(
            (connector_id, ref)
        )
        return None if key is None else self.helpers.get(key)


def base_profiles(config: Iterable[HelperEntry]) -> dict[str, HelperProfile]:
    """Config helpers as profiles (built once per configuration, not per batch)."""
    return {h.name: from_config(h) for h in config}


def build_roster(
    base: Mapping[str, HelperProfile],
    rows: Iterable[Any],
    identities: Iterable[Any],
    open_counts: dict[str, int],
    topic_rows: Iterable[Any],
) -> Roster:
    by_name = {r.name: r for r in rows}
    ids: dict[str, list[Any]] = {}
    for i in identities:
        ids.setdefault(i.helper, []).append(i)
    topics: dict[str, dict[str, int]] = {}
    rejected_by_topic: dict[str, int] = {}
    for t in topic_rows:
        if t.accepted:
            topics.setdefault(t.helper, {})[t.topic] = int(t.accepted)
        rejected_by_topic[t.helper] = rejected_by_topic.get(t.helper, 0) + int(t.rejected)
    roster = Roster()
    names = [*base, *(n for n in by_name if n not in base)]
    for name in names:
        row = by_name.get(name)
        profile = merge(base.get(name), row, ids.get(name, ()))
        stats = HelperStats(
            open=open_counts.get(name, 0),
            last_tagged=row.last_tagged_at if row is not None else None,
            accepted=int(row.accepted) if row is not None else 0,
            rejected=int(row.rejected) if row is not None else 0,
            rating_sum=int(row.rating_sum) if row is not None else 0,
            rating_count=int(row.rating_count) if row is not None else 0,
            accepted_by_topic=topics.get(name, {}),
        )
        roster.add(
            HelperRecord(
                profile=profile,
                stats=stats,
                points=int(row.points) if row is not None else 0,
                rank=row.rank if row is not None else None,
                in_config=name in base,
                in_db=row is not None,
            )
        )
    return roster


async def load_roster(session: AsyncSession, base: Mapping[str, HelperProfile]) -> Roster:
    """Four reads: helper rows, identities, open loads, per-topic history (``base``: config helpers,
    see :func:`base_profiles`)."""
    rows = (
        await session.execute(select(*(c for c in _HELPER.c if c.name not in ("created_at", "updated_at"))))
    ).all()
    identities = (await session.execute(select(_IDENTITY))).all()
    loads = (
        await session.execute(
            select(_TAG.c.helper, func.count())
            .select_from(_TAG.join(_THREAD, _THREAD.c.id == _TAG.c.thread_id))
            .where(_TAG.c.state.in_(OPEN_TAG_STATES), _THREAD.c.state.in_(_OPEN))
            .group_by(_TAG.c.helper)
        )
    ).all()
    topic_rows = (await session.execute(select(_TOPIC))).all()
    return build_roster(base, rows, identities, {h: int(n) for h, n in loads}, topic_rows)
