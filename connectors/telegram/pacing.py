"""Self-pacing under Telegram's send limits, per chat, so one chat never blocks another.

Limits (Bot API FAQ): about one message per second in a chat, 20 messages per minute in a
group, about 30 messages per second overall. ``slot(chat)`` waits until a message to
``chat`` is within all three, holds the chat while it is sent (so a chat's messages go out in
order), and ``block(chat, s)`` honours a 429's ``retry_after`` for that chat only.

Windows count a message from when its request *finished* (while in flight it counts as
"now"): Telegram counts arrivals, and a request may arrive any time before its answer, so
counting from the answer never undercounts.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

_IN_FLIGHT_RECHECK = 0.05  # seconds between checks while the blocking sends are still in flight


class _Window:
    """At most ``limit`` sends per ``seconds``; entries are [finish time] (inf while in flight)."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.entries: list[list[float]] = []

    def wait(self, now: float) -> float:
        self.entries = [e for e in self.entries if e[0] > now - self.seconds]
        excess = len(self.entries) - self.limit + 1
        if excess <= 0:
            return 0.0
        oldest = sorted(e[0] for e in self.entries)[excess - 1]
        return _IN_FLIGHT_RECHECK if math.isinf(oldest) else oldest + self.seconds - now

    def take(self) -> list[float]:
        entry = [math.inf]
        self.entries.append(entry)
        return entry


class Pacer:
    def __init__(
        self,
        *,
        per_chat_interval: float = 1.0,
        group_limit: int = 20,
        group_window: float = 60.0,
        overall_limit: int = 30,
        overall_window: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.per_chat_interval = per_chat_interval
        self._group_limit = group_limit
        self._group_window = group_window
        self._clock = clock
        self._sleep = sleep
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._next: dict[str, float] = {}
        self._blocked: dict[str, float] = {}
        self._group: dict[str, _Window] = {}
        self._all = _Window(overall_limit, overall_window)
        self.waited = 0.0  # total seconds spent waiting (a metric)

    def block(self, chat: str, seconds: float) -> None:
        """A 429 for ``chat``: send nothing there for ``seconds``."""
        until = self._clock() + max(0.0, seconds)
        self._blocked[chat] = max(self._blocked.get(chat, 0.0), until)

    def _windows(self, chat: str, is_group: bool) -> list[_Window]:
        if not is_group:
            return [self._all]
        group = self._group.get(chat)
        if group is None:
            group = self._group[chat] = _Window(self._group_limit, self._group_window)
        return [self._all, group]

    @asynccontextmanager
    async def slot(self, chat: str, *, is_group: bool) -> AsyncIterator[None]:
        windows = self._windows(chat, is_group)
        async with self._locks[chat]:
            while True:
                now = self._clock()
                wait = max(
                    self._next.get(chat, 0.0) - now,
                    self._blocked.get(chat, 0.0) - now,
                    *(w.wait(now) for w in windows),
                )
                if wait <= 0:
                    break
                self.waited += wait
                await self._sleep(wait)
            # checked and taken with no await in between: the windows stay exact
            entries = [w.take() for w in windows]
            try:
                yield
            finally:
                done = self._clock()
                for entry in entries:
                    entry[0] = done
                self._next[chat] = done + self.per_chat_interval
