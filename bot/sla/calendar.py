"""Business-hours arithmetic: when is a deadline that is N hours of *open* time away?

A calendar is a set of open intervals per weekday in a time zone, minus holidays. All
arithmetic happens on real elapsed time in UTC between local wall-clock boundaries, so a DST
change inside or around a business day is handled by ``zoneinfo``: a 09:00-17:00 day is eight
real hours on either side of a change, and a night that gets an hour longer or shorter only
moves the next opening in UTC. ``24/7`` is the calendar that is always open.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.models import as_utc

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_DAYS = 3 * 366  # how far to look for open time before giving up (a bug or an empty calendar)

Span = tuple[time | None, time | None]  # (open, close); close None means 24:00


def parse_hours(text: str) -> tuple[Span, ...]:
    """``"09:00-12:00, 13:00-17:00"`` -> spans; ``"closed"`` -> ()."""
    if text.strip().lower() == "closed":
        return ()
    spans: list[Span] = []
    for part in text.split(","):
        a, _, b = part.strip().partition("-")
        start = time.fromisoformat(a)
        end = None if b == "24:00" else time.fromisoformat(b)
        spans.append((start, end))
    return tuple(sorted(spans, key=lambda s: s[0] or time.min))


@dataclass(frozen=True)
class BusinessCalendar:
    """Open spans per weekday (0 = Monday) in ``tz``; ``None`` everywhere means 24/7."""

    name: str
    tz: ZoneInfo | None = None  # None: always open
    week: tuple[tuple[Span, ...], ...] = ((),) * 7
    holidays: frozenset[date] = frozenset()

    @classmethod
    def always(cls) -> BusinessCalendar:
        return cls("24/7")

    @classmethod
    def from_hours(
        cls, name: str, timezone: str, hours: Mapping[str, str], holidays: Sequence[date] = ()
    ) -> BusinessCalendar:
        week = tuple(parse_hours(hours.get(d, "closed")) for d in WEEKDAYS)
        if not any(week):
            raise ValueError(f"calendar {name!r} is never open")
        return cls(name, ZoneInfo(timezone), week, frozenset(holidays))

    @property
    def always_open(self) -> bool:
        return self.tz is None

    def open_spans(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals in UTC that end after ``start``, in order (the first may contain it)."""
        start = as_utc(start)
        if self.tz is None:
            yield start, datetime.max.replace(tzinfo=UTC)
            return
        day = start.astimezone(self.tz).date() - timedelta(days=1)  # a span may cross midnight in UTC
        for _ in range(_MAX_DAYS):
            if day not in self.holidays:
                for open_t, close_t in self.week[day.weekday()]:
                    a = datetime.combine(day, open_t or time.min, self.tz).astimezone(UTC)
                    b = (
                        datetime.combine(day + timedelta(days=1), time.min, self.tz)
                        if close_t is None
                        else datetime.combine(day, close_t, self.tz)
                    ).astimezone(UTC)
                    if b > a and b > start:
                        yield max(a, start), b
            day += timedelta(days=1)
        raise ValueError(f"calendar {self.name!r} has no open time within {_MAX_DAYS} days of {start}")

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The moment when ``amount`` of open time has passed since ``start``."""
        start = as_utc(start)
        if self.tz is None:
            return start + amount
        left = amount
        for a, b in self.open_spans(start):
            if left <= b - a:
                return a + left
            left -= b - a
        raise AssertionError("unreachable: open_spans raises when it runs out")

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Open time between ``start`` and ``end`` (zero when ``end`` is not after ``start``)."""
        start, end = as_utc(start), as_utc(end)
        if end <= start:
            return timedelta(0)
        if self.tz is None:
            return end - start
        total = timedelta(0)
        for a, b in self.open_spans(start):
            if a >= end:
                break
            total += min(b, end) - a
        return total

    def is_open(self, at: datetime) -> bool:
        at = as_utc(at)
        for a, _b in self.open_spans(at):
            return a <= at
        return False
