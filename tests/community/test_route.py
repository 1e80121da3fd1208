"""triage.route: every rule, as a table of cases (pure; no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from triage.route import (
    HelperProfile,
    HelperStats,
    Pool,
    Question,
    RouteSettings,
    acceptance,
    in_hours,
    is_flagged,
    parse_hours,
    route,
    wanted,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday, 12:00 UTC
T0 = NOW - timedelta(days=1)


def helper(key: str, **kw: object) -> HelperProfile:
    base = HelperProfile(
        key=key,
        display=key.title(),
        identities={"tg": key},
        handles={"tg": key},
        topics=frozenset({"login"}),
        languages=frozenset({"en"}),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def picked(
    helpers: list[HelperProfile], stats: dict[str, HelperStats] | None = None, **q: object
) -> list[str]:
    question = Question(**{"connector_id": "tg", "asker_id": "cust", "topic": "login", "language": "en", **q})  # type: ignore[arg-type]
    return [p.key for p in route(Pool(helpers, stats or {}), question, NOW, RouteSettings()).picks]


CASES: list[tuple[str, list[HelperProfile], dict[str, HelperStats], dict[str, object], list[str]]] = [
    ("two experts are tagged", [helper("ann"), helper("bo")], {}, {}, ["ann", "bo"]),
    ("never the asker", [helper("ann"), helper("bo"), helper("cust")], {}, {}, ["ann", "bo"]),
    ("never the asker, who is a helper", [helper("ann"), helper("eve")], {}, {"asker_id": "eve"}, ["ann"]),
    (
        "never someone who declined",
        [helper("ann"), helper("bo")],
        {},
        {"declined": frozenset({"ann"})},
        ["bo"],
    ),
    ("not twice on one thread", [helper("ann"), helper("bo")], {}, {"exclude": frozenset({"bo"})}, ["ann"]),
    ("staff are not routed to", [helper("ann"), helper("sam", role="staff")], {}, {}, ["ann"]),
    ("retired helpers are not routed to", [helper("ann"), helper("bo", active=False)], {}, {}, ["ann"]),
    (
        "only helpers on the thread's platform",
        [helper("ann"), helper("bo", identities={"dc": "bo"})],
        {},
        {},
        ["ann"],
    ),
    ("language: must read it", [helper("ann", languages=frozenset({"de"})), helper("bo")], {}, {}, ["bo"]),
    (
        "language: no languages reads any",
        [helper("ann", languages=frozenset())],
        {},
        {"language": "fi"},
        ["ann"],
    ),
    (
        "language: unknown question language",
        [helper("ann", languages=frozenset({"de"}))],
        {},
        {"language": None},
        ["ann"],
    ),
    ("away", [helper("ann", away=True), helper("bo")], {}, {}, ["bo"]),
    (
        "away until a time that passed",
        [helper("ann", away=True, away_until=NOW - timedelta(minutes=1))],
        {},
        {},
        ["ann"],
    ),
    ("away until later", [helper("ann", away=True, away_until=NOW + timedelta(hours=1))], {}, {}, []),
    (
        "outside hours in their zone",
        [helper("ann", hours=(9 * 60, 17 * 60), timezone="Asia/Tokyo"), helper("bo")],
        {},
        {},
        ["bo"],
    ),
    (
        "inside hours in their zone",
        [helper("ann", hours=(9 * 60, 17 * 60), timezone="Europe/Berlin")],
        {},
        {},
        ["ann"],
    ),
    (
        "overnight hours",
        [helper("ann", hours=(22 * 60, 6 * 60), timezone="America/Los_Angeles")],
        {},
        {},
        ["ann"],
    ),
    ("at the cap", [helper("ann", max_open=2), helper("bo")], {"ann": HelperStats(open=2)}, {}, ["bo"]),
    ("under the cap", [helper("ann", max_open=3)], {"ann": HelperStats(open=2)}, {}, ["ann"]),
    ("cap zero: never", [helper("ann", max_open=0)], {}, {}, []),
    (
        "other topics only: not tagged",
        [helper("ann", topics=frozenset({"billing"})), helper("bo")],
        {},
        {},
        ["bo"],
    ),
    (
        "expertise: profile topic beats a generalist",
        [helper("gen", topics=frozenset()), helper("ann"), helper("bo")],
        {
            "gen": HelperStats(last_tagged=None),
            "ann": HelperStats(last_tagged=NOW),
            "bo": HelperStats(last_tagged=NOW),
        },
        {},
        ["ann", "bo"],
    ),
    ("generalists fill in", [helper("gen", topics=frozenset()), helper("ann")], {}, {}, ["ann", "gen"]),
    (
        "expertise: accepted answers in the topic come first",
        [helper("ann"), helper("bo"), helper("cy")],
        {"cy": HelperStats(accepted_by_topic={"login": 4}, last_tagged=NOW)},
        {},
        ["cy", "ann"],
    ),
    (
        "expertise by history alone (topic not in the profile)",
        [helper("ann", topics=frozenset({"billing"}))],
        {"ann": HelperStats(accepted_by_topic={"login": 2})},
        {},
        ["ann"],
    ),
    (
        "fairness: least recently tagged first",
        [helper("ann"), helper("bo"), helper("cy")],
        {"ann": HelperStats(last_tagged=NOW - timedelta(minutes=5)), "bo": HelperStats(last_tagged=T0)},
        {},
        ["cy", "bo"],
    ),
    (
        "load among equals: fewer open threads first",
        [helper("ann"), helper("bo"), helper("cy")],
        {
            "ann": HelperStats(open=3, last_tagged=T0),
            "bo": HelperStats(open=1, last_tagged=T0),
            "cy": HelperStats(open=2, last_tagged=T0),
        },
        {},
        ["bo", "cy"],
    ),
    (
        "quality: repeatedly rejected answers are tagged less",
        [helper("ann"), helper("bo"), helper("cy")],
        {"ann": HelperStats(rejected=5, accepted=0)},
        {},
        ["bo", "cy"],
    ),
    (
        "quality: flagged still tagged when nobody else fits",
        [helper("ann")],
        {"ann": HelperStats(rejected=5)},
        {},
        ["ann"],
    ),
    (
        "quality: badly rated",
        [helper("ann"), helper("bo")],
        {"ann": HelperStats(rating_sum=4, rating_count=4)},
        {"priority": "low"},
        ["bo", "ann"],
    ),
    (
        "priority: urgent tags one more",
        [helper("ann"), helper("bo"), helper("cy")],
        {},
        {"priority": "urgent"},
        ["ann", "bo", "cy"],
    ),
    (
        "no topic: everyone on the platform",
        [helper("ann"), helper("bo", topics=frozenset({"billing"}))],
        {},
        {"topic": None},
        ["ann", "bo"],
    ),
    ("nobody fits", [helper("ann", away=True), helper("bo", max_open=0)], {}, {}, []),
]


@pytest.mark.parametrize(
    ("helpers", "stats", "question", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_route_rules(
    helpers: list[HelperProfile],
    stats: dict[str, HelperStats],
    question: dict[str, object],
    expected: list[str],
) -> None:
    assert picked(helpers, stats, **question) == expected


def test_reasons_explain_every_candidate_and_nobody_goes_to_staff() -> None:
    pool = Pool(
        [
            helper("ann", away=True),
            helper("bo", max_open=1),
            helper("cust"),
            helper("di", languages=frozenset({"de"})),
        ],
        {"bo": HelperStats(open=1)},
    )
    r = route(
        pool, Question(connector_id="tg", asker_id="cust", topic="login", language="en"), NOW, RouteSettings()
    )
    assert r.to_staff and not r.picks
    assert set(r.reasons) == {
        "ann: away",
        "bo: at their cap (1/1 open)",
        "cust: the asker",
        "di: does not read en",
        "nobody fits: to staff now",
    }


def test_why_lines_and_per_topic_n() -> None:
    pool = Pool(
        [helper("ann"), helper("bo"), helper("cy")], {"ann": HelperStats(accepted_by_topic={"login": 1})}
    )
    settings = RouteSettings(per_topic={"login": 1})
    r = route(pool, Question(connector_id="tg", asker_id="x", topic="login", language="de"), NOW, settings)
    assert [(p.key, p.why) for p in r.picks] == []  # nobody reads German
    r = route(pool, Question(connector_id="tg", asker_id="x", topic="login", language="en"), NOW, settings)
    assert [(p.key, p.why) for p in r.picks] == [("ann", "you know `login` (1 accepted answer)")]
    assert wanted(Question(connector_id="tg", asker_id="x", topic="other", priority="high"), settings) == 3


def test_a_batch_spreads_load_with_note_tagged() -> None:
    pool = Pool([helper("ann", max_open=1), helper("bo", max_open=1), helper("cy", max_open=1)], {})
    q = Question(connector_id="tg", asker_id="x", topic="login", language="en")
    seen = []
    for _ in range(3):
        r = route(pool, q, NOW, RouteSettings(), n=1)
        for p in r.picks:
            pool.note_tagged(p.key, NOW)
        seen.append([p.key for p in r.picks])
    assert seen == [["ann"], ["bo"], ["cy"]]
    assert route(pool, q, NOW, RouteSettings()).to_staff


@pytest.mark.parametrize(
    ("text", "minute", "inside"),
    [
        ("09:00-17:00", 9 * 60, True),
        ("09:00-17:00", 17 * 60, False),
        ("09:00-17:00", 8 * 60 + 59, False),
        ("22:00-06:00", 23 * 60, True),
        ("22:00-06:00", 5 * 60, True),
        ("22:00-06:00", 12 * 60, False),
        ("00:00-24:00", 23 * 60 + 59, True),
        (None, 0, True),
    ],
)
def test_hours(text: str | None, minute: int, inside: bool) -> None:
    assert in_hours(parse_hours(text), minute) is inside


@pytest.mark.parametrize(
    ("stats", "flagged"),
    [
        (HelperStats(), False),
        (HelperStats(rejected=2), False),  # too few to judge
        (HelperStats(rejected=3), True),
        (HelperStats(rejected=3, accepted=3), False),
        (HelperStats(rating_sum=6, rating_count=3), True),
        (HelperStats(rating_sum=12, rating_count=3), False),
    ],
)
def test_flagging(stats: HelperStats, flagged: bool) -> None:
    assert is_flagged(stats, RouteSettings()) is flagged
    assert 0 < acceptance(stats) < 1
