"""Self-pacing under Telegram's send limits, per chat, so one chat never blocks another.

Limits (Bot API FAQ): about one message per second in a chat, 20 messages per minute in a
group, about 30 messages per second overall. ``slot(chat)`` waits until a message to
``chat`` is within all three, holds the chat while it is sent (so a chat's messages go out in
order and the next one is spaced from when this one *finished*), and ``block(chat, s)``
honours a 429's ``retry_after`` for that chat only.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


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
        self.group_limit = group_limit
        self.group_window = group_window
        self.overall_limit = overall_limit
        self.overall_window = overall_window
        self._clock = clock
        self._sleep = sleep
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._next: dict[str, float] = {}
        self._blocked: dict[str, float] = {}
        self._group: dict[str, deque[float]] = defaultdict(deque)
        self._all: deque[float] = deque()
        self.waited = 0.0  # total seconds spent waiting (a metric)

    def block(self, chat: str, seconds: float) -> None:
        """A 429 for ``chat``: send nothing there for ``seconds``."""
        until = self._clock() + max(0.0, seconds)
        self._blocked[chat] = max(self._blocked.get(chat, 0.0), until)

    def _wait_needed(self, chat: str, is_group: bool, now: float) -> float:
        waits = [self._next.get(chat, 0.0) - now, self._blocked.get(chat, 0.0) - now]
        while self._all and self._all[0] <= now - self.overall_window:
            self._all.popleft()
        if len(self._all) >= self.overall_limit:
            waits.append(self._all[-self.overall_limit] + self.overall_window - now)
        if is_group:
            series = self._group[chat]
            while series and series[0] <= now - self.group_window:
                series.popleft()
            if len(series) >= self.group_limit:
                waits.append(series[-self.group_limit] + self.group_window - now)
        return max(waits)

    @asynccontextmanager
    async def slot(self, chat: str, *, is_group: bool) -> AsyncIterator[None]:
        async with self._locks[chat]:
            while True:
                now = self._clock()
                wait = self._wait_needed(chat, is_group, now)
                if wait <= 0:
                    break
                self.waited += wait
                await self._sleep(wait)
            # check and record with no await in between: the windows stay exact
            self._all.append(now)
            if is_group:
                self._group[chat].append(now)
            try:
                yield
            finally:
                self._next[chat] = self._clock() + self.per_chat_interval
