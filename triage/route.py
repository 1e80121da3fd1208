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

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

URGENT = frozenset({"high", "urgent"})
DETAILED_REASONS = 30  # skipped candidates listed by name; the rest are counted by reason


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
    """Helpers and their stats, indexed for routing. Built once per batch, updated as it tags.

    Candidates come in groups (the topic's experts, then generalists; or everyone on the
    platform for a question without a topic), each kept sorted by the ranking that does not
    depend on the moment (expertise tier, flagged, least recently tagged, load). Routing walks a
    group in that order and stops at the N-th helper who is available now, so a decision looks at
    a handful of helpers, not all of them. A tag bumps a version; groups are re-sorted lazily.
    """

    def __init__(
        self,
        profiles: Iterable[HelperProfile],
        stats: Mapping[str, HelperStats],
        settings: RouteSettings | None = None,
    ) -> None:
        self.settings = settings or RouteSettings()
        self.profiles: dict[str, HelperProfile] = {}
        self.stats: dict[str, HelperStats] = {}
        self._by_topic: dict[tuple[str, str], list[str]] = {}
        self._generalists: dict[str, list[str]] = {}
        self._everyone: dict[str, list[str]] = {}
        self._history: dict[str, list[str]] = {}
        self.recent: dict[str, int] = {}  # tagged since the groups were sorted (this batch), in order
        self._seq = 0
        self._sorted: dict[tuple[str, str | None, str], list[tuple[int, list[str]]]] = {}
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
        # the moment-independent part of the ranking, once per pool
        self._static: dict[str, tuple[bool, float, int, str]] = {
            k: (
                is_flagged(st, self.settings),
                st.last_tagged.timestamp() if st.last_tagged is not None else 0.0,
                st.open,
                k,
            )
            for k, st in self.stats.items()
        }

    def __len__(self) -> int:
        return len(self.profiles)

    def tier(self, key: str, topic: str | None) -> int:
        """3: the topic in their profile and accepted answers in it; 2: one of the two;
        1: a generalist (or a question without a topic); 0: they know other topics only."""
        if topic is None:
            return 1
        p = self.profiles[key]
        accepted = self.stats[key].accepted_by_topic.get(topic, 0)
        if topic in p.topics:
            return 3 if accepted else 2
        if accepted:
            return 2
        return 0 if p.topics else 1

    def groups(self, connector_id: str, topic: str | None) -> list[list[tuple[int, list[str]]]]:
        """Candidate groups, best first; each a list of (tier, keys) blocks in ranking order
        (a block: one tier and flag; helpers in :attr:`recent` go to their block's end)."""
        if topic is None:
            return [self._ordered(connector_id, None, "all", self._everyone.get(connector_id, []))]
        experts = list(self._by_topic.get((connector_id, topic), ()))
        experts += (k for k in self._history.get(topic, ()) if connector_id in self.profiles[k].identities)
        return [
            self._ordered(connector_id, topic, "experts", experts),
            self._ordered(connector_id, topic, "generalists", self._generalists.get(connector_id, [])),
        ]

    def _ordered(
        self, conn: str, topic: str | None, group: str, keys: list[str]
    ) -> list[tuple[int, list[str]]]:
        cached = self._sorted.get((conn, topic, group))
        if cached is not None:
            return cached
        static = self._static
        ranked = sorted((-self.tier(k, topic), *static[k]) for k in set(keys))
        blocks: list[tuple[int, list[str]]] = []
        head: tuple[int, bool] | None = None
        for r in ranked:
            if r[:2] != head:
                head = (r[0], r[1])
                blocks.append((-r[0], []))
            blocks[-1][1].append(r[4])
        self._sorted[(conn, topic, group)] = blocks
        return blocks

    def in_order(self, connector_id: str, topic: str | None) -> Iterator[tuple[str, int]]:
        """Candidates with their tier, in ranking order (lazily: stop when you have enough)."""
        for group in self.groups(connector_id, topic):
            for tier, keys in group:
                later: list[str] = []
                for key in keys:
                    if key in self.recent:
                        later.append(key)
                    else:
                        yield key, tier
                later.sort(key=lambda k: (self.recent[k], self.stats[k].open, k))
                for key in later:
                    yield key, tier

    def candidates(self, connector_id: str, topic: str | None) -> list[str]:
        return [k for k, _ in self.in_order(connector_id, topic)]

    def note_tagged(self, key: str, at: datetime) -> None:
        """A tag decided in this batch counts for the next decision (load and fairness)."""
        st = self.stats.get(key)
        if st is not None:
            st.open += 1
            st.last_tagged = at
            self._seq += 1
            self.recent[key] = self._seq


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
    skipped: dict[str, int] = {}
    picks: list[Pick] = []
    looked = 0

    def skip(key: str, kind: str, detail: str = "") -> None:
        if len(reasons) < DETAILED_REASONS:
            reasons.append(f"{key}: {kind}{detail}")
        else:
            skipped[kind] = skipped.get(kind, 0) + 1

    for key, tier in pool.in_order(conn, topic):
        if len(picks) >= n:
            break
        looked += 1
        p = pool.profiles[key]
        st = pool.stats[key]
        uid = p.identities[conn]
        if uid == question.asker_id:
            skip(key, "the asker")
            continue
        if key in question.declined:
            skip(key, "declined this thread")
            continue
        if key in question.exclude:
            skip(key, "already tagged")
            continue
        if lang and p.languages and lang not in p.languages:
            skip(key, "does not read ", lang)
            continue
        if p.away and (p.away_until is None or now < p.away_until):
            skip(key, "away")
            continue
        if p.hours is not None:
            minute = minutes.get(p.timezone)
            if minute is None:
                minute = minutes[p.timezone] = local_minute(now, p.timezone)
            if not in_hours(p.hours, minute):
                skip(key, "outside their hours", f" ({p.timezone})")
                continue
        if st.open >= p.max_open:
            skip(key, "at their cap", f" ({st.open}/{p.max_open} open)")
            continue
        accepted = st.accepted_by_topic.get(topic, 0) if topic else 0
        flagged = is_flagged(st, settings)
        why = _why(tier, topic, accepted, lang)
        picks.append(
            Pick(
                key=key,
                user_id=uid,
                handle=p.handles.get(conn),
                display=p.display,
                why=why,
                tier=tier,
                flagged=flagged,
            )
        )
        reasons.append(f"{key}: picked, {why}" + (" (flagged: answers often rejected)" if flagged else ""))
    if skipped:
        reasons.append("and " + ", ".join(f"{v} more {k}" for k, v in sorted(skipped.items())))
    others = len(pool) - looked
    if others > 0:
        reasons.append(f"{others} other helper(s) not considered (other topics, platforms, or not needed)")
    to_staff = not picks
    if to_staff:
        reasons.append("nobody fits: to staff now")
    return Route(picks=tuple(picks), to_staff=to_staff, reasons=tuple(reasons))
