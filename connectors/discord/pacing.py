"""Self-pacing: per-channel and per-token send windows, and the invalid-request watch.

Discord lets a bot post about 5 messages per 5 s in one channel (observed, not documented) and
50 requests per second per token; 10,000 invalid requests (401, 403, 429) in 10 minutes get the
bot's IP banned for a while. The connector waits *before* a request rather than collecting 429s.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque


class SlidingWindowLimiter:
    """At most ``limit`` acquisitions in any ``per`` seconds (plus ``margin`` for clock jitter).

    Waiters are served in arrival order; ``acquire`` returns how long it waited.
    """

    def __init__(self, limit: int, per: float, *, margin: float = 0.0) -> None:
        if limit <= 0 or per <= 0:
            raise ValueError("limit and per must be positive")
        self.limit = limit
        self.per = per + margin
        self._stamps: deque[float] = deque()
        self._lock = asyncio.Lock()
        self.waited_total = 0.0

    def _trim(self, now: float) -> None:
        while self._stamps and now - self._stamps[0] >= self.per:
            self._stamps.popleft()

    async def acquire(self) -> float:
        waited = 0.0
        async with self._lock:
            while True:
                now = time.monotonic()
                self._trim(now)
                if len(self._stamps) < self.limit:
                    self._stamps.append(now)
                    self.waited_total += waited
                    return waited
                delay = self._stamps[0] + self.per - now
                waited += delay
                await asyncio.sleep(delay)

    def in_window(self) -> int:
        self._trim(time.monotonic())
        return len(self._stamps)


class KeyedLimiters:
    """One :class:`SlidingWindowLimiter` per key (a channel id); idle ones are forgotten."""

    def __init__(self, limit: int, per: float, *, margin: float = 0.0, max_keys: int = 5000) -> None:
        self.limit = limit
        self.per = per
        self.margin = margin
        self.max_keys = max_keys
        self._by_key: dict[str, SlidingWindowLimiter] = {}

    def get(self, key: str) -> SlidingWindowLimiter:
        lim = self._by_key.get(key)
        if lim is None:
            if len(self._by_key) >= self.max_keys:
                for k in [k for k, v in self._by_key.items() if v.in_window() == 0]:
                    del self._by_key[k]
            lim = self._by_key[key] = SlidingWindowLimiter(self.limit, self.per, margin=self.margin)
        return lim

    async def acquire(self, key: str) -> float:
        return await self.get(key).acquire()


class InvalidRequestMonitor:
    """Counts 401/403/429 answers in a sliding 10-minute window and says when to worry.

    ``alert_at`` (default 1,000) is well below Discord's 10,000; ``brake_at`` is where the
    connector refuses to send more until the window drains.
    """

    WINDOW = 600.0

    def __init__(self, alert_at: int, brake_at: int) -> None:
        self.alert_at = alert_at
        self.brake_at = brake_at
        self._stamps: deque[float] = deque()
        self.total = 0
        self.by_status: dict[int, int] = {}

    def record(self, status: int, *, shared_scope: bool = False) -> bool:
        """Record a response; True if it was an invalid request."""
        if status not in (401, 403, 429) or (status == 429 and shared_scope):
            return False
        self._stamps.append(time.monotonic())
        self.total += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
        return True

    def count(self) -> int:
        now = time.monotonic()
        while self._stamps and now - self._stamps[0] >= self.WINDOW:
            self._stamps.popleft()
        return len(self._stamps)

    @property
    def alerting(self) -> bool:
        return self.count() >= self.alert_at

    def brake_seconds(self) -> float:
        """How long until the count falls below ``brake_at`` (0 if it already is)."""
        n = self.count()
        if n < self.brake_at:
            return 0.0
        oldest_to_drop = self._stamps[n - self.brake_at]
        return max(0.0, oldest_to_drop + self.WINDOW - time.monotonic())
