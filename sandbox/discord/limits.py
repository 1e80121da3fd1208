"""Discord's limits as the fake enforces them, and the counters tests judge the bot by.

* about 5 messages per 5 s per channel (observed on Discord, not documented): the fake answers
  the 6th message inside any 5 s window with a 429 and counts a *pace violation*;
* 50 requests per second per token (global): the 51st inside any second is a 429 ``global``;
* 10,000 invalid requests (401, 403, 429) per 10 minutes get the token's IP banned at
  Cloudflare: the fake counts them in a sliding window and, past ``ban_threshold``, answers
  every request with a Cloudflare-style 429 (no ``Via`` header).
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass, field


class SlidingWindow:
    """Timestamps of events within the last ``per`` seconds."""

    def __init__(self, limit: int, per: float) -> None:
        self.limit = limit
        self.per = per
        self._stamps: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self._stamps and now - self._stamps[0] >= self.per:
            self._stamps.popleft()

    def count(self, now: float | None = None) -> int:
        self._trim(time.monotonic() if now is None else now)
        return len(self._stamps)

    def would_exceed(self, now: float) -> bool:
        self._trim(now)
        return len(self._stamps) >= self.limit

    def add(self, now: float) -> None:
        self._trim(now)
        self._stamps.append(now)

    def reset_after(self, now: float) -> float:
        """Seconds until one more event fits."""
        self._trim(now)
        if len(self._stamps) < self.limit:
            return 0.0
        return max(0.0, self._stamps[0] + self.per - now)


@dataclass
class Counters:
    """What the fake saw; tests assert on these."""

    requests: int = 0
    by_status: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    pace_violations: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    global_violations: int = 0
    injected_faults: int = 0
    rate_limited: int = 0  # 429s answered, for any reason
    invalid_total: int = 0  # 401/403/429 ever answered
    identifies: int = 0
    resumes: int = 0
    resumes_refused: int = 0
    interactions_acked: int = 0
    interactions_late: int = 0

    def snapshot(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "pace_violations": dict(self.pace_violations),
            "global_violations": self.global_violations,
            "injected_faults": self.injected_faults,
            "rate_limited": self.rate_limited,
            "invalid_total": self.invalid_total,
            "identifies": self.identifies,
            "resumes": self.resumes,
            "resumes_refused": self.resumes_refused,
            "interactions_acked": self.interactions_acked,
            "interactions_late": self.interactions_late,
        }


class Limits:
    """The enforcement state for one token."""

    def __init__(
        self,
        *,
        channel_limit: int = 5,
        channel_per: float = 5.0,
        global_limit: int = 50,
        invalid_window: float = 600.0,
        ban_threshold: int = 10_000,
    ) -> None:
        self.channel_limit = channel_limit
        self.channel_per = channel_per
        self.global_window = SlidingWindow(global_limit, 1.0)
        self.invalid = SlidingWindow(10**9, invalid_window)
        self.ban_threshold = ban_threshold
        self._channels: dict[str, SlidingWindow] = {}
        self.counters = Counters()

    def channel(self, channel_id: str) -> SlidingWindow:
        win = self._channels.get(channel_id)
        if win is None:
            win = self._channels[channel_id] = SlidingWindow(self.channel_limit, self.channel_per)
        return win

    def banned(self, now: float) -> bool:
        return self.invalid.count(now) >= self.ban_threshold

    def record_status(self, status: int, now: float, *, shared_scope: bool = False) -> None:
        self.counters.requests += 1
        self.counters.by_status[status] += 1
        if status == 429:
            self.counters.rate_limited += 1
        if status in (401, 403) or (status == 429 and not shared_scope):
            self.counters.invalid_total += 1
            self.invalid.add(now)
