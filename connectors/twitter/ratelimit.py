"""Per-endpoint rate-limit state, read from X's ``x-rate-limit-*`` headers.

Each endpoint (mentions, dm_events, create_tweet ...) is paused on its own: a spent mentions
window never blocks sending, and the other way round. A paused endpoint is refused locally
with :class:`RateLimited` (no request leaves the process), so nothing can retry in a tight
loop. A 429 without a usable reset header backs off exponentially.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.errors import RateLimited

MAX_PAUSE = 24 * 3600.0


@dataclass
class EndpointState:
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # epoch seconds
    paused_until: float = 0.0  # epoch seconds
    backoff_level: int = 0
    throttled: int = 0  # 429s received


def _int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


class RateLimiter:
    def __init__(
        self,
        *,
        margin: float = 1.0,
        backoff_base: float = 5.0,
        backoff_max: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.margin = margin
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.clock = clock
        self.endpoints: dict[str, EndpointState] = {}

    def state(self, endpoint: str) -> EndpointState:
        return self.endpoints.setdefault(endpoint, EndpointState())

    def wait_time(self, endpoint: str) -> float:
        """Seconds until ``endpoint`` may be called again (0 = now)."""
        return max(0.0, self.state(endpoint).paused_until - self.clock())

    def check(self, endpoint: str) -> None:
        """Refuse locally while ``endpoint`` is paused."""
        wait = self.wait_time(endpoint)
        if wait > 0:
            raise RateLimited(wait, f"X {endpoint} paused until its rate-limit window resets", scope=endpoint)

    def observe(self, endpoint: str, headers: Mapping[str, str]) -> None:
        """Read the headers of a successful answer; pause when the window is spent."""
        st = self.state(endpoint)
        st.backoff_level = 0
        self._read(st, headers)
        if st.remaining == 0 and st.reset_at is not None:
            st.paused_until = max(st.paused_until, self._until(st.reset_at))
        for scope in ("user", "app"):  # 24-hour caps, when X reports them
            remaining = _int(headers, f"x-{scope}-limit-24hour-remaining")
            reset = _int(headers, f"x-{scope}-limit-24hour-reset")
            if remaining == 0 and reset is not None:
                st.paused_until = max(st.paused_until, self._until(float(reset)))

    def on_throttled(
        self, endpoint: str, headers: Mapping[str, str], retry_after: float | None = None
    ) -> float:
        """A 429 (or a 503 with Retry-After): pause the endpoint, return the seconds to wait."""
        st = self.state(endpoint)
        st.throttled += 1
        self._read(st, headers)
        now = self.clock()
        reset = _int(headers, "x-rate-limit-reset")  # only this answer's headers count here
        candidates = [float(reset)] if reset is not None else []
        for scope in ("user", "app"):
            if _int(headers, f"x-{scope}-limit-24hour-remaining") == 0:
                day_reset = _int(headers, f"x-{scope}-limit-24hour-reset")
                if day_reset is not None:
                    candidates.append(float(day_reset))
        if retry_after is not None:
            candidates.append(now + retry_after)
        future = [c for c in candidates if c > now]
        if future:
            until = self._until(max(future))
            st.backoff_level = 0
        else:  # no usable header: back off exponentially
            delay = min(self.backoff_max, self.backoff_base * 2**st.backoff_level)
            st.backoff_level += 1
            until = now + delay
        st.paused_until = max(st.paused_until, until)
        st.remaining = 0
        return max(0.0, st.paused_until - now)

    def pace(self, endpoint: str) -> float:
        """The interval that spreads what is left of the window evenly until its reset."""
        st = self.state(endpoint)
        now = self.clock()
        if st.remaining is None or st.reset_at is None or st.reset_at <= now:
            return 0.0
        return (st.reset_at - now) / max(st.remaining, 1)

    def paused(self) -> list[str]:
        return sorted(name for name in self.endpoints if self.wait_time(name) > 0)

    def _read(self, st: EndpointState, headers: Mapping[str, str]) -> None:
        limit = _int(headers, "x-rate-limit-limit")
        remaining = _int(headers, "x-rate-limit-remaining")
        reset = _int(headers, "x-rate-limit-reset")
        if limit is not None:
            st.limit = limit
        if remaining is not None:
            st.remaining = remaining
        if reset is not None:
            st.reset_at = float(reset)

    def _until(self, reset_at: float) -> float:
        return min(reset_at + self.margin, self.clock() + MAX_PAUSE)
