"""Self-pacing: per-channel and per-token send windows, and the invalid-request watch.

Discord lets a bot post about 5 messages per 5 s in one channel (observed, not documented) and
50 requests per second per token; 10,000 invalid requests (401, 403, 429) in 10 minutes get the
bot's IP banned for a while. The connector waits *before* a request rather than collecting 429s.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque

_IN_FLIGHT_RECHECK = 0.01  # seconds between looks while the window is full of in-flight requests


class Slot:
    """One acquisition: counts as "now" while its request is in flight, then from its end."""

    __slots__ = ("ended", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.ended = math.inf

    def end(self) -> None:
        if math.isinf(self.ended):
            self.ended = time.monotonic()

    def time(self, now: float, in_flight_cap: float) -> float:
        if not math.isinf(self.ended):
            return self.ended
        # a request whose end was never reported (cancelled) stops counting after the cap
        return now if now - self.started < in_flight_cap else self.started + in_flight_cap


class SlidingWindowLimiter:
    """At most ``limit`` requests in any ``per`` seconds (plus ``margin`` for clock jitter).

    A request counts from when it *ended* (``Slot.end``; while in flight it counts as "now"):
    Discord counts arrivals, and a request can arrive any time before its answer, so counting
    from the answer never undercounts, even when a busy machine bunches requests up on the
    way out. Waiters are served in arrival order; ``acquire`` returns the slot and how long
    it waited.
    """

    IN_FLIGHT_CAP = 60.0  # seconds a never-ended slot keeps counting

    def __init__(self, limit: int, per: float, *, margin: float = 0.0) -> None:
        if limit <= 0 or per <= 0:
            raise ValueError("limit and per must be positive")
        self.limit = limit
        self.per = per + margin
        self._slots: list[Slot] = []
        self._lock = asyncio.Lock()
        self.waited_total = 0.0

    def _times(self, now: float) -> list[float]:
        self._slots = [s for s in self._slots if s.time(now, self.IN_FLIGHT_CAP) > now - self.per]
        return sorted(s.time(now, self.IN_FLIGHT_CAP) for s in self._slots)

    async def acquire(self) -> tuple[Slot, float]:
        waited = 0.0
        async with self._lock:
            while True:
                now = time.monotonic()
                times = self._times(now)
                excess = len(times) - self.limit + 1
                if excess <= 0:
                    slot = Slot(now)
                    self._slots.append(slot)
                    self.waited_total += waited
                    return slot, waited
                # the oldest slot that must leave the window; in-flight ones: look again soon
                delay = max(times[excess - 1] + self.per - now, _IN_FLIGHT_RECHECK)
                waited += delay
                await asyncio.sleep(delay)

    def in_window(self) -> int:
        return len(self._times(time.monotonic()))


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

    async def acquire(self, key: str) -> tuple[Slot, float]:
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
