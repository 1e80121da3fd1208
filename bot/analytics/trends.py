"""Trends: topics and terms whose volume of NEW questions rises above their own baseline.

A series is the number of threads opened per bucket (``web.trends.bucket``, default 1 h)
for one ops-defined topic, or for one term (a content word of the opening question: a
cluster of similar new questions that no topic covers yet, e.g. "crash" after a release).
Each series is tested with :func:`bot.analytics.spikes.detect` against its own history.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import BigInteger, ColumnElement, Integer, String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.queries import MESSAGE, THREAD, dialect
from bot.analytics.spikes import Spike, SpikeParams, detect
from bot.settings import TrendSettings

Kind = Literal["topic", "term"]

_STOP_TEXT = """about above after again against also anyone been before being below between both cannot
    could does doing down during each from further have having here hers herself himself into
    itself just more most myself once only other ours ourselves over same should some such than
    that their theirs them themselves then there these they this those through under until very
    what when where which while whom with would your yours yourself yourselves help please thanks
    thank hello anybody someone still again know need want trying tried using since today really
    work works working issue problem question ever even like going make made where there"""
STOPWORDS = frozenset(_STOP_TEXT.split())
_WORD = re.compile(r"[^\W\d_]{4,24}", re.UNICODE)


def terms_of(text: str) -> set[str]:
    """The content words of a question (lower-case letters only, so no ids, emails or numbers)."""
    words = {w.lower() for w in _WORD.findall(text)}
    return {w for w in words if w not in STOPWORDS and "@" not in w}


@dataclass(frozen=True, slots=True)
class Trend:
    kind: Kind
    name: str
    counts: list[int]
    starts: list[datetime]  # bucket start times, aligned with counts
    spikes: list[Spike]
    examples: tuple[int, ...] = ()  # thread ids of questions in the latest spike

    @property
    def latest(self) -> Spike | None:
        return self.spikes[-1] if self.spikes else None

    def is_recent(self, within: int = 2) -> bool:
        """A spike ongoing or ended within the last ``within`` buckets."""
        s = self.latest
        return s is not None and s.end >= len(self.counts) - within

    def spike_start(self, spike: Spike) -> datetime:
        return self.starts[spike.start]


def params_of(settings: TrendSettings) -> SpikeParams:
    return SpikeParams(
        window=settings.window,
        min_history=settings.min_history,
        alpha=settings.alpha,
        min_count=settings.min_count,
    )


def series_from_counts(counts: Iterable[tuple[str, int, int]], first: int, last: int) -> dict[str, list[int]]:
    """``(name, bucket index, count)`` rows -> name -> dense counts from ``first`` to ``last``."""
    out: dict[str, list[int]] = {}
    for name, idx, n in counts:
        if first <= idx <= last:
            out.setdefault(name, [0] * (last - first + 1))[idx - first] += n
    return out


def analyse(
    kind: Kind,
    series: dict[str, list[int]],
    starts: Sequence[datetime],
    params: SpikeParams,
) -> list[Trend]:
    trends = [
        Trend(kind, name, counts, list(starts), detect(counts, params)) for name, counts in series.items()
    ]
    return sorted(
        trends, key=lambda t: (not t.is_recent(), -(t.latest.peak_count if t.latest else 0), t.name)
    )


def _bucket_index(dia: str, col: Any, seconds: int) -> ColumnElement[int]:
    if dia == "postgresql":
        return cast(func.floor(func.extract("epoch", col) / seconds), BigInteger)
    return cast(cast(func.strftime("%s", col), Integer) / seconds, Integer)


async def load_trends(
    session: AsyncSession, settings: TrendSettings, now: datetime, *, recent: int = 24, max_terms: int = 40
) -> list[Trend]:
    """Topic and term trends over ``window + recent`` buckets ending now."""
    b = max(int(settings.bucket.total_seconds()), 60)
    last = int(now.timestamp()) // b
    first = last - settings.window - recent + 1
    since = datetime.fromtimestamp(first * b, UTC)
    starts = [since + timedelta(seconds=b * i) for i in range(last - first + 1)]
    dia = dialect(session)
    idx = _bucket_index(dia, THREAD.c.opened_at, b).label("idx")
    rows = (
        await session.execute(
            select(THREAD.c.topic, idx, func.count())
            .where(THREAD.c.opened_at >= since, THREAD.c.topic.is_not(None))
            .group_by(THREAD.c.topic, idx)
        )
    ).all()
    params = params_of(settings)
    topic_series = series_from_counts(((str(r[0]), int(r[1]), int(r[2])) for r in rows), first, last)
    # terms: the opening questions' content words; only terms frequent enough lately are tested
    texts = (
        await session.execute(
            select(THREAD.c.id, idx, THREAD.c.topic, cast(MESSAGE.c.text, String))
            .select_from(THREAD.join(MESSAGE, MESSAGE.c.id == THREAD.c.root_message_id))
            .where(THREAD.c.opened_at >= since, THREAD.c.is_private.is_(False))
        )
    ).all()
    per_term: dict[str, Counter[int]] = defaultdict(Counter)
    recent_ids: dict[str, list[int]] = defaultdict(list)
    topic_ids: dict[str, list[int]] = defaultdict(list)
    for tid, i, topic, text in texts:
        if topic is not None and int(i) >= last - 1:
            topic_ids[str(topic)].append(int(tid))
        for term in terms_of(text or ""):
            per_term[term][int(i)] += 1
            if int(i) >= last - 1:
                recent_ids[term].append(int(tid))
    candidates = sorted(
        (t for t, c in per_term.items() if c[last] + c[last - 1] >= settings.min_count),
        key=lambda t: -(per_term[t][last] + per_term[t][last - 1]),
    )[:max_terms]
    term_series = {t: [per_term[t][i] for i in range(first, last + 1)] for t in candidates}
    terms = [
        Trend(t.kind, t.name, t.counts, t.starts, t.spikes, tuple(recent_ids[t.name][-5:]))
        for t in analyse("term", term_series, starts, params)
    ]
    topics = [
        Trend(t.kind, t.name, t.counts, t.starts, t.spikes, tuple(topic_ids[t.name][-5:]))
        for t in analyse("topic", topic_series, starts, params)
    ]
    return topics + terms
