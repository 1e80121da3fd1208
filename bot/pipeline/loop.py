"""The loop worker and dispatcher share: do a round, and when there was nothing to do, sleep
until woken (new work in this process) or ``idle`` seconds pass (work from other processes)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


async def run_rounds(
    round_: Callable[[], Awaitable[int]],
    *,
    wake: asyncio.Event,
    stop: asyncio.Event,
    idle: float,
    after_work: Callable[[], None] | None = None,
) -> None:
    """Call ``round_`` until ``stop`` is set; ``round_`` returns how many items it handled."""
    while not stop.is_set():
        n = await round_()
        if n == 0 and not stop.is_set():
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), idle)
        elif n and after_work is not None:
            after_work()
