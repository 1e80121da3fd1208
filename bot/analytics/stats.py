"""Key figures from per-thread facts: deflection, first response, SLA, savings, volume.

Definitions (also in docs/dashboard.md):

- outcome of a thread: ``staff`` when a staff member wrote in it, or it was routed privately /
  needed a human, or it sits with staff or escalated; else ``auto`` when the bot's opening
  decision was an auto-answer and no human answered; else ``community`` when a human answered
  (the pipeline recorded a first response: a helper's or staff's reply, never the bot's or the
  asker's); else ``waiting``.
- deflection shares: outcomes over all threads opened in the window.
- first response: time from the question to the first helper/staff reply (not the bot).
- SLA compliance: threads whose first response came within their policy's target, over those
  met or already breached (a thread still inside its target is pending, not counted). An
  auto-answer that was not rejected counts as an immediate response.
- savings: threads resolved without staff (``auto`` or ``community`` and answered, solved,
  closed or auto-answered) times the configured cost of one staff contact.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

Outcome = Literal["auto", "community", "staff", "waiting"]
OUTCOMES: tuple[Outcome, ...] = ("auto", "community", "staff", "waiting")
STAFF_KINDS = frozenset({"route_private", "needs_human"})
STAFF_STATES = frozenset({"with_staff", "escalated"})
RESOLVED_STATES = frozenset({"answered", "solved", "closed", "auto_answered"})
AUTO_DONE_STATES = frozenset({"auto_answered", "solved", "closed"})


@dataclass(frozen=True, slots=True)
class ThreadFact:
    """One thread as the analytics see it (what the query returns, in plain types)."""

    platform: str
    connector_id: str
    conversation_id: str
    bucket: str  # "YYYY-MM-DD" or "YYYY-MM-DD HH" of opened_at (UTC)
    opening_kind: str | None
    state: str
    priority: str
    topic: str | None
    response_s: float | None  # first human response - opened, seconds
    age_s: float  # now - opened, seconds
    staff_touched: bool = False  # a configured staff identity wrote in it
    helper_touched: bool = False  # a human answered (thread.first_response_at is set)


@dataclass(frozen=True, slots=True)
class PolicyTarget:
    """The part of an SLA policy the compliance figure needs (first match wins)."""

    name: str
    first_response_s: float
    priorities: frozenset[str] = frozenset()
    topics: frozenset[str] = frozenset()
    connectors: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()

    def matches(self, f: ThreadFact) -> bool:
        return (
            (not self.priorities or f.priority in self.priorities)
            and (not self.topics or (f.topic or "") in self.topics)
            and (not self.connectors or f.connector_id in self.connectors)
            and (not self.channels or f.conversation_id in self.channels)
        )


@dataclass(frozen=True, slots=True)
class SlaSummary:
    met: int = 0
    breached: int = 0
    pending: int = 0

    @property
    def compliance(self) -> float | None:
        n = self.met + self.breached
        return self.met / n if n else None


@dataclass(frozen=True, slots=True)
class Deflection:
    counts: dict[str, int]
    total: int
    resolved_without_staff: int

    def share(self, outcome: Outcome) -> float:
        return self.counts.get(outcome, 0) / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class Overview:
    since: datetime
    until: datetime
    total: int
    deflection: Deflection
    responses: int
    p50_s: float | None
    p90_s: float | None
    sla: SlaSummary
    savings: float
    currency: str
    open_by_state: dict[str, int]
    buckets: list[str]
    volume: dict[str, list[int]]  # platform -> counts per bucket
    decisions_by_kind: dict[str, int] = field(default_factory=dict)


def outcome(f: ThreadFact) -> Outcome:
    if f.staff_touched or (f.opening_kind in STAFF_KINDS) or f.state in STAFF_STATES:
        return "staff"
    if f.opening_kind == "auto_answer" and not f.helper_touched:
        return "auto"
    if f.helper_touched:
        return "community"
    return "waiting"


def deflection(facts: Iterable[ThreadFact]) -> Deflection:
    counts: Counter[str] = Counter()
    resolved = 0
    total = 0
    for f in facts:
        o = outcome(f)
        counts[o] += 1
        total += 1
        if o in ("auto", "community") and f.state in RESOLVED_STATES:
            resolved += 1
    return Deflection({o: counts.get(o, 0) for o in OUTCOMES}, total, resolved)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def policy_for(f: ThreadFact, policies: Sequence[PolicyTarget]) -> PolicyTarget | None:
    return next((p for p in policies if p.matches(f)), None)


def sla(facts: Iterable[ThreadFact], policies: Sequence[PolicyTarget]) -> SlaSummary:
    met = breached = pending = 0
    for f in facts:
        p = policy_for(f, policies)
        if p is None:
            continue
        if f.response_s is None and f.opening_kind == "auto_answer" and f.state in AUTO_DONE_STATES:
            met += 1  # the bot answered at once and nobody asked for more
        elif f.response_s is not None:
            if f.response_s <= p.first_response_s:
                met += 1
            else:
                breached += 1
        elif f.age_s > p.first_response_s:
            breached += 1
        else:
            pending += 1
    return SlaSummary(met, breached, pending)


def bucket_labels(since: datetime, until: datetime, unit: Literal["day", "hour"]) -> list[str]:
    """Every bucket label from ``since`` to ``until`` (UTC), matching the query's format."""
    step = timedelta(days=1) if unit == "day" else timedelta(hours=1)
    fmt = "%Y-%m-%d" if unit == "day" else "%Y-%m-%d %H"
    start = since.replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        start = start.replace(hour=0)
    out: list[str] = []
    t = start
    while t <= until:
        out.append(t.strftime(fmt))
        t += step
    return out


def volume(facts: Iterable[ThreadFact], buckets: Sequence[str]) -> dict[str, list[int]]:
    index = {b: i for i, b in enumerate(buckets)}
    out: dict[str, list[int]] = {}
    for f in facts:
        i = index.get(f.bucket)
        if i is None:
            continue
        out.setdefault(f.platform, [0] * len(buckets))[i] += 1
    return dict(sorted(out.items()))


def overview(
    facts: Sequence[ThreadFact],
    *,
    since: datetime,
    until: datetime,
    unit: Literal["day", "hour"],
    policies: Sequence[PolicyTarget],
    cost_per_contact: float,
    currency: str,
    open_by_state: dict[str, int],
    decisions_by_kind: dict[str, int] | None = None,
) -> Overview:
    d = deflection(facts)
    times = [f.response_s for f in facts if f.response_s is not None]
    buckets = bucket_labels(since, until, unit)
    return Overview(
        since=since,
        until=until,
        total=len(facts),
        deflection=d,
        responses=len(times),
        p50_s=percentile(times, 50),
        p90_s=percentile(times, 90),
        sla=sla(facts, policies),
        savings=round(d.resolved_without_staff * cost_per_contact, 2),
        currency=currency,
        open_by_state=open_by_state,
        buckets=buckets,
        volume=volume(facts, buckets),
        decisions_by_kind=decisions_by_kind or {},
    )


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"
