"""Who to tag for a question: a pure function over helper profiles and their stats.

Hard rules (a helper failing one is never tagged, and the reason is recorded):

* never the asker; never someone who declined this thread (or was already tagged on it);
* active helpers only (not staff, not retired), with an identity on the thread's platform;
* language: the question's language is one of theirs (a helper without languages reads any);
* expertise: the question's topic is in their profile, or they have accepted answers in it,
  or they list no topics at all (generalists); helpers who only know other topics are skipped;
* availability now: inside their working hours in their time zone, and not away;
* load: their open threads are under their cap (``max_open``).

Among those who pass, the order is expertise tier (profile topic *and* accepted answers in it
> either one > generalist), then quality (helpers whose answers are repeatedly rejected or
badly rated are *flagged*: they come after everyone else of the same tier, so they are tagged
less, not never), then fairness (least recently tagged first), then current load, then name.

N is per topic (``per_topic``, else ``default_n``) plus ``urgent_extra`` for high/urgent
questions. Nobody fits -> ``to_staff`` is set: the thread goes to staff at once instead of
waiting for the SLA to run out.

:class:`Pool` indexes the helpers by (connector, topic) once per batch so a decision only looks
at plausible candidates (1,000 helpers route in well under a millisecond, see bench/routing.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

URGENT = frozenset({"high", "urgent"})


@dataclass(frozen=True, slots=True)
class HelperProfile:
    """One person (one helper, whatever platforms they are on), config merged with the DB."""

    key: str  # the helper's unique name
    display: str
    identities: Mapping[str, str]  # connector id -> platform user id
    handles: Mapping[str, str] = field(default_factory=dict)  # connector id -> @handle (no @)
    role: str = "helper"  # helper | staff
    active: bool = True
    topics: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()  # empty: any
    timezone: str = "UTC"
    hours: tuple[int, int] | None = None  # local minutes of the day [start, end); None: any time
    away: bool = False
    away_until: datetime | None = None
    max_open: int = 5


@dataclass(slots=True)
class HelperStats:
    """What the database knows about a helper's work (mutable: a batch updates it as it tags)."""

    open: int = 0  # threads tagged/claimed and still open
    last_tagged: datetime | None = None
    accepted: int = 0
    rejected: int = 0
    rating_sum: int = 0
    rating_count: int = 0
    accepted_by_topic: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RouteSettings:
    default_n: int = 2
    per_topic: Mapping[str, int] = field(default_factory=dict)
    urgent_extra: int = 1
    flag_after_rejections: int = 3  # at least this many rejected answers ...
    flag_below_acceptance: float = 0.34  # ... and a (smoothed) acceptance rate under this
    flag_below_rating: float = 2.5  # or an average rating under this (with 3+ ratings)


@dataclass(frozen=True, slots=True)
class Question:
    connector_id: str
    asker_id: str
    topic: str | None = None
    language: str | None = None
    priority: str = "normal"
    declined: frozenset[str] = frozenset()  # helper keys who declined this thread
    exclude: frozenset[str] = frozenset()  # helper keys already tagged on it


@dataclass(frozen=True, slots=True)
class Pick:
    key: str
    user_id: str
    handle: str | None
    display: str
    why: str  # shown to the helper: "you know `billing-app`"
    tier: int
    flagged: bool


@dataclass(frozen=True, slots=True)
class Route:
    picks: tuple[Pick, ...]
    to_staff: bool
    reasons: tuple[str, ...]  # every candidate's verdict, for the audit log


def parse_hours(text: str | None) -> tuple[int, int] | None:
    """``"09:00-17:00"`` -> (540, 1020); an overnight ``"22:00-06:00"`` wraps around midnight."""
    if not text:
        return None
    start, _, end = text.partition("-")
    h1, m1 = start.strip().split(":")
    h2, m2 = end.strip().split(":")
    return int(h1) * 60 + int(m1), int(h2) * 60 + int(m2)


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_minute(now: datetime, timezone: str) -> int:
    local = now.astimezone(_zone(timezone))
    return local.hour * 60 + local.minute


def in_hours(hours: tuple[int, int] | None, minute: int) -> bool:
    if hours is None:
        return True
    start, end = hours
    if start == end:
        return True
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end  # overnight


def acceptance(stats: HelperStats) -> float:
    """Smoothed acceptance rate of a helper's answers (Laplace: no history -> 0.5)."""
    return (stats.accepted + 1) / (stats.accepted + stats.rejected + 2)


def is_flagged(stats: HelperStats, settings: RouteSettings) -> bool:
    """Answers repeatedly rejected, or badly rated: tagged less, and shown to ops."""
    if (
        stats.rejected >= settings.flag_after_rejections
        and acceptance(stats) < settings.flag_below_acceptance
    ):
        return True
    return stats.rating_count >= 3 and stats.rating_sum / stats.rating_count < settings.flag_below_rating


