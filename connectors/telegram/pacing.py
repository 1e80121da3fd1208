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
#: every this many sends, state for chats that no longer constrain anything is forgotten (a
#: bot that answers many DMs would otherwise keep a lock and a timestamp per chat forever)
PRUNE_EVERY = 1024


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
        self._users: dict[str, int] = {}  # chat -> slot() calls in progress (the lock's users)
        self._slots = 0
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
        self._users[chat] = self._users.get(chat, 0) + 1
        try:
            async with self._locks[chat], self._slot(chat, windows):
                yield
        finally:
            left = self._users[chat] = self._users[chat] - 1
            if not left:  # nobody holds or waits for this chat's lock
                del self._users[chat]
                del self._locks[chat]
            self._slots += 1
            if self._slots % PRUNE_EVERY == 0:
                self.prune()

    @asynccontextmanager
    async def _slot(self, chat: str, windows: list[_Window]) -> AsyncIterator[None]:
        """Wait for the chat's turn in every window, then hold it while the message is sent."""
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

    def prune(self) -> None:
        """Forget per-chat state that no longer constrains a send: next-send times and blocks
        in the past, group windows with nothing left in them."""
        now = self._clock()
        for chat in [c for c, t in self._next.items() if t <= now and c not in self._users]:
            del self._next[chat]
        for chat in [c for c, t in self._blocked.items() if t <= now]:
            del self._blocked[chat]
        for chat, window in list(self._group.items()):
            window.wait(now)  # drops the entries that have left the window
            if not window.entries and chat not in self._users:
                del self._group[chat]

    def __len__(self) -> int:
        """Chats with state kept (bounded by the chats active lately)."""
        return len(set(self._next) | set(self._blocked) | set(self._group) | set(self._locks))
