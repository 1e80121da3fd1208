"""Deadline arithmetic across business hours, weekends, holidays and DST (tables of cases)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.sla.calendar import BusinessCalendar

BERLIN = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")
WEEKDAYS_9_17 = {d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")}


def local(tz: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:  # noqa: PLR0917
    return datetime(y, mo, d, h, mi, tzinfo=tz)


OFFICE = BusinessCalendar.from_hours("office", "Europe/Berlin", WEEKDAYS_9_17, [date(2026, 12, 25)])
SPLIT = BusinessCalendar.from_hours(
    "split", "America/New_York", {"mon": "09:00-12:00, 13:00-17:00", "sat": "10:00-24:00"}
)
ALWAYS = BusinessCalendar.always()

# 2026: Mon 2026-11-23; Berlin DST ends Sun 2026-10-25, starts Sun 2026-03-29;
# New York DST starts Sun 2026-03-08, ends Sun 2026-11-01; Fri 2026-12-25 is a holiday here.
ADD_CASES = [
    # (calendar, start, amount, expected) -- start/expected in local time
    (
        "24/7 adds plain time",
        ALWAYS,
        local(BERLIN, 2026, 11, 21, 23),
        timedelta(hours=2),
        local(BERLIN, 2026, 11, 22, 1),
    ),
    (
        "inside the day",
        OFFICE,
        local(BERLIN, 2026, 11, 23, 10),
        timedelta(hours=2),
        local(BERLIN, 2026, 11, 23, 12),
    ),
    (
        "ends exactly at close",
        OFFICE,
        local(BERLIN, 2026, 11, 23, 16),
        timedelta(hours=1),
        local(BERLIN, 2026, 11, 23, 17),
    ),
    (
        "rolls to the next morning",
        OFFICE,
        local(BERLIN, 2026, 11, 23, 16),
        timedelta(hours=2),
        local(BERLIN, 2026, 11, 24, 10),
    ),
    (
        "before opening starts at 9",
        OFFICE,
        local(BERLIN, 2026, 11, 23, 6),
        timedelta(minutes=30),
        local(BERLIN, 2026, 11, 23, 9, 30),
    ),
    (
        "friday evening -> monday",
        OFFICE,
        local(BERLIN, 2026, 11, 27, 16),
        timedelta(hours=2),
        local(BERLIN, 2026, 11, 30, 10),
    ),
    (
        "asked on saturday",
        OFFICE,
        local(BERLIN, 2026, 11, 28, 12),
        timedelta(hours=1),
        local(BERLIN, 2026, 11, 30, 10),
    ),
    (
        "holiday friday skipped",
        OFFICE,
        local(BERLIN, 2026, 12, 24, 16),
        timedelta(hours=2),
        local(BERLIN, 2026, 12, 28, 10),
    ),
    (
        "a full week of office time",
        OFFICE,
        local(BERLIN, 2026, 11, 23, 9),
        timedelta(hours=40),
        local(BERLIN, 2026, 11, 27, 17),
    ),
    # DST: the day is 8 real hours either side; a night that changes length moves only UTC
    (
        "berlin fall back weekend",
        OFFICE,
        local(BERLIN, 2026, 10, 23, 16),
        timedelta(hours=2),
        local(BERLIN, 2026, 10, 26, 10),
    ),
    (
        "berlin spring forward weekend",
        OFFICE,
        local(BERLIN, 2026, 3, 27, 16),
        timedelta(hours=2),
        local(BERLIN, 2026, 3, 30, 10),
    ),
    (
        "24/7 across spring forward",
        ALWAYS,
        local(BERLIN, 2026, 3, 29, 1),
        timedelta(hours=2),
        local(BERLIN, 2026, 3, 29, 4),
    ),
    (
        "24/7 across fall back",
        ALWAYS,
        local(BERLIN, 2026, 10, 25, 1),
        timedelta(hours=3),
        local(BERLIN, 2026, 10, 25, 3),
    ),
    # split hours and a 24:00 close in New York
    (
        "lunch break skipped",
        SPLIT,
        local(NY, 2026, 11, 23, 11),
        timedelta(hours=2),
        local(NY, 2026, 11, 23, 14),
    ),
    (
        "monday -> saturday",
        SPLIT,
        local(NY, 2026, 11, 23, 16),
        timedelta(hours=2),
        local(NY, 2026, 11, 28, 11),
    ),
    (
        "open until midnight",
        SPLIT,
        local(NY, 2026, 11, 28, 23),
        timedelta(minutes=90),
        local(NY, 2026, 11, 30, 9, 30),
    ),
    (
        "NY spring forward saturday",
        SPLIT,
        local(NY, 2026, 3, 7, 23),
        timedelta(hours=2),
        local(NY, 2026, 3, 9, 10),
    ),
    (
        "NY fall back saturday",
        SPLIT,
        local(NY, 2026, 10, 31, 23),
        timedelta(hours=2),
        local(NY, 2026, 11, 2, 10),
    ),
]


@pytest.mark.parametrize(
    ("name", "cal", "start", "amount", "expected"), ADD_CASES, ids=[c[0] for c in ADD_CASES]
)
def test_add(
    name: str, cal: BusinessCalendar, start: datetime, amount: timedelta, expected: datetime
) -> None:
    got = cal.add(start, amount)
    assert got == expected, f"{name}: {got.astimezone(expected.tzinfo)} != {expected}"
    assert got.tzinfo is UTC
    # elapsed() is add()'s inverse over the open time
    assert cal.elapsed(start, got) == amount


def test_real_length_of_a_dst_day_in_utc() -> None:
    # the Monday after Berlin's spring-forward opens at 07:00 UTC, the Friday before at 08:00 UTC
    before = OFFICE.add(local(BERLIN, 2026, 3, 27, 16, 59), timedelta(minutes=2))
    after = OFFICE.add(local(BERLIN, 2026, 3, 30, 8), timedelta(minutes=1))
    assert before.astimezone(UTC) == datetime(2026, 3, 30, 7, 1, tzinfo=UTC)
    assert after.astimezone(UTC) == datetime(2026, 3, 30, 7, 1, tzinfo=UTC)


ELAPSED_CASES = [
    (
        "weekend does not count",
        OFFICE,
        local(BERLIN, 2026, 11, 27, 16),
        local(BERLIN, 2026, 11, 30, 10),
        timedelta(hours=2),
    ),
    (
        "night does not count",
        OFFICE,
        local(BERLIN, 2026, 11, 23, 20),
        local(BERLIN, 2026, 11, 24, 8),
        timedelta(0),
    ),
    (
        "end before start",
        OFFICE,
        local(BERLIN, 2026, 11, 24, 10),
        local(BERLIN, 2026, 11, 23, 10),
        timedelta(0),
    ),
    (
        "holiday does not count",
        OFFICE,
        local(BERLIN, 2026, 12, 25, 9),
        local(BERLIN, 2026, 12, 25, 17),
        timedelta(0),
    ),
]


@pytest.mark.parametrize(
    ("name", "cal", "a", "b", "expected"), ELAPSED_CASES, ids=[c[0] for c in ELAPSED_CASES]
)
def test_elapsed(name: str, cal: BusinessCalendar, a: datetime, b: datetime, expected: timedelta) -> None:
    assert cal.elapsed(a, b) == expected


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        (local(BERLIN, 2026, 11, 23, 9), True),
        (local(BERLIN, 2026, 11, 23, 17), False),
        (local(BERLIN, 2026, 11, 28, 12), False),
        (local(BERLIN, 2026, 12, 25, 12), False),
    ],
)
def test_is_open(at: datetime, open_: bool) -> None:
    assert OFFICE.is_open(at) is open_


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        OFFICE.add(datetime(2026, 11, 23, 10), timedelta(hours=1))


def test_never_open_calendar_is_refused() -> None:
    with pytest.raises(ValueError, match="never open"):
        BusinessCalendar.from_hours("x", "UTC", {"mon": "closed"})
