"""Per-endpoint rate windows of the fake X API, with the real per-user limits.

Each endpoint has a fixed window that starts at the first request after the previous one
expired, like X's 15-minute windows. Every response carries ``x-rate-limit-limit``,
``x-rate-limit-remaining`` and ``x-rate-limit-reset`` (epoch seconds).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

WINDOW = 900.0  # 15 minutes

#: endpoint key -> (requests per window, window seconds); the documented per-user limits
DEFAULT_LIMITS: Mapping[str, tuple[int, float]] = {
    "me": (75, WINDOW),
    "mentions": (300, WINDOW),
    "tweet_lookup": (900, WINDOW),
    "user_lookup": (900, WINDOW),
    "create_tweet": (100, WINDOW),
    "dm_events": (15, WINDOW),
    "create_dm": (200, WINDOW),
}


@dataclass
class RateWindow:
    limit: int
    period: float
    used: int = 0
    reset_at: int = 0  # epoch seconds; 0 = no window open

    def headers(self) -> dict[str, str]:
        return {
            "x-rate-limit-limit": str(self.limit),
            "x-rate-limit-remaining": str(max(0, self.limit - self.used)),
            "x-rate-limit-reset": str(self.reset_at),
        }

    def roll(self, now: float) -> None:
        if now >= self.reset_at:
            self.used = 0
            self.reset_at = math.ceil(now + self.period)

    def take(self, now: float) -> bool:
        """Count one request; False when the window is already spent."""
        self.roll(now)
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def exhaust_until(self, until: int) -> None:
        self.used = self.limit
        self.reset_at = until


class RateWindows:
    def __init__(
        self, limits: Mapping[str, tuple[int, float]] | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        merged = {**DEFAULT_LIMITS, **(limits or {})}
        self.clock = clock
        self.windows = {key: RateWindow(limit, period) for key, (limit, period) in merged.items()}

    def get(self, key: str) -> RateWindow:
        return self.windows.setdefault(key, RateWindow(1000, WINDOW))
