"""What the X API has cost this month, and how that slows polling down.

X is pay-per-use: every post (or DM event) read and every post written is billed. The meter
counts requests per endpoint, reads and writes for the current calendar month (UTC) and
estimates the cost from the prices in the settings. Reads stop when they have used their share
of the budget (the rest is kept for answers); writes stop at the full budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.twitter.settings import TwitterSettings

EPSILON = 1e-9  # money sums in floats: 8 x 0.005 must count as 0.04


def month_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m")


def month_bounds(ts: float) -> tuple[float, float]:
    start = datetime.fromtimestamp(ts, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.timestamp(), end.timestamp()


@dataclass
class Usage:
    period: str
    reads: int = 0
    writes: int = 0
    requests: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "reads": self.reads,
            "writes": self.writes,
            "requests": dict(self.requests),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Usage:
        return cls(
            period=str(data["period"]),
            reads=int(data.get("reads", 0)),
            writes=int(data.get("writes", 0)),
            requests={str(k): int(v) for k, v in dict(data.get("requests", {})).items()},
        )


class Budget:
    def __init__(self, settings: TwitterSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.usage = Usage(period=month_of(clock()))

    def restore(self, data: Mapping[str, Any] | None) -> None:
        if data:
            usage = Usage.from_json(data)
            if usage.period == month_of(self.clock()):
                self.usage = usage

    def roll(self) -> None:
        period = month_of(self.clock())
        if period != self.usage.period:
            self.usage = Usage(period=period)

    # ------------------------------------------------------------------ counting
    def count_request(self, endpoint: str) -> None:
        self.roll()
        self.usage.requests[endpoint] = self.usage.requests.get(endpoint, 0) + 1

    def count_reads(self, n: int) -> None:
        self.roll()
        self.usage.reads += n

    def count_writes(self, n: int) -> None:
        self.roll()
        self.usage.writes += n

    @property
    def requests(self) -> int:
        return sum(self.usage.requests.values())

    @property
    def cost(self) -> float:
        s = self.settings
        return (
            self.usage.reads * s.read_price_usd
            + self.usage.writes * s.write_price_usd
            + self.requests * s.request_price_usd
        )

    # ------------------------------------------------------------------ limits
    @property
    def read_allowance(self) -> float:
        return self.settings.monthly_budget_usd * (1 - self.settings.write_reserve)

    def reads_allowed(self) -> bool:
        self.roll()
        return self.cost + EPSILON < self.read_allowance

    def writes_allowed(self) -> bool:
        self.roll()
        return self.cost + EPSILON < self.settings.monthly_budget_usd

    def used_fraction(self) -> float:
        budget = self.settings.monthly_budget_usd
        return self.cost / budget if budget > 0 else (0.0 if self.cost == 0 else 1.0)

    def seconds_to_next_period(self) -> float:
        now = self.clock()
        return max(1.0, month_bounds(now)[1] - now)

    def pressure(self) -> float:
        """How far spending runs ahead of the month (1.0 = on plan or behind it).

        Spending 40 % of the read allowance in the first 20 % of the month gives 2.0: poll half
        as often. At least one day of the month counts as elapsed, so a fresh month is not
        throttled by its first reads.
        """
        allowance = self.read_allowance
        if allowance <= 0:
            return 1.0
        now = self.clock()
        start, end = month_bounds(now)
        elapsed = max((now - start) / (end - start), 86400.0 / (end - start))
        return max(1.0, (self.cost / allowance) / elapsed)
