"""Policy matching (first match wins) and stage due times, with business hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from bot.settings import SlaSettings
from bot.sla.policy import FIRST_RESPONSE, NEXT_RESPONSE, RESOLUTION, Planner, ThreadFacts

SETTINGS = SlaSettings.model_validate(
    {
        "calendars": {
            "office": {"timezone": "Europe/Berlin", "hours": {"mon": "09:00-17:00", "tue": "09:00-17:00"}}
        },
        "policies": [
            {
                "name": "vip-urgent",
                "match": {"priority": ["urgent"], "channel": ["tg:vip-room"]},
                "first_response": "10m",
                "stages": [{"at": "100%", "action": "escalate"}],
            },
            {"name": "urgent", "match": {"priority": ["urgent", "high"]}, "first_response": "15m"},
            {
                "name": "billing",
                "match": {"topic": ["billing"], "connector": ["tg", "dc"]},
                "first_response": "2h",
                "next_response": "4h",
                "resolution": "2d",
                "calendar": "office",
                "stages": [
                    {"at": "50%", "action": "remind"},
                    {"at": "45m", "action": "warn", "clock": "first_response"},
                    {"at": "100%", "action": "widen"},
                    {"at": "150%", "action": "escalate", "audience": ["staff"]},
                    {"at": "90%", "action": "escalate", "clock": "resolution"},
                ],
            },
            {"name": "default", "first_response": "1h", "stages": [{"at": "100%", "action": "escalate"}]},
        ],
    }
)
PLANNER = Planner(SETTINGS)

MATCH_CASES = [
    # (connector, conversation, topic, priority) -> policy
    (("tg", "vip-room", None, "urgent"), "vip-urgent"),
    (("tg", "other", None, "urgent"), "urgent"),
    (("dc", "vip-room", None, "urgent"), "urgent"),  # channel given as connector:conversation
    (("x", "c", "billing", "high"), "urgent"),  # first match wins over the topic policy
    (("tg", "c", "billing", "normal"), "billing"),
    (("x", "c", "billing", "normal"), "default"),  # billing is only for tg and dc
    (("dc", "c", "login", "low"), "default"),
]


@pytest.mark.parametrize(("facts", "expected"), MATCH_CASES)
def test_first_matching_policy_wins(facts: tuple[str, str, str | None, str], expected: str) -> None:
    policy = PLANNER.match(ThreadFacts(*facts))
    assert policy is not None and policy.name == expected


def test_no_catch_all_means_no_policy() -> None:
    p = Planner(
        SlaSettings.model_validate(
            {"policies": [{"name": "u", "match": {"priority": ["urgent"]}, "first_response": "5m"}]}
        )
    )
    assert p.match(ThreadFacts("tg", "c", None, "normal")) is None


def _utc(s: str) -> datetime:
    return datetime.fromisoformat(s).astimezone(UTC)


@pytest.mark.parametrize(
    ("clock", "start", "expected"),
    [
        # Monday 2026-11-23 16:00 Berlin, office hours Mon/Tue 9-17: 2 h target
        (
            FIRST_RESPONSE,
            "2026-11-23T16:00+01:00",
            [
                ("remind", "2026-11-23T17:00+01:00"),
                ("warn", "2026-11-23T16:45+01:00"),
                ("widen", "2026-11-24T10:00+01:00"),
                ("escalate", "2026-11-24T11:00+01:00"),
            ],
        ),
        # next response: 4 h target; "warn" is first-response only
        (
            NEXT_RESPONSE,
            "2026-11-24T15:00+01:00",
            [
                ("remind", "2026-11-24T17:00+01:00"),
                ("widen", "2026-11-30T11:00+01:00"),
                ("escalate", "2026-11-30T13:00+01:00"),
            ],
        ),
        # resolution: 90% of 2 d = 43 h 12 min of open time; 16 open hours a week (Mon, Tue)
        (RESOLUTION, "2026-11-23T09:00+01:00", [("escalate", "2026-12-08T12:12+01:00")]),
    ],
)
def test_stage_due_times_in_office_hours(clock: str, start: str, expected: list[tuple[str, str]]) -> None:
    policy = PLANNER.by_name["billing"]
    stages = PLANNER.plan(policy, clock, 7, _utc(start))
    assert [(s.action, s.due_at) for s in stages] == [(a, _utc(d)) for a, d in expected]
    assert all(s.cycle == 7 and s.policy == "billing" for s in stages)


def test_a_clock_without_a_target_plans_nothing() -> None:
    assert PLANNER.plan(PLANNER.by_name["default"], RESOLUTION, 1, _utc("2026-11-23T10:00+00:00")) == []


def test_next_response_falls_back_to_the_first_response_target() -> None:
    stages = PLANNER.plan(PLANNER.by_name["default"], NEXT_RESPONSE, 1, _utc("2026-11-23T10:00+00:00"))
    assert [s.due_at for s in stages] == [_utc("2026-11-23T11:00+00:00")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"policies": [{"name": "a", "first_response": "1h", "calendar": "nope"}]},
            "no calendar named 'nope'",
        ),
        (
            {
                "policies": [
                    {
                        "name": "a",
                        "first_response": "1h",
                        "stages": [{"at": "1h", "action": "escalate", "audience": ["pager"]}],
                    }
                ]
            },
            "no audience or target named 'pager'",
        ),
        ({"targets": {"mail": {"type": "email", "to": ["ops@example.com"]}}}, "sla.smtp is not set"),
        ({"targets": {"hook": {"type": "webhook"}}}, "a webhook target needs url"),
        ({"calendars": {"c": {"hours": {"mon": "17:00-09:00"}}}}, "ends before it starts"),
        ({"calendars": {"c": {"hours": {"mon": "closed"}}}}, "at least one open weekday"),
        ({"calendars": {"c": {"timezone": "Mars/Olympus"}}}, "unknown time zone"),
        (
            {
                "policies": [
                    {"name": "a", "first_response": "1h", "stages": [{"at": "soon", "action": "warn"}]}
                ]
            },
            "duration",
        ),
    ],
)
def test_invalid_sla_settings_are_explained(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SlaSettings.model_validate(data)


def test_offsets_percent_and_duration() -> None:
    start = _utc("2026-11-23T10:00+00:00")
    p = Planner(
        SlaSettings.model_validate(
            {
                "policies": [
                    {
                        "name": "d",
                        "first_response": "30m",
                        "stages": [{"at": "12.5%", "action": "warn"}, {"at": "1h30m", "action": "escalate"}],
                    }
                ]
            }
        )
    )
    due = [s.due_at - start for s in p.plan(p.by_name["d"], FIRST_RESPONSE, 1, start)]
    assert due == [timedelta(minutes=3, seconds=45), timedelta(minutes=90)]
