"""Analytics: the spike test, the key figures (tables of cases), and alerts posted once per spike."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert, select, text

from bot.analytics.alerts import post_spike_alerts
from bot.analytics.spikes import Spike, SpikeParams, detect, negbin_sf, poisson_sf, tail_probability
from bot.analytics.stats import (
    PolicyTarget,
    ThreadFact,
    bucket_labels,
    deflection,
    outcome,
    percentile,
    sla,
)
from bot.analytics.trends import Trend, cluster, terms_of
from bot.storage.engine import create_engine, session_factory
from bot.storage.tables import MessageRow, OutboxRow, ThreadRow
from tests.web.conftest import Site
from tests.web.seed import make_config

# ------------------------------------------------------------------ tail probabilities


@pytest.mark.parametrize(
    ("x", "lam", "expected"),
    [
        (0, 3.0, 1.0),
        (1, 2.0, 1 - math.exp(-2.0)),
        (5, 1.0, 1 - sum(math.exp(-1.0) / math.factorial(k) for k in range(5))),
        (2, 5.0, 1 - math.exp(-5.0) * (1 + 5.0)),
        (30, 2.0, sum(math.exp(-2.0) * 2.0**k / math.factorial(k) for k in range(30, 80))),
    ],
)
def test_poisson_tail(x: int, lam: float, expected: float) -> None:
    assert poisson_sf(x, lam) == pytest.approx(expected, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("x", "mean"), [(1, 0.5), (3, 2.0), (10, 2.0), (40, 4.0)])
def test_negative_binomial_tail_with_r_1_is_geometric(x: int, mean: float) -> None:
    # r = 1 (variance = mean + mean^2): P(X >= x) = (mean / (1 + mean))^x
    assert negbin_sf(x, mean, mean + mean * mean) == pytest.approx((mean / (1 + mean)) ** x, rel=1e-9)


def test_overdispersed_baseline_needs_a_bigger_jump() -> None:
    steady = [3] * 24
    bursty = [0, 6] * 12  # same mean, much larger variance
    p_steady, _ = tail_probability(12, steady)
    p_bursty, _ = tail_probability(12, bursty)
    assert p_steady < 1e-3 < p_bursty


# ------------------------------------------------------------------ spike detection


def poisson_series(rate: float, n: int, seed: int) -> list[int]:
    return [int(v) for v in np.random.default_rng(seed).poisson(rate, n)]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("rate", [0.3, 2.0, 8.0, 30.0])
def test_a_steady_topic_does_not_alert(rate: float, seed: int) -> None:
    assert detect(poisson_series(rate, 24 * 14, seed)) == []


@pytest.mark.parametrize(
    ("rate", "burst"),
    [(0.5, [6, 9, 7]), (2.0, [12, 15, 14, 10]), (8.0, [30, 40]), (30.0, [80])],
)
def test_a_burst_alerts_once(rate: float, burst: list[int]) -> None:
    series = poisson_series(rate, 24 * 5, seed=1)
    at = len(series)
    series += burst + poisson_series(rate, 24, seed=2)
    spikes = detect(series)
    assert len(spikes) == 1, spikes
    [s] = spikes
    assert s.start == at and at <= s.end <= at + len(burst) - 1
    assert s.peak_count == max(burst)


def test_two_separate_bursts_are_two_spikes_and_a_spike_is_not_its_own_baseline() -> None:
    series = [2] * 60 + [20] * 30 + [2] * 20 + [25] + [2] * 5
    spikes = detect(series, SpikeParams(window=48))
    assert [(s.start, s.end) for s in spikes] == [(60, 89), (110, 110)]


def test_too_little_history_or_too_few_questions_never_alerts() -> None:
    assert detect([0] * 5 + [50], SpikeParams(min_history=12)) == []
    assert detect([0] * 40 + [4], SpikeParams(min_count=5)) == []


# ------------------------------------------------------------------ key figures


def fact(**kw: object) -> ThreadFact:
    base: dict[str, object] = {
        "platform": "x",
        "connector_id": "c",
        "conversation_id": "chat",
        "bucket": "2026-01-01",
        "opening_kind": "tag_helpers",
        "state": "awaiting_helper",
        "priority": "normal",
        "topic": None,
        "response_s": None,
        "age_s": 100.0,
    }
    base.update(kw)
    return ThreadFact(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"opening_kind": "auto_answer", "state": "auto_answered"}, "auto"),
        ({"opening_kind": "auto_answer", "helper_touched": True}, "community"),
        ({"helper_touched": True, "state": "answered"}, "community"),
        ({"helper_touched": True, "staff_touched": True}, "staff"),
        ({"opening_kind": "route_private"}, "staff"),
        ({"opening_kind": "needs_human"}, "staff"),
        ({"state": "escalated"}, "staff"),
        ({}, "waiting"),
    ],
)
def test_outcome(kw: dict[str, object], expected: str) -> None:
    assert outcome(fact(**kw)) == expected


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 50, None), ([5.0], 90, 5.0), ([1, 2, 3, 4], 50, 2.5), ([10, 20], 90, 19.0), ([3, 1, 2], 0, 1)],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def test_sla_uses_the_first_matching_policy() -> None:
    policies = [
        PolicyTarget("urgent", 600, priorities=frozenset({"urgent"})),
        PolicyTarget("default", 3600),
    ]
    facts = [
        fact(priority="urgent", response_s=900),  # breached (10 min target)
        fact(priority="normal", response_s=900),  # met
        fact(age_s=4000),  # no response past 1 h: breached
        fact(age_s=100),  # pending
        fact(opening_kind="auto_answer", state="auto_answered", age_s=9000),  # bot answered: met
    ]
    s = sla(facts, policies)
    assert (s.met, s.breached, s.pending) == (2, 2, 1)
    assert s.compliance == 0.5


def test_deflection_counts_and_resolved_without_staff() -> None:
    d = deflection(
        [
            fact(opening_kind="auto_answer", state="auto_answered"),
            fact(helper_touched=True, state="solved"),
            fact(helper_touched=True, state="awaiting_helper"),
            fact(staff_touched=True, state="solved"),
            fact(),
        ]
    )
    assert d.counts == {"auto": 1, "community": 2, "staff": 1, "waiting": 1}
    assert d.resolved_without_staff == 2
    assert d.share("community") == 0.4


def test_bucket_labels() -> None:
    since = datetime(2026, 1, 30, 22, 15, tzinfo=UTC)
    assert bucket_labels(since, since + timedelta(days=2), "day") == [
        "2026-01-30",
        "2026-01-31",
        "2026-02-01",
    ]
    assert bucket_labels(since, since + timedelta(hours=2), "hour") == [
        "2026-01-30 22",
        "2026-01-30 23",
        "2026-01-31 00",
    ]


@pytest.mark.parametrize(
    ("text_", "expected"),
    [
        ("The app crashes when I upload a photo!", {"crashes", "upload", "photo"}),
        ("mail joe@example.com order 12345", {"mail", "order", "example"}),
        ("help please thanks", set()),
    ],
)
def test_terms_of(text_: str, expected: set[str]) -> None:
    assert terms_of(text_) >= expected - {"example"} and not {"12345", "joe@example.com"} & terms_of(text_)


# ------------------------------------------------------------------ alerts, on real storage


async def test_spike_alert_is_posted_once(migrated: str, tmp_path: Path) -> None:
    config = make_config(tmp_path, migrated)
    engine = create_engine(migrated)
    sessions = session_factory(engine)
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    rng = np.random.default_rng(7)
    rows_t: list[dict[str, object]] = []
    rows_m: list[dict[str, object]] = []

    def question(i: int, topic: str, at: datetime, body: str) -> None:
        rows_m.append(
            {
                "id": i,
                "connector_id": "local",
                "external_id": f"q{i}",
                "platform": "jsonl",
                "conversation_id": "c",
                "kind": "channel_post",
                "author_id": f"u{i}",
                "text": body,
                "sent_at": at,
                "received_at": at,
                "raw": {},
                "thread_id": i,
            }
        )
        rows_t.append(
            {
                "id": i,
                "connector_id": "local",
                "platform": "jsonl",
                "conversation_id": "c",
                "root_message_id": i,
                "root_external_id": f"q{i}",
                "asker_id": f"u{i}",
                "topic": topic,
                "opened_at": at,
                "updated_at": at,
            }
        )

    i = 0
    for h in range(72, 0, -1):  # 3 days of steady traffic for two topics
        start = now - timedelta(hours=h)
        for topic, rate in (("login", 3.0), ("billing", 2.0)):
            for _ in range(int(rng.poisson(rate))):
                i += 1
                question(i, topic, start + timedelta(minutes=int(rng.integers(0, 59))), f"{topic} question")
    for k in range(14):  # this hour: billing bursts, with a new word in it
        i += 1
        question(i, "billing", now - timedelta(minutes=k * 2), "charged twice after the update")
    async with sessions() as s, s.begin():
        await s.execute(insert(MessageRow.__table__), rows_m)  # type: ignore[attr-defined]
        await s.execute(insert(ThreadRow.__table__), rows_t)  # type: ignore[attr-defined]
    try:
        settings = config.settings
        assert await post_spike_alerts(sessions, settings, now) == 1
        assert await post_spike_alerts(sessions, settings, now) == 0  # same spike: not again
        assert (
            await post_spike_alerts(sessions, settings, now + timedelta(hours=1)) == 0
        )  # still the same spike
        async with sessions() as s:
            keys = sorted((await s.execute(select(OutboxRow.__table__.c.idempotency_key))).scalars())  # type: ignore[attr-defined]
            rows = (await s.execute(text("select conversation_id, payload from outbox"))).all()
        # the burst's words ("charged", "twice", "update") are the same questions as the topic
        # spike: one alert, naming them, not four
        assert [k.split(":")[1:3] for k in keys] == [["topic", "billing"]]
        assert rows[0][0] == "staff"
        assert all(w in str(rows[0][1]) for w in ("charged", "twice", "update"))
    finally:
        await engine.dispose()


async def test_sql_overview_equals_the_python_rules(site: Site) -> None:
    """The overview evaluated in SQL matches the pure rules applied to one row per thread."""
    from bot.analytics.queries import load_overview, load_overview_from_facts

    now = datetime.now(UTC)
    async with site.sessions() as s:
        for span in (timedelta(hours=3, minutes=30), timedelta(days=7), timedelta(days=30)):
            fast = await load_overview(s, site.config.settings, now - span, now)
            reference = await load_overview_from_facts(s, site.config.settings, now - span, now)
            assert fast == reference, span
            assert fast.total == (5 if span.days else 3) + (1 if span.days == 30 else 0)


def _trend(kind: str, name: str, recent: set[int], spiking: bool = True) -> Trend:
    counts = [1] * 30 + ([9] if spiking else [1])
    spikes = [Spike(30, 30, 30, 9, 1.0, 1e-6)] if spiking else []
    start = datetime(2026, 1, 1, tzinfo=UTC)
    starts = [start + timedelta(hours=i) for i in range(len(counts))]
    return Trend(kind, name, counts, starts, spikes, frozenset(recent))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("terms", "topics", "expected_terms", "covered"),
    [
        # the same questions -> one cluster; a different set stays apart
        (
            [("crash", {1, 2, 3, 4}), ("upload", {1, 2, 3}), ("refund", {8, 9, 10})],
            [],
            [("crash", ("crash", "upload")), ("refund", ("refund",))],
            {},
        ),
        # a cluster that is the questions of a spiking topic is folded into it
        (
            [("charged", {1, 2, 3}), ("twice", {1, 2, 3})],
            [("billing", {1, 2, 3, 4})],
            [("charged", ("charged", "twice"))],
            {"charged": "billing"},
        ),
    ],
)
def test_cluster(
    terms: list[tuple[str, set[int]]],
    topics: list[tuple[str, set[int]]],
    expected_terms: list[tuple[str, tuple[str, ...]]],
    covered: dict[str, str],
) -> None:
    out_topics, out_terms = cluster(
        [_trend("topic", n, r) for n, r in topics], [_trend("term", n, r) for n, r in terms]
    )
    assert [(t.name, t.words) for t in out_terms] == expected_terms
    assert {t.name: t.covered_by for t in out_terms if t.covered_by} == covered
    for t in out_topics:
        assert set(t.words) == {w for c in out_terms if c.covered_by == t.name for w in c.words}


async def test_sql_overview_equals_the_python_rules_on_random_threads(migrated: str, tmp_path: Path) -> None:
    """400 random threads (states, opening kinds, replies by helpers/staff, priorities, topics)
    under two SLA policies: the SQL evaluation and the Python rules agree on every figure."""
    from bot.analytics.queries import load_overview, load_overview_from_facts
    from bot.storage.tables import DecisionRow

    extra = "    - name: urgent\n      match: { priority: [urgent] }\n      first_response: 10m\n"
    config = make_config(tmp_path, migrated)
    text_ = config.source.read_text("utf-8").replace("  policies:\n", "  policies:\n" + extra)  # type: ignore[union-attr]
    config.source.write_text(text_, "utf-8")  # type: ignore[union-attr]
    from bot.settings import load_config

    config = load_config(config.source, env={"TG_TOKEN": "123456789:AAFakeTokenForTestsOnly_abcdefghijk"})  # type: ignore[arg-type]
    assert [p.name for p in config.settings.sla.policies] == ["urgent", "default"]
    rng = np.random.default_rng(3)
    now = datetime.now(UTC)
    threads, messages, decisions = [], [], []
    states = ["awaiting_helper", "answered", "solved", "auto_answered", "with_staff", "escalated", "closed"]
    kinds = ["tag_helpers", "auto_answer", "route_private", "needs_human"]
    mid = 0
    for tid in range(1, 401):
        opened = now - timedelta(minutes=int(rng.integers(1, 60 * 24 * 10)))
        mid += 1
        root = mid
        messages.append(_row(root, tid, "u", opened))
        first = None
        if rng.random() < 0.6:
            mid += 1
            first = opened + timedelta(minutes=int(rng.integers(1, 180)))
            messages.append(_row(mid, tid, str(rng.choice(["ann", "bo", "sam"])), first))
        threads.append(
            {
                "id": tid,
                "connector_id": "local",
                "platform": str(rng.choice(["x", "tg"])),
                "conversation_id": "c",
                "root_message_id": root,
                "root_external_id": f"m{root}",
                "asker_id": "u",
                "state": str(rng.choice(states)),
                "topic": "login" if rng.random() < 0.5 else None,
                "priority": str(rng.choice(["normal", "urgent"])),
                "opened_at": opened,
                "updated_at": opened,
                "first_response_at": first,
            }
        )
        decisions.append(
            {
                "message_id": root,
                "thread_id": tid,
                "kind": str(rng.choice(kinds)),
                "payload": {},
                "decided_by": "t",
                "created_at": opened,
            }
        )
    engine = create_engine(migrated)
    sessions = session_factory(engine)
    try:
        async with sessions() as s, s.begin():
            await s.execute(insert(MessageRow.__table__), messages)  # type: ignore[attr-defined]
            await s.execute(insert(ThreadRow.__table__), threads)  # type: ignore[attr-defined]
            await s.execute(insert(DecisionRow.__table__), decisions)  # type: ignore[attr-defined]
        async with sessions() as s:
            for span in (timedelta(hours=6), timedelta(days=7), timedelta(days=30)):
                fast = await load_overview(s, config.settings, now - span, now)
                assert fast == await load_overview_from_facts(s, config.settings, now - span, now), span
                assert fast.total > 0 and fast.sla.met and fast.sla.breached
        await _check_rollups(sessions, config.settings, now)
    finally:
        await engine.dispose()


async def _check_rollups(sessions: Any, settings: Any, now: datetime) -> None:
    """The 30-day overview stores settled days, reuses them, and recomputes a day when one of its
    threads changes or when the settings the figures depend on change."""
    from sqlalchemy import select, update

    from bot.analytics.queries import (
        THREAD,
        bucket_expr,
        dialect,
        load_overview,
        load_overview_from_facts,
    )
    from bot.analytics.rollup import OVERVIEW_DAY, fingerprint

    span = timedelta(days=30)
    async with sessions() as s:
        stored = (await s.execute(select(OVERVIEW_DAY.c.day, OVERVIEW_DAY.c.computed_at))).all()
    assert len(stored) >= 7  # ten days of threads: the settled ones were rolled up
    assert {r.day for r in stored} <= {(now - timedelta(days=d)).strftime("%Y-%m-%d") for d in range(12)}
    async with sessions() as s:  # a second load reuses them: nothing recomputed
        again = await load_overview(s, settings, now - span, now)
        assert again == await load_overview_from_facts(s, settings, now - span, now)
        assert (await s.execute(select(OVERVIEW_DAY.c.day, OVERVIEW_DAY.c.computed_at))).all() == stored
    # a helper answers a question of a settled day: that day (only) is recomputed
    async with sessions() as s, s.begin():
        tid, opened, old_day = (
            await s.execute(
                select(THREAD.c.id, THREAD.c.opened_at, bucket_expr(dialect(s), THREAD.c.opened_at, "day"))
                .where(
                    bucket_expr(dialect(s), THREAD.c.opened_at, "day").in_([r.day for r in stored]),
                    THREAD.c.first_response_at.is_(None),
                )
                .order_by(THREAD.c.id)
                .limit(1)
            )
        ).one()
        await s.execute(
            update(THREAD)
            .where(THREAD.c.id == tid)
            .values(
                state="answered",
                first_response_at=opened + timedelta(minutes=5),
                updated_at=datetime.now(UTC) + timedelta(minutes=2),
            )
        )
    async with sessions() as s:
        changed = await load_overview(s, settings, now - span, now)
        assert changed == await load_overview_from_facts(s, settings, now - span, now)
        assert changed.responses == again.responses + 1
        after = dict((await s.execute(select(OVERVIEW_DAY.c.day, OVERVIEW_DAY.c.computed_at))).all())
    assert [d for d, at in stored if after[d] != at] == [old_day]
    # other settings (a new staff member): figures under a new fingerprint, still equal
    staff = settings.model_copy(
        update={"helpers": [h.model_copy(update={"role": "staff"}) for h in settings.helpers]}
    )
    assert fingerprint(staff) != fingerprint(settings)
    async with sessions() as s:
        assert await load_overview(s, staff, now - span, now) == await load_overview_from_facts(
            s, staff, now - span, now
        )


def _row(mid: int, tid: int, author: str, at: datetime) -> dict[str, object]:
    return {
        "id": mid,
        "connector_id": "local",
        "external_id": f"m{mid}",
        "platform": "x",
        "conversation_id": "c",
        "kind": "reply",
        "author_id": author,
        "text": "",
        "sent_at": at,
        "received_at": at,
        "raw": {},
        "thread_id": tid,
    }