class Pool:
    """Helpers and their stats, indexed for routing. Built once per batch, updated as it tags."""

    def __init__(self, profiles: Iterable[HelperProfile], stats: Mapping[str, HelperStats]) -> None:
        self.profiles: dict[str, HelperProfile] = {}
        self.stats: dict[str, HelperStats] = {}
        self._by_topic: dict[tuple[str, str], list[str]] = {}
        self._generalists: dict[str, list[str]] = {}
        self._everyone: dict[str, list[str]] = {}
        self._history: dict[str, list[str]] = {}
        for p in profiles:
            if p.role != "helper" or not p.active:
                continue  # staff and retired helpers are never routed to
            self.profiles[p.key] = p
            st = stats.get(p.key)
            self.stats[p.key] = st if st is not None else HelperStats()
            for conn in p.identities:
                self._everyone.setdefault(conn, []).append(p.key)
                if not p.topics:
                    self._generalists.setdefault(conn, []).append(p.key)
                for t in p.topics:
                    self._by_topic.setdefault((conn, t), []).append(p.key)
            for t, n in self.stats[p.key].accepted_by_topic.items():
                if n > 0 and t not in p.topics:
                    self._history.setdefault(t, []).append(p.key)

    def __len__(self) -> int:
        return len(self.profiles)

    def candidates(self, connector_id: str, topic: str | None) -> list[str]:
        if topic is None:
            return self._everyone.get(connector_id, [])
        keys = list(self._by_topic.get((connector_id, topic), ()))
        keys += self._generalists.get(connector_id, ())
        keys += (k for k in self._history.get(topic, ()) if connector_id in self.profiles[k].identities)
        return keys

    def note_tagged(self, key: str, at: datetime) -> None:
        """A tag decided in this batch counts for the next decision (load and fairness)."""
        st = self.stats.get(key)
        if st is not None:
            st.open += 1
            st.last_tagged = at


def wanted(question: Question, settings: RouteSettings) -> int:
    n = settings.per_topic.get(question.topic or "", settings.default_n)
    return n + (settings.urgent_extra if question.priority in URGENT else 0)


def _why(tier: int, topic: str | None, accepted: int, language: str | None) -> str:
    if tier == 3:
        why = f"you know `{topic}` ({accepted} accepted answer{'s' if accepted != 1 else ''})"
    elif tier == 2 and accepted:
        why = f"you answered `{topic}` questions before"
    elif tier == 2:
        why = f"you know `{topic}`"
    else:
        why = "you help with any topic"
    if language and language != "en":
        why += f" and read `{language}`"
    return why


def route(
    pool: Pool, question: Question, now: datetime, settings: RouteSettings, n: int | None = None
) -> Route:
    """Pick up to ``n`` (default: :func:`wanted`) helpers for ``question`` at ``now``."""
    n = wanted(question, settings) if n is None else n
    topic, lang, conn = question.topic, question.language, question.connector_id
    minutes: dict[str, int] = {}
    reasons: list[str] = []
    ranked: list[tuple[tuple[int, bool, float, int, str], Pick]] = []
    seen: set[str] = set()
    for key in pool.candidates(conn, topic):
        if key in seen:
            continue
        seen.add(key)
        p = pool.profiles[key]
        st = pool.stats[key]
        uid = p.identities[conn]
        if uid == question.asker_id:
            reasons.append(f"{key}: the asker")
            continue
        if key in question.declined:
            reasons.append(f"{key}: declined this thread")
            continue
        if key in question.exclude:
            reasons.append(f"{key}: already tagged")
            continue
        if lang and p.languages and lang not in p.languages:
            reasons.append(f"{key}: does not read {lang}")
            continue
        if p.away and (p.away_until is None or now < p.away_until):
            reasons.append(f"{key}: away")
            continue
        if p.hours is not None:
            minute = minutes.get(p.timezone)
            if minute is None:
                minute = minutes[p.timezone] = local_minute(now, p.timezone)
            if not in_hours(p.hours, minute):
                reasons.append(f"{key}: outside their hours ({p.timezone})")
                continue
        if st.open >= p.max_open:
            reasons.append(f"{key}: at their cap ({st.open}/{p.max_open} open)")
            continue
        accepted = st.accepted_by_topic.get(topic, 0) if topic else 0
        if topic is None:
            tier = 1
        elif topic in p.topics:
            tier = 3 if accepted else 2
        elif accepted:
            tier = 2
        elif not p.topics:
            tier = 1
        else:  # pragma: no cover - the index only yields the above
            continue
        flagged = is_flagged(st, settings)
        last = st.last_tagged.timestamp() if st.last_tagged is not None else 0.0
        sort_key = (-tier, flagged, last, st.open, key)
        ranked.append(
            (
                sort_key,
                Pick(
                    key=key,
                    user_id=uid,
                    handle=p.handles.get(conn),
                    display=p.display,
                    why=_why(tier, topic, accepted, lang),
                    tier=tier,
                    flagged=flagged,
                ),
            )
        )
    ranked.sort(key=lambda r: r[0])
    picks = tuple(pk for _, pk in ranked[:n])
    for pk in picks:
        reasons.append(
            f"{pk.key}: picked, {pk.why}" + (" (flagged: answers often rejected)" if pk.flagged else "")
        )
    for _, pk in ranked[n:]:
        reasons.append(f"{pk.key}: fits, not needed")
    others = len(pool) - len(seen)
    if others and topic is not None:
        reasons.append(f"{others} helper(s) know other topics or are not on {conn}")
    to_staff = not picks
    if to_staff:
        reasons.append("nobody fits: to staff now")
    return Route(picks=picks, to_staff=to_staff, reasons=tuple(reasons))
