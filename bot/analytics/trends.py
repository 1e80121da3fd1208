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
from dataclasses import dataclass, replace
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
    recent: frozenset[int] = frozenset()  # ids of threads in the last two buckets
    words: tuple[str, ...] = ()  # the terms of this cluster (or common in this topic's spike)
    covered_by: str | None = None  # a term cluster that is the same questions as this topic spike

    @property
    def examples(self) -> tuple[int, ...]:
        return tuple(sorted(self.recent)[-5:])

    @property
    def label(self) -> str:
        return " + ".join(self.words) if self.kind == "term" and self.words else self.name

    @property
    def latest(self) -> Spike | None:
        return self.spikes[-1] if self.spikes else None

    def is_recent(self, within: int = 2) -> bool:
        """A spike ongoing or ended within the last ``within`` buckets."""
        s = self.latest
        return s is not None and s.end >= len(self.counts) - within

    def spike_start(self, spike: Spike) -> datetime:
        return self.starts[spike.start]


def overlap(a: frozenset[int], b: frozenset[int]) -> float:
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


def cluster(
    topics: list[Trend], terms: list[Trend], threshold: float = 0.6
) -> tuple[list[Trend], list[Trend]]:
    """Merge spiking terms that occur in mostly the same questions into one cluster, and mark
    clusters that are the same questions as a spiking topic (their words go to the topic)."""
    clusters: list[Trend] = []
    quiet: list[Trend] = []
    for t in sorted(terms, key=lambda t: -(t.latest.peak_count if t.latest else 0)):
        if not t.is_recent():
            quiet.append(t)
            continue
        for i, c in enumerate(clusters):
            if overlap(c.recent, t.recent) >= threshold:
                clusters[i] = replace(c, recent=c.recent | t.recent, words=(*c.words, t.name))
                break
        else:
            clusters.append(replace(t, words=(t.name,)))
    out_topics = list(topics)
    for i, c in enumerate(clusters):
        for j, topic in enumerate(out_topics):
            if topic.is_recent() and overlap(topic.recent, c.recent) >= threshold:
                out_topics[j] = replace(topic, words=(*topic.words, *c.words))
                clusters[i] = replace(c, covered_by=topic.name)
                break
    return out_topics, clusters + quiet


def params_of(settings: TrendSettings) -> SpikeParams:
    return SpikeParams(
        window=settings.window,
        min_history=settings.min_history,
        alpha=settings.alpha,
        min_count=settings.min_count,
        min_ratio=settings.min_ratio,
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

    # terms: the opening questions' content words. Two passes: the last two buckets name the
    # candidates (frequent enough lately); only then is the whole window read, for them alone.
    def texts_since(start: datetime) -> Any:
        return (
            select(THREAD.c.id, idx, THREAD.c.topic, cast(MESSAGE.c.text, String))
            .select_from(THREAD.join(MESSAGE, MESSAGE.c.id == THREAD.c.root_message_id))
            .where(THREAD.c.opened_at >= start, THREAD.c.is_private.is_(False))
        )

    recent_since = datetime.fromtimestamp((last - 1) * b, UTC)
    recent_ids: dict[str, set[int]] = defaultdict(set)
    topic_ids: dict[str, set[int]] = defaultdict(set)
    for tid, _i, topic, text in (await session.execute(texts_since(recent_since))).all():
        if topic is not None:
            topic_ids[str(topic)].add(int(tid))
        for term in terms_of(text or ""):
            recent_ids[term].add(int(tid))
    candidates = sorted(
        (t for t, ids in recent_ids.items() if len(ids) >= settings.min_count),
        key=lambda t: (-len(recent_ids[t]), t),
    )[:max_terms]
    per_term: dict[str, Counter[int]] = defaultdict(Counter)
    if candidates:
        wanted = set(candidates)
        for _tid, i, _topic, text in (await session.execute(texts_since(since))).all():
            for term in terms_of(text or "") & wanted:
                per_term[term][int(i)] += 1
    term_series = {t: [per_term[t][i] for i in range(first, last + 1)] for t in candidates}
    terms = [
        replace(t, recent=frozenset(recent_ids[t.name])) for t in analyse("term", term_series, starts, params)
    ]
    topics = [
        replace(t, recent=frozenset(topic_ids[t.name]))
        for t in analyse("topic", topic_series, starts, params)
    ]
    topics, terms = cluster(topics, terms)
    return topics + terms
