"""Per-destination pacing: sliding windows over send times, one per (scope key, limit)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from bot.models import OutboundMessage, RateLimit

#: every this many reservations, windows that no longer hold anything are forgotten (one per
#: destination ever answered would otherwise accumulate for the life of the process)
PRUNE_EVERY = 1024


class Pacer:
    """Reserves send slots so that no window's limit is exceeded.

    A window is identified by a key such as ``("telegram-main", "chat:-100123")`` plus its
    ``per_seconds``; it remembers the last ``limit`` send times.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._windows: dict[tuple[str, ...], deque[float]] = {}
        self._blocked_until: dict[tuple[str, ...], float] = {}
        self._reserved = 0

    @staticmethod
    def keys_for(
        message: OutboundMessage, limits: Sequence[RateLimit]
    ) -> list[tuple[tuple[str, ...], RateLimit]]:
        dest = f"dm:{message.private_to}" if message.private_to else message.conversation_id
        out = []
        for lim in limits:
            scope = (message.connector_id,) if lim.scope == "connector" else (message.connector_id, dest)
            out.append(((*scope, f"{lim.limit}/{lim.per_seconds}"), lim))
        return out

    def delay(self, keys: Sequence[tuple[tuple[str, ...], RateLimit]]) -> float:
        """Seconds until a send through all these windows is allowed."""
        now = self.clock()
        wait = 0.0
        for key, lim in keys:
            wait = max(wait, self._blocked_until.get(key[:-1], 0.0) - now)
            window = self._windows.get(key)
            if window is not None and len(window) >= lim.limit:
                wait = max(wait, window[-lim.limit] + lim.per_seconds - now)
        return max(0.0, wait)

    def reserve(self, keys: Sequence[tuple[tuple[str, ...], RateLimit]]) -> float:
        """Take the earliest allowed slot in every window; return how long to wait for it."""
        wait = self.delay(keys)
        at = self.clock() + wait
        for key, lim in keys:
            window = self._windows.setdefault(key, deque(maxlen=lim.limit))
            window.append(at)
        self._reserved += 1
        if self._reserved % PRUNE_EVERY == 0:
            self.prune()
        return wait

    def prune(self) -> None:
        """Forget windows whose last send has left them and blocks that have ended: a send
        through them would not wait, with or without them."""
        now = self.clock()
        stale = [k for k, w in self._windows.items() if not w or w[-1] + _per_seconds(k) <= now]
        for key in stale:
            del self._windows[key]
        for scope in [k for k, until in self._blocked_until.items() if until <= now]:
            del self._blocked_until[scope]

    def __len__(self) -> int:
        """Windows and blocks remembered (bounded by the destinations active lately)."""
        return len(self._windows) + len(self._blocked_until)

    def block(self, scope: tuple[str, ...], seconds: float) -> None:
        """The platform said 429 for this scope: nothing goes there for ``seconds``."""
        self._blocked_until[scope] = max(self._blocked_until.get(scope, 0.0), self.clock() + seconds)


def _per_seconds(key: tuple[str, ...]) -> float:
    """A window key ends with ``"<limit>/<per_seconds>"`` (see :meth:`Pacer.keys_for`)."""
    return float(key[-1].rpartition("/")[2])
