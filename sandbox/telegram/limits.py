"""Telegram's send limits, counted (and optionally enforced) by the fake.

The Bot API FAQ: "avoid sending more than one message per second" in a chat, "no more than
20 messages per minute" in a group, and "about 30 messages per second" overall. The fake
records every accepted message and counts each send that goes over one of these windows as
a violation; a bot that paces itself never causes one. ``jitter`` shortens every window a
little so that a bot pacing at exactly the limit is not punished for network delay.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limits:
    per_chat: int = 1
    per_chat_window: float = 1.0
    per_group: int = 20
    per_group_window: float = 60.0
    overall: int = 30
    overall_window: float = 1.0
    jitter: float = 0.05


@dataclass
class Violations:
    chat: int = 0
    group: int = 0
    overall: int = 0
    by_chat: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def total(self) -> int:
        return self.chat + self.group + self.overall


class RateCounter:
    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.violations = Violations()
        self._chat: dict[int, deque[float]] = defaultdict(deque)
        self._all: deque[float] = deque()

    def _count(self, times: deque[float], now: float, window: float) -> int:
        edge = now - max(0.0, window - self.limits.jitter)
        return sum(1 for t in times if t > edge)

    def would_exceed(self, chat_id: int, is_group: bool, now: float | None = None) -> float:
        """Seconds to wait before one more message to ``chat_id`` is within limits (0 if now)."""
        now = time.monotonic() if now is None else now
        lim = self.limits
        waits = [0.0]
        times = self._chat[chat_id]
        checks = [(times, lim.per_chat, lim.per_chat_window), (self._all, lim.overall, lim.overall_window)]
        if is_group:
            checks.append((times, lim.per_group, lim.per_group_window))
        for series, limit, window in checks:
            recent = [t for t in series if t > now - window]
            if len(recent) >= limit:
                waits.append(recent[-limit] + window - now)
        return max(waits)

    def record(self, chat_id: int, is_group: bool, now: float | None = None) -> None:
        """Record one accepted message; count the windows it goes over."""
        now = time.monotonic() if now is None else now
        lim = self.limits
        times = self._chat[chat_id]
        times.append(now)
        self._all.append(now)
        while times and times[0] < now - max(lim.per_chat_window, lim.per_group_window):
            times.popleft()
        while self._all and self._all[0] < now - lim.overall_window:
            self._all.popleft()
        hit = False
        if self._count(times, now, lim.per_chat_window) > lim.per_chat:
            self.violations.chat += 1
            hit = True
        if is_group and self._count(times, now, lim.per_group_window) > lim.per_group:
            self.violations.group += 1
            hit = True
        if self._count(self._all, now, lim.overall_window) > lim.overall:
            self.violations.overall += 1
            hit = True
        if hit:
            self.violations.by_chat[chat_id] += 1


def retry_after_seconds(wait: float) -> int:
    """The Bot API reports retry_after in whole seconds (at least 1)."""
    return max(1, math.ceil(wait))
